"""A XAPI connection that the server closes while it is idle.

With session_reuse on, a pooled Xen adapter keeps its HTTPS connection
open between requests. When the server (or anything between) closes that
connection, the next call on it fails with SSLEOFError, which the
standard library's XML-RPC transport does not retry on a new connection
(it retries only RemoteDisconnected, ECONNRESET, ECONNABORTED and EPIPE).
So the next request got 502, and the logout at idle expiry failed and left
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


@pytest.fixture
def proxied():
    """A XAPI simulator with the canary password behind a TCP proxy."""
    simulator = stack.start_xapi()
    proxy = FaultProxy(int(simulator.netloc.split(":")[1]))
    try:
        yield simulator, proxy
    finally:
        proxy.close()
        simulator.stop()


def pooled_client(simulator):
    app = service("xen", simulator, session_reuse="true",
                  session_idle_timeout=str(IDLE_TIMEOUT))
    return TestApp(app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            "root", CANARY_PASSWORD)})


def test_pooled_session_survives_dropped_connection(proxied):
    simulator, proxy = proxied
    client = pooled_client(simulator)
    guests = "/xen/127.0.0.1:%d/guests?fields=id" % proxy.port
    client.get(guests)
    proxy.drop_connections()

    response = client.get(guests, status="*")

    assert response.status_int == 200, response.text
    assert simulator.stats()["logins"]["simplestack"] == 1


def test_idle_expiry_logs_out_after_dropped_connection(proxied):
    simulator, proxy = proxied
    client = pooled_client(simulator)
    client.get("/xen/127.0.0.1:%d/guests?fields=id" % proxy.port)
    proxy.drop_connections()

    deadline = time.monotonic() + IDLE_TIMEOUT + 5
    while simulator.stats()["open_sessions"] and time.monotonic() < deadline:
        time.sleep(0.2)

    assert simulator.stats()["open_sessions"] == 0
