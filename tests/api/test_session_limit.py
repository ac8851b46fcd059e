"""The per-host session limit: 503 past it, and every path gives its slot back.

Sessions are held open by image exports whose body is not read yet, on the
test driver (the ``streaming`` type of tests/api/adapters.py).
"""

import gc
import json
import socket

import pytest
from webob import Request

from simplestack import main
from simplestack.sessions import RETRY_AFTER_SECONDS, sessions_of
from tests.api.adapters import RecordingAdapter
from tests.api.conftest import app_settings, unique_name
from tests.conftest import make_token

STREAMING = "/streaming/default"
LIMIT = 2


def limited_app(type_name="streaming", limit=LIMIT, **settings):
    settings["simplestack.hypervisor.%s.max_sessions_per_host" % type_name] \
        = str(limit)
    settings.setdefault("simplestack.max_concurrent_streams", "10")
    return main({}, **app_settings(**settings))


def call(app, path, method="GET"):
    """Call the WSGI app without reading the body; return (status,
    headers, body iterable)."""
    request = Request.blank(path, method=method, headers={
        "x-simplestack-hypervisor-token": make_token()})
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = dict(headers)

    body = app(request.environ, start_response)
    return int(captured["status"][:3]), captured["headers"], body


def read_and_close(body):
    data = b"".join(body)
    close = getattr(body, "close", None)
    if close is not None:
        close()
    return data


def slots(app, type_name="streaming", host="default"):
    return sessions_of(app.registry).slots_taken(type_name, host)


@pytest.fixture
def guest(api):
    record = api.post_json(STREAMING + "/guests",
                           {"name": unique_name()}).json
    yield record
    api.delete(STREAMING + "/guests/" + record["id"], status="*")


def export_path(guest):
    return "%s/guests/%s/export" % (STREAMING, guest["id"])


def test_request_past_limit_gets_503(guest):
    app = limited_app()
    bodies = []
    for _ in range(LIMIT):
        status, _headers, body = call(app, export_path(guest))
        assert status == 200
        bodies.append(body)
    assert slots(app) == LIMIT

    status, headers, body = call(app, STREAMING + "/guests")
    document = json.loads(read_and_close(body))
    assert status == 503
    assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert headers["Content-Type"].startswith("application/json")
    assert document["error"] == "ServiceUnavailable"
    assert "max_sessions_per_host" in document["message"]

    for body in bodies:
        assert read_and_close(body) == b"x" * 4096
    assert slots(app) == 0
    status, _headers, body = call(app, STREAMING + "/guests")
    read_and_close(body)
    assert status == 200


def test_limit_is_per_host(guest):
    app = limited_app(limit=1)
    status, _headers, held = call(app, export_path(guest))
    assert status == 200
    # Another host of the same type has its own slots, so an unknown test
    # host gets 404 from the adapter, not 503.
    status, _headers, body = call(app, "/streaming/elsewhere/guests")
    read_and_close(body)
    assert status == 404
    read_and_close(held)


def test_rejected_request_opens_no_connection():
    RecordingAdapter.instances.clear()
    app = limited_app(type_name="tracked", limit=1)
    # Hold the only slot as a request in progress would.
    manager = sessions_of(app.registry)
    hypervisor_type = app.registry.settings[
        "simplestack.hypervisor_types"]["tracked"]
    lease = manager.checkout(hypervisor_type, "default", None)
    try:
        status, _headers, body = call(app, "/tracked/default/guests")
        read_and_close(body)
        assert status == 503
        assert [adapter for adapter in RecordingAdapter.instances
                if adapter.opened] == []
    finally:
        lease.release(reusable=False)
    assert slots(app, "tracked") == 0
    RecordingAdapter.instances.clear()


def test_stream_closed_early_frees_slot(guest):
    app = limited_app(limit=1)
    status, _headers, body = call(app, export_path(guest))
    assert status == 200
    iterator = iter(body)
    assert next(iterator) == b"x" * 1024
    # A client that goes away: the server closes the body unread.
    body.close()
    assert slots(app) == 0


def test_stream_never_iterated_frees_slot(guest):
    app = limited_app(limit=1)
    status, _headers, body = call(app, export_path(guest))
    assert status == 200
    body.close()
    assert slots(app) == 0


def test_stream_dropped_unclosed_frees_slot(guest):
    app = limited_app(limit=1)
    status, _headers, body = call(app, export_path(guest))
    assert status == 200
    assert slots(app) == 1
    # A server that drops the body without calling close(): the slot comes
    # back when the adapter is garbage collected.
    del body
    gc.collect()
    assert slots(app) == 0


def test_failed_export_frees_slot():
    app = limited_app(limit=1)
    missing = "00000000-0000-0000-0000-000000000000"
    for _ in range(3):
        status, _headers, body = call(
            app, "%s/guests/%s/export" % (STREAMING, missing))
        read_and_close(body)
        assert status == 404
    assert slots(app) == 0


def test_bug_in_adapter_frees_slot():
    app = limited_app(type_name="broken", limit=1)
    for _ in range(3):
        status, _headers, body = call(app, "/broken/default/guests")
        read_and_close(body)
        assert status == 500
    assert slots(app, "broken") == 0


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_failed_open_frees_slot():
    app = limited_app(type_name="tcp", limit=1)
    host = "127.0.0.1:%d" % free_port()
    for _ in range(3):
        status, _headers, body = call(app, "/tcp/%s/guests" % host)
        document = json.loads(read_and_close(body))
        assert status == 502
        assert document["error"] == "HypervisorUnreachable"
    assert slots(app, "tcp", host) == 0


def test_invalid_limit_is_rejected():
    with pytest.raises(ValueError, match="max_sessions_per_host"):
        limited_app(limit=0)
    with pytest.raises(ValueError, match="max_sessions_per_host"):
        main({}, **app_settings(**{
            "simplestack.hypervisor.test.max_sessions_per_host": "many"}))
