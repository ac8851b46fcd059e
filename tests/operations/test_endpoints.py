"""/healthz, /metrics, /docs and the JSON log format, in one process."""

import json
import logging
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families
from webtest import TestApp

from simplestack import main
from simplestack.logs import JsonFormatter
from tests.api.conftest import app_settings
from tests.conftest import CANARY_PASSWORD, make_token

GUESTS = "/{hypervisor}/{host}/guests"
GUEST = "/{hypervisor}/{host}/guests/{guest_id}"


@pytest.fixture(scope="module")
def app():
    return TestApp(main({}, **app_settings()), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


def scrape(app):
    """Return {(metric sample name, sorted label items): value}."""
    response = app.get("/metrics")
    assert response.content_type == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = sample.value
    return samples


def sample(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_healthz_needs_no_token(caplog):
    caplog.set_level(logging.INFO, logger="simplestack.requests")
    anonymous = TestApp(main({}, **app_settings()))
    response = anonymous.get("/healthz",
                             headers={"X-Request-ID": "healthz-test-1"})
    assert response.json == {"status": "ok"}
    assert response.headers["X-Request-ID"] == "healthz-test-1"
    summary, = [record for record in caplog.records
                if getattr(record, "request_id", None) == "healthz-test-1"]
    assert summary.hypervisor_calls == 0
    assert summary.hypervisor == "-"


def test_metrics_count_by_route_pattern(app):
    before = scrape(app)
    app.get("/test/default/guests")
    app.get("/test/default/guests/no-such-guest", status=404)
    app.get("/test/default/guests/another-missing-guest", status=404)
    after = scrape(app)

    listed = dict(hypervisor="test", endpoint=GUESTS, method="GET",
                  status="200")
    missing = dict(hypervisor="test", endpoint=GUEST, method="GET",
                   status="404")
    assert (sample(after, "simplestack_requests_total", **listed)
            - sample(before, "simplestack_requests_total", **listed)) == 1
    assert (sample(after, "simplestack_requests_total", **missing)
            - sample(before, "simplestack_requests_total", **missing)) == 2
    assert (sample(after, "simplestack_request_duration_seconds_count",
                   **missing)
            - sample(before, "simplestack_request_duration_seconds_count",
                     **missing)) == 2
    calls = ("simplestack_hypervisor_calls_total", {"hypervisor": "test"})
    assert (sample(after, calls[0], **calls[1])
            - sample(before, calls[0], **calls[1])) >= 3
    # Ids in paths never become label values.
    for name, labels in after:
        assert "no-such-guest" not in dict(labels).get("endpoint", "")


def test_metrics_unknown_type_is_not_a_label(app):
    app.get("/no-such-type/default/guests", status=404)
    samples = scrape(app)
    hypervisors = {dict(labels).get("hypervisor") for _, labels in samples}
    assert "no-such-type" not in hypervisors
    assert "-" in hypervisors


def test_metrics_count_hypervisor_errors(app):
    before = scrape(app)
    # Nothing listens on port 1, so the connection is refused.
    response = app.get("/tcp/127.0.0.1:1/guests", status=502)
    assert response.json["error"] == "HypervisorUnreachable"
    after = scrape(app)
    labels = dict(hypervisor="tcp", error="HypervisorUnreachable")
    assert (sample(after, "simplestack_hypervisor_errors_total", **labels)
            - sample(before, "simplestack_hypervisor_errors_total",
                     **labels)) == 1


def test_requests_in_progress_return_to_zero(app):
    app.get("/test/default/guests")
    samples = scrape(app)
    assert sample(samples, "simplestack_requests_in_progress",
                  hypervisor="test") == 0


def test_docs_page_uses_local_assets_only(app):
    response = app.get("/docs")
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "http://" not in response.text
    assert "https://" not in response.text
    assert "//" not in response.text.replace("<!DOCTYPE html>", "")
    script = app.get("/docs/init.js")
    assert "validatorUrl: null" in script.text
    bundle = app.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.content_length > 100000
    assert app.get("/docs/static/swagger-ui.css").content_type == "text/css"


def test_openapi_lists_operations_endpoints(app):
    document = app.get("/openapi.json").json
    for path in ("/healthz", "/metrics"):
        operation = document["paths"][path]["get"]
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert "x-simplestack-hypervisor-token" not in names, path
    assert "/docs" not in document["paths"]


def test_json_formatter_one_object_per_line():
    formatter = JsonFormatter()
    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        record = logging.getLogger("simplestack.test").makeRecord(
            "simplestack.test", logging.ERROR, __file__, 1,
            "failed for %s", ("guest-1",), exc_info=sys.exc_info(),
            extra={"request_id": "abc", "status": 500})
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed for guest-1"
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "simplestack.test"
    assert entry["request_id"] == "abc"
    assert entry["status"] == 500
    assert "second line" in entry["exception"]
    assert entry["time"].endswith("+00:00")


def test_request_log_fields_without_password(app, caplog):
    caplog.set_level(logging.INFO, logger="simplestack.requests")
    app.get("/test/default/guests", headers={"X-Request-ID": "ops-test-1"})
    records = [record for record in caplog.records
               if getattr(record, "request_id", None) == "ops-test-1"]
    assert len(records) == 1
    entry = json.loads(JsonFormatter().format(records[0]))
    assert entry["method"] == "GET"
    assert entry["path"] == "/test/default/guests"
    assert entry["hypervisor"] == "test"
    assert entry["status"] == 200
    assert entry["hypervisor_calls"] > 0
    assert isinstance(entry["duration_ms"], float)
    assert CANARY_PASSWORD not in caplog.text
