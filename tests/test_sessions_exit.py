"""Pooled sessions are logged out when the server process exits cleanly.

The service runs under production.ini's gunicorn and development.ini's
waitress (tests/derived_servers.py) with session reuse on for Xen, and the
XAPI simulator counts the sessions left open.
"""

import signal

from tests.derived_servers import ServiceServer
from tests.session_services import (  # noqa: F401 (the simulator fixture)
    simulator, xen_open_sessions as open_sessions)
from tests.simulators.fixtures import xapi_simulator  # noqa: F401

STOP_TIMEOUT = 15


def pooled_server(kind):
    return ServiceServer(kind, {"xen": {"session_reuse": "true"}},
                         name="exit-test")


def list_guests(server, simulator, times=3):
    for _ in range(times):
        status, _body = server.get("/xen/%s/guests" % simulator.netloc,
                                   simulator)
        assert status == 200


def test_gunicorn_stop_logs_out_pooled_sessions(simulator):
    with pooled_server("gunicorn") as server:
        list_guests(server, simulator)
        assert open_sessions(simulator) >= 1
        # SIGTERM to the master, which stops its workers gracefully.
        server.server.stop()
        assert server.server.process.returncode == 0
    assert open_sessions(simulator) == 0


def test_waitress_interrupt_logs_out_pooled_sessions(simulator):
    with pooled_server("waitress") as server:
        list_guests(server, simulator)
        assert open_sessions(simulator) == 1
        process = server.server.process
        process.send_signal(signal.SIGINT)
        process.wait(STOP_TIMEOUT)
        assert process.returncode == 0
    assert open_sessions(simulator) == 0
