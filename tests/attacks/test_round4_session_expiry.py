"""Idle expiry of pooled sessions while the reaper is logging one out.

The reaper thread computed when to wake next, then logged out the expired
sessions, then waited. A session returned to the pool during those logouts
sent its wake-up to no one, and the reaper slept for the time it had
computed before: 60 s when the pool had been empty, whatever
session_idle_timeout was.
"""

import threading
import time

import pytest
from webtest import TestApp

from tests.attacks import stack
from tests.conftest import CANARY_PASSWORD, make_token
from tests.session_services import service, xen_open_sessions

IDLE_TIMEOUT = 1

#: Seconds that the first session's logout hangs on the simulator.
LOGOUT_HANG = 3


@pytest.fixture
def simulator():
    running = stack.start_xapi()
    try:
        yield running
    finally:
        running.stop()


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def test_session_pooled_during_logout_expires(simulator):
    app = service("xen", simulator, session_reuse="true",
                  session_idle_timeout=str(IDLE_TIMEOUT))
    client = TestApp(app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            "root", CANARY_PASSWORD)})
    guests = "/xen/%s/guests?fields=id" % simulator.netloc
    client.get(guests)
    simulator.set_fault("session.logout", action="hang",
                        seconds=LOGOUT_HANG, times=1)
    logouts_before = simulator.stats()["calls"].get("session.logout", 0)

    # The first session expires, and its logout hangs in the reaper.
    assert wait_until(lambda: simulator.stats()["calls"].get(
        "session.logout", 0) > logouts_before, IDLE_TIMEOUT + 5)
    # A request during the hang pools a second session.
    second = threading.Thread(target=client.get, args=(guests,))
    second.start()
    second.join(30)

    assert wait_until(lambda: xen_open_sessions(simulator) == 0,
                      LOGOUT_HANG + IDLE_TIMEOUT + 5)
