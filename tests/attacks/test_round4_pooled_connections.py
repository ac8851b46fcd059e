"""A XAPI or vSphere connection that the server closes while it is idle.

With session_reuse on, a pooled Xen or VMware adapter keeps its HTTPS
connections open between requests. When the server (or anything between)
closed one, the next call on it failed with SSLEOFError, which neither
xmlrpc.client nor pyVmomi retries on a new connection (xmlrpc.client
retries only RemoteDisconnected, ECONNRESET, ECONNABORTED and EPIPE). So
the next request got 502, and the logout at idle expiry failed and left
the session open on the host.
"""

import time

import pytest
from webtest import TestApp

from tests.attacks import stack
from tests.conftest import CANARY_PASSWORD, make_token
from tests.faults.proxy import FaultProxy
from tests.session_services import service

IDLE_TIMEOUT = 1


class Proxied:
    """A simulator with the canary password behind a TCP proxy."""

    def __init__(self, backend, simulator, port):
        self.backend = backend
        self.simulator = simulator
        self.proxy = FaultProxy(port)

    def client(self):
        """Return a client of a service that pools sessions."""
        app = service(self.backend, self.simulator, session_reuse="true",
                      session_idle_timeout=str(IDLE_TIMEOUT))
        return TestApp(app, extra_environ={
            "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
                self.simulator.username, CANARY_PASSWORD)})

    def guests_path(self):
        return "/%s/127.0.0.1:%d/guests?fields=id" % (self.backend,
                                                      self.proxy.port)

    def logins(self):
        stats = self.simulator.stats()
        if self.backend == "xen":
            return stats["logins"].get("simplestack", 0)
        return stats["logins"]

    def open_sessions(self):
        """Return the service's sessions that the simulator has open."""
        if self.backend == "xen":
            return self.simulator.stats()["open_sessions"]
        with self.simulator.session(password=CANARY_PASSWORD) as connection:
            # Less the session of this check.
            return len(connection.content.sessionManager.sessionList) - 1


@pytest.fixture(params=["xen", "vmware"])
def proxied(request, tmp_path):
    if request.param == "xen":
        simulator = stack.start_xapi()
        port = int(simulator.netloc.split(":")[1])
    else:
        simulator = stack.start_vcsim(temporary_dir=tmp_path)
        port = simulator.port
    running = Proxied(request.param, simulator, port)
    try:
        yield running
    finally:
        running.proxy.close()
        simulator.stop()


def test_pooled_session_survives_dropped_connection(proxied):
    client = proxied.client()
    client.get(proxied.guests_path())
    proxied.proxy.drop_connections()

    response = client.get(proxied.guests_path(), status="*")

    assert response.status_int == 200, response.text
    assert proxied.logins() == 1


def test_idle_expiry_logs_out_after_dropped_connection(proxied):
    client = proxied.client()
    client.get(proxied.guests_path())
    proxied.proxy.drop_connections()

    deadline = time.monotonic() + IDLE_TIMEOUT + 5
    while proxied.open_sessions() and time.monotonic() < deadline:
        time.sleep(0.2)

    assert proxied.open_sessions() == 0
