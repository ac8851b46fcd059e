"""The per-host session limit and the session pool under attack.

Spellings of one host: a listener that accepts connections and never
replies keeps a request's session slot taken until the adapter times out.
Every other spelling of that host must then get 503 at once, not open one
more session. The pool: credentials that differ in any way never get a
session that other credentials opened, and an evicted session is logged
out.
"""

import socket
import threading
import time

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from simplestack.sessions import sessions_of
from tests.attacks.conftest import assert_error
from tests.conftest import make_token
from tests.server import TESTING_INI
from tests.session_services import (  # noqa: F401 (the simulator fixture)
    client as session_client, service as session_service, simulator,
    xen_logins, xen_open_sessions)
from tests.simulators.fixtures import xapi_simulator  # noqa: F401

READ_TIMEOUT = 4


class HungListener:
    """A TCP listener that accepts connections and never replies."""

    def __init__(self, family, address, port):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((address, port))
        self.sock.listen(64)
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.sock.close()
        for connection in self.connections:
            connection.close()


def bind_low_port():
    """Return listeners on 127.0.0.1 and ::1 on one free port below 10000,
    so that the port can take leading zeros within five digits."""
    for port in range(7311, 9999):
        try:
            ipv4 = HungListener(socket.AF_INET, "127.0.0.1", port)
        except OSError:
            continue
        try:
            ipv6 = HungListener(socket.AF_INET6, "::1", port)
        except OSError:
            ipv4.close()
            continue
        return port, ipv4, ipv6
    raise RuntimeError("no free port below 10000 on 127.0.0.1 and ::1")


@pytest.fixture(scope="module")
def hung():
    port, ipv4, ipv6 = bind_low_port()
    yield port
    ipv4.close()
    ipv6.close()


def service():
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    prefix = "simplestack.hypervisor.xen."
    settings[prefix + "max_sessions_per_host"] = "1"
    settings[prefix + "connect_timeout"] = "2"
    settings[prefix + "read_timeout"] = str(READ_TIMEOUT)
    return TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token("root", "pw")})


def hold_slot(app, url_host):
    """Start a request that waits on the hung listener; return its thread
    once the request holds the host's session slot."""
    thread = threading.Thread(target=app.get, args=(
        "/xen/%s/guests" % url_host,), kwargs={"expect_errors": True})
    thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        manager = getattr(app.app.registry, "simplestack_sessions", None)
        if manager is not None and manager.slots_taken("xen", url_host):
            return thread
        time.sleep(0.02)
    raise AssertionError("the first request never took a session slot")


@pytest.mark.parametrize("held, other", [
    ("127.0.0.1:{port}", "127.0.0.1:0{port}"),
    ("[::1]:{port}", "[0::1]:{port}"),
    ("[::1]:{port}", "[0:0:0:0:0:0:0:1]:{port}"),
    ("[::1]:{port}", "[0000::0001]:0{port}"),
])
def test_other_spelling_gets_503(hung, held, other):
    app = service()
    holder = hold_slot(app, held.format(port=hung))
    started = time.monotonic()

    response = app.get("/xen/%s/guests" % other.format(port=hung),
                       expect_errors=True)

    elapsed = time.monotonic() - started
    holder.join(READ_TIMEOUT + 5)
    body = assert_error(response, 503, "ServiceUnavailable")
    assert response.headers["Retry-After"] == "5"
    assert "max_sessions_per_host" in body["message"]
    assert elapsed < READ_TIMEOUT - 1


# -- the session pool on the XAPI simulator ----------------------------------

@pytest.fixture
def pooled_app(simulator):
    app = session_service("xen", simulator, session_reuse="true")
    yield app
    sessions_of(app.registry).shutdown()


@pytest.mark.parametrize("password", [
    "simulator ", " simulator", "Simulator", "simulat\u006fr\u0301",
    "simulator\u200b", "",
])
def test_near_password_never_gets_pooled_session(simulator, pooled_app,
                                                 password):
    path = "/xen/%s/guests" % simulator.netloc
    session_client(pooled_app, simulator).get(path)
    logins_before = xen_logins(simulator)

    response = session_client(pooled_app, simulator, password=password).get(
        path, expect_errors=True)

    assert_error(response, 401, "HypervisorAuthenticationFailed")
    # The 401 shows that the request tried its own credentials; the
    # simulator counts only logins that succeed.
    assert xen_logins(simulator) == logins_before
    assert sessions_of(pooled_app.registry).idle_count() == 1


def test_wrong_password_eviction_leaks_no_session(simulator):
    # With one slot, a request with other credentials closes the idle
    # pooled session to take its slot; the session must be logged out.
    app = session_service("xen", simulator, session_reuse="true",
                          max_sessions_per_host="1")
    path = "/xen/%s/guests" % simulator.netloc
    try:
        session_client(app, simulator).get(path)
        assert xen_open_sessions(simulator) == 1

        response = session_client(app, simulator, password="wrong").get(
            path, expect_errors=True)

        assert_error(response, 401, "HypervisorAuthenticationFailed")
        assert xen_open_sessions(simulator) == 0
        assert sessions_of(app.registry).slots_taken(
            "xen", simulator.netloc) == 0
    finally:
        sessions_of(app.registry).shutdown()

