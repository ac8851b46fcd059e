"""Session reuse on the vSphere simulator (vCenter model).

Open sessions are read from the simulator's session manager through a
separate pyVmomi session, which is not counted.
"""

import time

import pytest

from simplestack.sessions import sessions_of
from tests.session_services import client, service
from tests.simulators.vcsim_fixtures import vcsim_simulator  # noqa: F401

pytestmark = pytest.mark.parametrize("vcsim_simulator", ["vpx"],
                                     indirect=True)


def vmware_service(simulator, **type_settings):
    return service("vmware", simulator, **type_settings)


def service_sessions(simulator):
    """Return the keys of the sessions other than the one that reads them."""
    with simulator.session() as service:
        manager = service.RetrieveContent().sessionManager
        own = manager.currentSession.key
        return [session.key for session in manager.sessionList
                if session.key != own]


def terminate_sessions(simulator, keys):
    with simulator.session() as service:
        service.RetrieveContent().sessionManager.TerminateSession(keys)


def guests_path(simulator):
    return "/vmware/%s/guests" % simulator.netloc


@pytest.fixture
def pooled_app(vcsim_simulator):
    app = vmware_service(vcsim_simulator, session_reuse="true")
    yield app
    sessions_of(app.registry).shutdown()


def test_reuse_off_leaves_no_session(vcsim_simulator):
    api = client(vmware_service(vcsim_simulator), vcsim_simulator)
    before = vcsim_simulator.stats()["logins"]
    for _ in range(3):
        api.get(guests_path(vcsim_simulator))
    assert vcsim_simulator.stats()["logins"] - before == 3
    assert service_sessions(vcsim_simulator) == []


def test_reuse_on_keeps_one_session(vcsim_simulator, pooled_app):
    api = client(pooled_app, vcsim_simulator)
    before = vcsim_simulator.stats()["logins"]
    for _ in range(4):
        api.get(guests_path(vcsim_simulator))
    assert vcsim_simulator.stats()["logins"] - before == 1
    assert len(service_sessions(vcsim_simulator)) == 1
    sessions_of(pooled_app.registry).shutdown()
    assert service_sessions(vcsim_simulator) == []


def test_terminated_session_is_renewed(vcsim_simulator, pooled_app):
    api = client(pooled_app, vcsim_simulator)
    api.get(guests_path(vcsim_simulator))
    [first] = service_sessions(vcsim_simulator)
    terminate_sessions(vcsim_simulator, [first])

    response = api.get(guests_path(vcsim_simulator))
    assert response.status_int == 200
    remaining = service_sessions(vcsim_simulator)
    assert len(remaining) == 1
    assert remaining != [first]


def test_wrong_password_is_not_pooled(vcsim_simulator, pooled_app):
    wrong = client(pooled_app, vcsim_simulator, password="wrong-password")
    response = wrong.get(guests_path(vcsim_simulator), status=401)
    assert response.json["error"] == "HypervisorAuthenticationFailed"
    manager = sessions_of(pooled_app.registry)
    assert manager.idle_count() == 0
    assert manager.slots_taken("vmware", vcsim_simulator.netloc) == 0


def test_idle_session_is_closed(vcsim_simulator):
    app = vmware_service(vcsim_simulator, session_reuse="true",
                         session_idle_timeout="0.3")
    client(app, vcsim_simulator).get(guests_path(vcsim_simulator))
    deadline = time.monotonic() + 5
    while service_sessions(vcsim_simulator) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert service_sessions(vcsim_simulator) == []
