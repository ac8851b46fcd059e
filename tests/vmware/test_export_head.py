"""HEAD on a vSphere export runs the checks of GET and starts no export.

HEAD returned 200 for a powered-on guest, where GET returns 409, because
only the libvirt adapter had ``check_export``. The simulator's missing
ExportVm shows only when GET calls it, which on vSphere creates an
export lease, so HEAD returns 200 where GET returns 501.
"""

import pytest

from simplestack import errors
from tests import backends
from tests.api.test_errors import assert_error
from tests.vmware.conftest import open_sessions

MISSING = "00000000-0000-4000-8000-000000000000"


def task_count(vcsim_simulator):
    with vcsim_simulator.session() as service:
        return len(service.RetrieveContent().taskManager.recentTask)


@pytest.fixture
def guest_path(vmware_api, vmware_host):
    guest = vmware_api.post_json(vmware_host + "/guests", {
        "name": backends.unique_name("head-export"), "hdd": 1}).json
    path = "%s/guests/%s" % (vmware_host, guest["id"])
    yield path
    vmware_api.delete(path, status="*")


def head_export(vmware_api, vcsim_simulator, path):
    """Return the response to HEAD of ``path``'s export, after checking
    that it left no task and no session."""
    tasks = task_count(vcsim_simulator)
    sessions = open_sessions(vcsim_simulator)

    headed = vmware_api.head(path + "/export", status="*")

    assert headed.body == b""
    assert task_count(vcsim_simulator) == tasks
    assert open_sessions(vcsim_simulator) == sessions
    return headed


def test_head_export_powered_on_is_409(vmware_api, vcsim_simulator,
                                       guest_path):
    vmware_api.put_json(guest_path + "/power", {"state": "start"})

    headed = head_export(vmware_api, vcsim_simulator, guest_path)
    got = vmware_api.get(guest_path + "/export", status="*")

    assert headed.status_int == 409
    assert "STARTED" in assert_error(got, 409, "InvalidState")["message"]


def test_head_export_missing_guest_is_404(vmware_api, vcsim_simulator,
                                          vmware_host):
    path = "%s/guests/%s" % (vmware_host, MISSING)

    headed = head_export(vmware_api, vcsim_simulator, path)
    got = vmware_api.get(path + "/export", status="*")

    assert headed.status_int == 404
    assert_error(got, 404, "EntityNotFound")


@pytest.mark.parametrize("state", [None, "pause"])
def test_head_export_without_export_vm(vmware_api, vcsim_simulator,
                                       guest_path, state):
    """HEAD cannot know that the server lacks ExportVm without calling it,
    which would create a lease on vSphere."""
    if state is not None:
        vmware_api.put_json(guest_path + "/power", {"state": "start"})
        vmware_api.put_json(guest_path + "/power", {"state": state})

    headed = head_export(vmware_api, vcsim_simulator, guest_path)
    got = vmware_api.get(guest_path + "/export", status="*")

    assert headed.status_int == 200
    body = assert_error(got, 501, "FeatureNotImplemented")
    assert body["hypervisor"]["code"] == "MethodNotFound"


def test_check_export_powered_on_raises_as_export(adapter, make_guest):
    guest_id = make_guest()["id"]
    adapter.set_power(guest_id, "start")

    with pytest.raises(errors.InvalidState) as checked:
        adapter.check_export(guest_id)
    with pytest.raises(errors.InvalidState) as exported:
        adapter.export_guest(guest_id)

    assert checked.value.message == exported.value.message
    assert checked.value.code == exported.value.code


def test_check_export_missing_raises_as_export(adapter):
    with pytest.raises(errors.EntityNotFound) as checked:
        adapter.check_export(MISSING)
    with pytest.raises(errors.EntityNotFound) as exported:
        adapter.export_guest(MISSING)

    assert checked.value.message == exported.value.message


def test_check_export_powered_off_passes(adapter, make_guest,
                                         vcsim_simulator):
    guest_id = make_guest()["id"]
    tasks = task_count(vcsim_simulator)

    facts = adapter.check_export(guest_id)

    assert facts == ("application/ova", guest_id + ".ova", None)
    assert task_count(vcsim_simulator) == tasks
