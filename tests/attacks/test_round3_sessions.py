"""The per-host session limit against other spellings of the same host.

A listener that accepts connections and never replies keeps a request's
session slot taken until the adapter times out. Every other spelling of that
host must then get 503 at once, not open one more session.
"""

import socket
import threading
import time

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from tests.attacks.conftest import assert_error
from tests.conftest import make_token
from tests.server import TESTING_INI

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
