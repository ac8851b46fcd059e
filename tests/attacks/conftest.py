"""Fixtures for the attack tests: the API fixtures, and one error check."""

import json

from tests.api.conftest import *  # noqa: F401,F403 (pytest fixtures)
from tests.conftest import CANARY_PASSWORD

HOST = "/test/default"
GUESTS = HOST + "/guests"


def assert_error(response, statuses, name=None):
    """Check the JSON error shape and status (an int or a tuple of ints)."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    assert response.status_int in statuses, response.text
    assert response.content_type == "application/json", response.text
    body = json.loads(response.text)
    if name is not None:
        assert body["error"] == name, body
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text
    assert CANARY_PASSWORD not in response.text
    return body
