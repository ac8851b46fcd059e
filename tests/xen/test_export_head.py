"""HEAD on a Xen export runs the checks of GET and starts no export.

HEAD returned 200 for a running guest and for a guest whose export XAPI
blocks, where GET returns 409, because only the libvirt adapter had
``check_export``.
"""

import time

import pytest

from simplestack import errors
from simplestack.adapters.xen.images import XVA_CONTENT_TYPE
from tests import backends
from tests.api.test_errors import assert_error
from tests.session_services import (  # noqa: F401 (pytest fixture)
    client, service, simulator, xen_open_sessions)
from tests.simulators.fixtures import XapiSimulator
from tests.xen_fixtures import xapi_session

MISSING = "00000000-0000-4000-8000-000000000000"

#: Seconds that an Async task of the slow simulator stays pending: long
#: enough for a HEAD and a GET while a snapshot of the guest is running.
TASK_DELAY = 5


def head_and_get(api, path):
    """Return the responses to HEAD, then GET, of ``path``'s export."""
    headed = api.head(path + "/export", status="*")
    got = api.get(path + "/export", status="*")
    return headed, got


def assert_no_export_started(simulator):
    """Assert that the service left no task, transfer or session."""
    stats = simulator.stats()
    assert "task.create" not in stats["calls"]
    assert not any("/export" in transfer for transfer in stats["http"])
    assert xen_open_sessions(simulator) == 0
    with xapi_session(simulator) as xenapi:
        assert xenapi.task.get_all() == []


@pytest.fixture
def guest_path(xen_api, xen_host):
    guest = xen_api.post_json(xen_host + "/guests", {
        "name": backends.unique_name("head-export"), "hdd": 1}).json
    path = "%s/guests/%s" % (xen_host, guest["id"])
    yield path
    xen_api.delete(path, status="*")


def vm_ref_of(xenapi, path):
    return xenapi.VM.get_by_uuid(path.rsplit("/", 1)[1])


def test_head_export_stopped_guest_is_200(xen_api, guest_path, simulator):
    simulator.reset_stats()
    headed = xen_api.head(guest_path + "/export", status="*")

    assert headed.status_int == 200
    assert headed.body == b""
    assert_no_export_started(simulator)
    got = xen_api.get(guest_path + "/export")
    assert got.status_int == 200
    # HEAD sends GET's type and file name; XAPI gives no length.
    assert headed.headers["Content-Type"] == got.headers["Content-Type"]
    assert headed.headers["Content-Disposition"] == (
        got.headers["Content-Disposition"])
    assert "Content-Length" not in headed.headers


def test_head_export_suspended_guest_is_200(xen_api, guest_path, simulator):
    xen_api.put_json(guest_path + "/power", {"state": "start"})
    xen_api.put_json(guest_path + "/power", {"state": "pause"})

    simulator.reset_stats()
    headed = xen_api.head(guest_path + "/export", status="*")

    assert headed.status_int == 200
    assert_no_export_started(simulator)
    assert xen_api.get(guest_path + "/export").status_int == 200


def test_head_export_running_guest_is_409(xen_api, guest_path, simulator):
    xen_api.put_json(guest_path + "/power", {"state": "start"})

    simulator.reset_stats()
    headed = xen_api.head(guest_path + "/export", status="*")
    assert_no_export_started(simulator)
    got = xen_api.get(guest_path + "/export", status="*")

    assert headed.status_int == 409
    assert headed.body == b""
    assert "STARTED" in assert_error(got, 409, "InvalidState")["message"]


def test_head_export_blocked_is_409(xen_api, guest_path, simulator):
    with xapi_session(simulator) as xenapi:
        xenapi.VM.add_to_blocked_operations(
            vm_ref_of(xenapi, guest_path), "export", "backup-window")

    simulator.reset_stats()
    headed = xen_api.head(guest_path + "/export", status="*")
    assert_no_export_started(simulator)
    got = xen_api.get(guest_path + "/export", status="*")

    assert headed.status_int == 409
    body = assert_error(got, 409, "InvalidState")
    assert body["hypervisor"]["code"] == "OPERATION_BLOCKED"
    assert "backup-window" in body["message"]


def test_head_export_missing_guest_is_404(xen_api, xen_host, simulator):
    path = "%s/guests/%s" % (xen_host, MISSING)

    simulator.reset_stats()
    headed, got = head_and_get(xen_api, path)

    assert headed.status_int == 404
    assert_error(got, 404, "EntityNotFound")
    assert "task.create" not in simulator.stats()["calls"]


@pytest.mark.parametrize("state, code", [
    ("start", None),
    (None, "OPERATION_BLOCKED"),
])
def test_check_export_raises_as_export(adapter, make_guest, xen_kit,
                                       simulator, state, code):
    guest_id = make_guest()["id"]
    if state is not None:
        adapter.set_power(guest_id, state)
    else:
        with xen_kit.session() as xenapi:
            xenapi.VM.add_to_blocked_operations(
                xenapi.VM.get_by_uuid(guest_id), "export", "backup-window")

    simulator.reset_stats()
    with pytest.raises(errors.InvalidState) as checked:
        adapter.check_export(guest_id)
    assert "task.create" not in simulator.stats()["calls"]
    with pytest.raises(errors.InvalidState) as exported:
        adapter.export_guest(guest_id)

    assert exported.value.code == code
    assert checked.value.code == code
    assert checked.value.message == exported.value.message


def test_check_export_stopped_guest_passes(adapter, make_guest, simulator):
    guest_id = make_guest()["id"]

    simulator.reset_stats()
    facts = adapter.check_export(guest_id)

    assert facts == (XVA_CONTENT_TYPE, guest_id + ".xva", None)

    calls = simulator.stats()["calls"]
    assert "task.create" not in calls
    assert set(calls) == {"VM.get_by_uuid", "VM.get_record"}


# -- an operation in progress ---------------------------------------------------

@pytest.fixture(scope="module")
def slow_simulator():
    """A simulator whose Async tasks stay pending for TASK_DELAY seconds."""
    started = XapiSimulator("--vms", "3", "--task-delay",
                            str(TASK_DELAY)).start()
    yield started
    started.stop()


def halted_seeded_vm(xenapi):
    for ref, record in xenapi.VM.get_all_records().items():
        if record["name_label"].startswith("sim-vm-") and \
                record["power_state"] == "Halted" and \
                not record["is_a_template"]:
            return ref, record["uuid"]
    raise LookupError("no halted seeded VM")


def wait_for_task_end(xenapi, task):
    deadline = time.monotonic() + TASK_DELAY + 10
    while xenapi.task.get_status(task) in ("pending", "cancelling"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    xenapi.task.destroy(task)


def test_head_export_during_snapshot_is_409(slow_simulator):
    api = client(service("xen", slow_simulator), slow_simulator)
    with xapi_session(slow_simulator) as xenapi:
        ref, uuid = halted_seeded_vm(xenapi)
        path = "/xen/%s/guests/%s" % (slow_simulator.netloc, uuid)
        task = xenapi.Async.VM.snapshot(ref, backends.unique_name("snapshot"), [])
        try:
            deadline = time.monotonic() + TASK_DELAY
            while not xenapi.VM.get_current_operations(ref):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            slow_simulator.reset_stats()

            headed = api.head(path + "/export", status="*")
            stats = slow_simulator.stats()
            started = time.monotonic()
            got = api.get(path + "/export", status="*")
            seconds = time.monotonic() - started
            pending = xenapi.task.get_status(task) == "pending"
        finally:
            xenapi.task.cancel(task)
            wait_for_task_end(xenapi, task)

    assert pending
    assert headed.status_int == 409
    assert "task.create" not in stats["calls"]
    assert stats["sessions"].get("simplestack", 0) == 0
    body = assert_error(got, 409, "InvalidState")
    assert body["hypervisor"]["code"] == "OTHER_OPERATION_IN_PROGRESS"
    assert "snapshot" in body["message"]
    # XAPI would wait for the snapshot before failing; the check does not.
    assert seconds < TASK_DELAY
