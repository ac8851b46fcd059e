"""Session reuse and the session limit on the XAPI simulator.

Each test builds its own service from testing.ini with the settings it
needs, and counts logins and open sessions at the simulator, under the
service's originator ("simplestack").
"""

import hashlib
import json
import logging
import threading
import time
import uuid
import xmlrpc.client

import pytest
from webob import Request

from simplestack.sessions import sessions_of
from tests.conftest import make_token
from tests.session_services import (  # noqa: F401 (the simulator fixture)
    XEN_ORIGINATOR as ORIGINATOR, client, service, simulator,
    xen_logins as logins, xen_open_sessions as open_sessions)
from tests.simulators.fixtures import xapi_simulator  # noqa: F401
from tests.xen_fixtures import CATransport

MISSING = "00000000-0000-0000-0000-000000000000"


def xen_service(simulator, **type_settings):
    return service("xen", simulator, **type_settings)


@pytest.fixture
def pooled_app(simulator):
    app = xen_service(simulator, session_reuse="true")
    yield app
    sessions_of(app.registry).shutdown()


def guests_path(simulator):
    return "/xen/%s/guests" % simulator.netloc


def test_reuse_off_logs_in_per_request(simulator):
    api = client(xen_service(simulator), simulator)
    for _ in range(3):
        api.get(guests_path(simulator))
    assert logins(simulator) == 3
    assert open_sessions(simulator) == 0


def test_reuse_on_logs_in_once(simulator, pooled_app):
    api = client(pooled_app, simulator)
    for _ in range(5):
        api.get(guests_path(simulator))
    assert logins(simulator) == 1
    assert open_sessions(simulator) == 1
    manager = sessions_of(pooled_app.registry)
    assert manager.idle_count() == 1
    assert manager.slots_taken("xen", simulator.netloc) == 1

    manager.shutdown()
    assert open_sessions(simulator) == 0
    assert manager.slots_taken("xen", simulator.netloc) == 0


def test_pool_key_hides_credentials(simulator, pooled_app):
    client(pooled_app, simulator).get(guests_path(simulator))
    manager = sessions_of(pooled_app.registry)
    keys = repr(list(manager._idle))
    assert simulator.password not in keys
    assert simulator.username not in keys
    # Nor a plain hash, which anyone could compute from a guessed password.
    encoded = json.dumps([simulator.username, simulator.password]).encode()
    assert hashlib.sha256(encoded).hexdigest() not in keys

    # Each application draws its own key, as each server process does, so
    # the digests differ.
    other_app = xen_service(simulator, session_reuse="true")
    try:
        client(other_app, simulator).get(guests_path(simulator))
        other_keys = list(sessions_of(other_app.registry)._idle)
        assert other_keys[0][:2] == list(manager._idle)[0][:2]
        assert other_keys[0][2] != list(manager._idle)[0][2]
    finally:
        sessions_of(other_app.registry).shutdown()


def test_other_credentials_get_own_session(simulator, pooled_app):
    client(pooled_app, simulator).get(guests_path(simulator))
    wrong = client(pooled_app, simulator, password="wrong-password")
    for _ in range(2):
        response = wrong.get(guests_path(simulator), status=401)
        assert response.json["error"] == "HypervisorAuthenticationFailed"
    manager = sessions_of(pooled_app.registry)
    # Credentials that fail to log in are never pooled.
    assert manager.idle_count() == 1
    assert manager.slots_taken("xen", simulator.netloc) == 1


def test_definite_error_keeps_session(simulator, pooled_app):
    api = client(pooled_app, simulator)
    api.get(guests_path(simulator) + "/" + MISSING, status=404)
    api.get(guests_path(simulator))
    assert logins(simulator) == 1


def test_calls_are_counted_per_request(simulator, pooled_app, caplog):
    api = client(pooled_app, simulator)
    with caplog.at_level(logging.INFO, logger="simplestack.requests"):
        api.get(guests_path(simulator))
        api.get(guests_path(simulator))
    counts = [record.getMessage().split("hypervisor_calls=")[1].split()[0]
              for record in caplog.records
              if "hypervisor_calls=" in record.getMessage()]
    assert len(counts) == 2
    # The first request also logged in; the second one reused the session.
    assert int(counts[0]) == int(counts[1]) + 1


def test_gone_session_is_renewed_once(simulator, pooled_app):
    api = client(pooled_app, simulator)
    api.get(guests_path(simulator))
    method = "event.from"
    simulator.reset_stats()
    simulator.set_fault(method, error=["SESSION_INVALID", "OpaqueRef:gone"],
                        times=1)
    response = api.get(guests_path(simulator))
    assert response.status_int == 200
    assert logins(simulator) == 1
    # The failed call, then the same call in the new session.
    assert simulator.stats()["calls"][method] == 2


def test_session_gone_twice_is_an_error(simulator, pooled_app):
    api = client(pooled_app, simulator)
    api.get(guests_path(simulator))
    simulator.set_fault("event.from",
                        error=["SESSION_INVALID", "OpaqueRef:gone"], times=2)
    response = api.get(guests_path(simulator), status=502)
    assert response.json["hypervisor"]["code"] == "SESSION_INVALID"
    manager = sessions_of(pooled_app.registry)
    assert manager.idle_count() == 0
    assert manager.slots_taken("xen", simulator.netloc) == 0


def test_fresh_session_is_renewed_too(simulator):
    api = client(xen_service(simulator), simulator)
    simulator.set_fault("event.from",
                        error=["SESSION_INVALID", "OpaqueRef:gone"], times=1)
    api.get(guests_path(simulator))
    assert logins(simulator) == 2
    assert open_sessions(simulator) == 0


def test_timeout_closes_session(simulator):
    app = xen_service(simulator, session_reuse="true", read_timeout="0.5")
    api = client(app, simulator)
    api.get(guests_path(simulator))
    simulator.set_fault("event.from", action="hang", seconds=5, times=1)
    response = api.get(guests_path(simulator), status=504)
    assert response.json["error"] == "HypervisorTimeout"
    simulator.clear_faults()
    manager = sessions_of(app.registry)
    assert manager.idle_count() == 0
    assert manager.slots_taken("xen", simulator.netloc) == 0
    api.get(guests_path(simulator))
    assert logins(simulator) == 2
    manager.shutdown()


def test_idle_session_closes_without_requests(simulator):
    app = xen_service(simulator, session_reuse="true",
                      session_idle_timeout="0.3")
    client(app, simulator).get(guests_path(simulator))
    assert open_sessions(simulator) == 1
    deadline = time.monotonic() + 5
    while open_sessions(simulator) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_sessions(simulator) == 0
    assert sessions_of(app.registry).slots_taken("xen", simulator.netloc) \
        == 0


def test_pooled_session_counts_toward_limit(simulator):
    app = xen_service(simulator, session_reuse="true",
                      max_sessions_per_host="1")
    api = client(app, simulator)
    api.get(guests_path(simulator))
    api.get(guests_path(simulator))
    assert logins(simulator) == 1
    # Other credentials take the idle session's slot rather than fail.
    client(app, simulator, password="wrong-password").get(
        guests_path(simulator), status=401)
    manager = sessions_of(app.registry)
    assert manager.idle_count() == 0
    assert manager.slots_taken("xen", simulator.netloc) == 0
    assert open_sessions(simulator) == 0


def test_no_sessions_left_after_mixed_requests(simulator, pooled_app):
    api = client(pooled_app, simulator)
    wrong = client(pooled_app, simulator, password="wrong-password")
    for index in range(30):
        if index % 3 == 0:
            wrong.get(guests_path(simulator), status=401)
        elif index % 3 == 1:
            api.get(guests_path(simulator) + "/" + MISSING, status=404)
        else:
            api.get(guests_path(simulator))
    assert logins(simulator) == 1
    sessions_of(pooled_app.registry).shutdown()
    assert open_sessions(simulator) == 0


def test_concurrent_requests_use_own_sessions(simulator, pooled_app):
    simulator.set_latency(0.3)
    barrier = threading.Barrier(2)
    statuses = []

    def send():
        api = client(pooled_app, simulator)
        barrier.wait()
        statuses.append(api.get(guests_path(simulator)).status_int)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200, 200]
    # A pooled session serves one request at a time, so the two requests
    # in flight together logged in twice, and both sessions are pooled.
    assert logins(simulator) == 2
    assert sessions_of(pooled_app.registry).idle_count() == 2


def start_wsgi_get(app, simulator, path):
    """Call the WSGI app without reading the body; return (status, body)."""
    request = Request.blank(path, headers={
        "x-simplestack-hypervisor-token": make_token(
            simulator.username, simulator.password)})
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status

    body = app(request.environ, start_response)
    return int(captured["status"][:3]), body


def test_streamed_session_is_closed_not_pooled(simulator, pooled_app):
    api = client(pooled_app, simulator)
    guest = api.post_json(guests_path(simulator), {
        "name": "sstest-" + uuid.uuid4().hex[:8], "memory": 64,
        "hdd": 1}).json
    manager = sessions_of(pooled_app.registry)
    host = simulator.netloc
    try:
        assert manager.idle_count() == 1

        status, body = start_wsgi_get(
            pooled_app, simulator,
            "%s/%s/export" % (guests_path(simulator), guest["id"]))
        assert status == 200
        # The stream took the pooled session over.
        assert manager.idle_count() == 0
        assert manager.slots_taken("xen", host) == 1

        api.get(guests_path(simulator))
        assert manager.slots_taken("xen", host) == 2
        assert next(iter(body))
        body.close()
        # The stream's session is closed, and only the list's is pooled.
        assert manager.slots_taken("xen", host) == 1
        assert manager.idle_count() == 1
        assert open_sessions(simulator) == 1
    finally:
        api.delete("%s/%s" % (guests_path(simulator), guest["id"]))


def test_session_evicted_by_xapi_is_renewed(simulator, pooled_app):
    api = client(pooled_app, simulator)
    api.get(guests_path(simulator))
    # XAPI keeps 500 sessions per originator and logs out the least
    # recently used one past that: here, the pooled session.
    proxy = xmlrpc.client.ServerProxy(
        simulator.url, transport=CATransport(simulator.ca_bundle))
    others = []
    try:
        for _ in range(500):
            result = proxy.session.login_with_password(
                simulator.username, simulator.password, "1.0",
                ORIGINATOR)
            others.append(result["Value"])
        assert open_sessions(simulator) == 500

        response = api.get(guests_path(simulator))
        assert response.status_int == 200
        assert logins(simulator) == 502
    finally:
        for session in others:
            proxy.session.logout(session)
