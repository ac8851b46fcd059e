"""Caller text that tries to split or forge JSON log lines.

The service runs in this process with simplestack.logs.JsonFormatter on the
root logger, as production.ini sets it. Every line that a line reader finds
in the output must be one whole JSON record.
"""

import io
import json
import logging

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from simplestack.logs import JsonFormatter
from tests.conftest import CANARY_PASSWORD, make_token
from tests.server import TESTING_INI

# Percent-encoded line breaks of Unicode: NEL, LINE SEPARATOR, PARAGRAPH
# SEPARATOR, each followed by text shaped like a forged record.
FORGED = "%7B%22level%22:%22INFO%22,%22forged%22:1%7D"
HOSTILE_PATHS = [
    "/test/a%C2%85" + FORGED,
    "/test/default/guests/a%E2%80%A8" + FORGED,
    "/x%E2%80%A9" + FORGED,
    "/xen/192.0.2.1/guests%E2%80%A8" + FORGED,
    "/healthz?q=%E2%80%A8" + FORGED,
    "/test/default/guests?marker=%C2%85" + FORGED,
]


@pytest.fixture
def json_log():
    """Collect the service's log records as JsonFormatter writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def service():
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    return TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


def test_unicode_line_breaks_stay_in_one_line(json_log):
    app = service()

    for path in HOSTILE_PATHS:
        app.get(path, expect_errors=True)

    text = json_log.getvalue()
    lines = text.splitlines()
    # One summary line per request at least; splitlines() takes NEL,
    # LINE SEPARATOR and PARAGRAPH SEPARATOR as line breaks.
    assert len(lines) >= len(HOSTILE_PATHS)
    assert len(lines) == text.count("\n")
    records = [json.loads(line) for line in lines]
    assert not any(record.get("forged") for record in records)
    summaries = [record for record in records
                 if record["logger"] == "simplestack.requests"]
    assert len(summaries) == len(HOSTILE_PATHS)
    assert "\u2028" in summaries[1]["path"]


def test_log_has_no_canary(json_log):
    app = service()

    app.get("/xen/192.0.2.1/guests", expect_errors=True)
    app.get("/test/default/guests")
    app.get("/test/default/guests/nothing", expect_errors=True)

    text = json_log.getvalue()
    assert CANARY_PASSWORD not in text
    assert make_token() not in text
