"""Services and clients for the session tests on the simulators."""

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from tests.conftest import make_token
from tests.server import TESTING_INI


def service(type_name, simulator, **type_settings):
    """Return the service from testing.ini, trusting the simulator's CA,
    with ``type_settings`` for the hypervisor type ``type_name``."""
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    type_settings.setdefault("ca_bundle", simulator.ca_bundle)
    for key, value in type_settings.items():
        settings["simplestack.hypervisor.%s.%s" % (type_name, key)] = \
            str(value)
    return main({}, **settings)


def client(app, simulator, password=None):
    """Return a WebTest client whose token carries the simulator's user
    and ``password`` (default: the simulator's own)."""
    token = make_token(simulator.username,
                       simulator.password if password is None else password)
    return TestApp(app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": token})


#: The originator of the service's Xen sessions (the Xen adapter's default).
XEN_ORIGINATOR = "simplestack"


def xen_logins(simulator):
    """Return the logins of the service's originator at the XAPI simulator."""
    return simulator.stats()["logins"].get(XEN_ORIGINATOR, 0)


def xen_open_sessions(simulator):
    """Return the sessions of the service's originator still open."""
    return simulator.stats()["sessions"].get(XEN_ORIGINATOR, 0)


@pytest.fixture
def simulator(xapi_simulator):
    """The session's XAPI simulator with no faults, no latency and its
    counters reset."""
    xapi_simulator.clear_faults()
    xapi_simulator.set_latency(0)
    xapi_simulator.reset_stats()
    yield xapi_simulator
    xapi_simulator.clear_faults()
    xapi_simulator.set_latency(0)
