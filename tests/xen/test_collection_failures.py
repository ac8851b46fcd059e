"""XAPI's not-found failures on calls that name no object of the request.

HANDLE_INVALID or UUID_INVALID means that the object a call names is
gone. A call may read a collection (VM.get_all_records_where, event.from,
host.get_all_records) or an object that the request did not name (a VBD
of the guest). Such a failure is the hypervisor's: 502 HypervisorError
with the code kept, never 404 as if the path did not exist. On a call
about the guest that the path names it stays 404, and so does a not-found
failure of another call while that guest is gone.
"""

import threading
import time

import pytest

from tests import backends
from tests.xen_fixtures import xapi_session

GONE = ["HANDLE_INVALID", "VM", "OpaqueRef:5d1e0a52-sstest-gone"]

#: Maximum seconds that a hung call waits for the test to change the pool.
WINDOW_SECONDS = 10


@pytest.fixture
def faults(xapi_simulator):
    """The simulator's fault rules, cleared after the test."""
    yield xapi_simulator
    xapi_simulator.clear_faults()


@pytest.fixture
def guest_path(xen_api, xen_host):
    """The path of a new stopped guest with a disk and a NIC."""
    guest = xen_api.post_json(xen_host + "/guests", {
        "name": backends.unique_name("collection"), "hdd": 1}).json
    path = "%s/guests/%s" % (xen_host, guest["id"])
    network = xen_api.get(xen_host + "/networks").json[0]["id"]
    xen_api.post_json(path + "/network_interfaces", {"network": network})
    yield path
    xen_api.delete(path)


def assert_hypervisor_error(response, method, xapi_simulator):
    body = response.json
    assert response.status_int == 502
    assert body["error"] == "HypervisorError"
    assert method in body["message"]
    assert "HANDLE_INVALID" in body["message"]
    assert body["hypervisor"]["code"] == "HANDLE_INVALID"
    assert "OpaqueRef:" not in response.text
    assert "Traceback" not in response.text
    assert xapi_simulator.stats()["sessions"].get("simplestack", 0) == 0


@pytest.mark.parametrize("path, method", [
    ("/guests", "VM.get_all_records_where"),
    ("/guests", "event.from"),
    ("", "event.from"),
    ("/hosts", "host.get_all_records"),
    ("/storages", "SR.get_all_records"),
    ("/networks", "event.from"),
])
def test_pool_collection_gone_handle_is_502(xen_api, xen_host, faults,
                                            path, method):
    faults.set_fault(method, error=GONE, times=1)

    response = xen_api.get(xen_host + path, status="*")

    assert_hypervisor_error(response, method, faults)


@pytest.mark.parametrize("path, method", [
    ("/disks", "VBD.get_record"),
    ("/disks", "VDI.get_record"),
    ("/network_interfaces", "VIF.get_record"),
    ("/network_interfaces", "network.get_record"),
])
def test_guest_collection_gone_handle_is_502(xen_api, guest_path, faults,
                                             path, method):
    faults.set_fault(method, error=GONE, times=1)

    response = xen_api.get(guest_path + path, status="*")

    assert_hypervisor_error(response, method, faults)


@pytest.mark.parametrize("path, method", [
    ("", "VM.get_record"),
    ("/tags", "VM.get_tags"),
    ("/snapshots", "VM.get_record"),
])
def test_named_guest_gone_handle_is_404(xen_api, guest_path, faults, path,
                                        method):
    faults.set_fault(method, error=GONE, times=1)

    response = xen_api.get(guest_path + path, status="*")

    assert response.status_int == 404
    assert response.json["error"] == "EntityNotFound"
    assert response.json["hypervisor"]["code"] == "HANDLE_INVALID"
    assert faults.stats()["sessions"].get("simplestack", 0) == 0


def test_list_works_after_failure(xen_api, xen_host, guest_path, faults):
    faults.set_fault("VM.get_all_records_where", error=GONE, times=1)
    xen_api.get(xen_host + "/guests", status=502)

    listed = xen_api.get(xen_host + "/guests").json

    assert guest_path.rsplit("/", 1)[1] in [guest["id"] for guest in listed]


def test_guest_deleted_during_disk_list_is_404(xen_api, xen_host,
                                               xapi_simulator, faults):
    guest = xen_api.post_json(xen_host + "/guests", {
        "name": backends.unique_name("deleted"), "hdd": 1}).json
    path = "%s/guests/%s/disks" % (xen_host, guest["id"])
    calls = faults.stats()["calls"].get("VBD.get_record", 0)
    faults.set_fault("VBD.get_record", "hang", seconds=WINDOW_SECONDS,
                     times=1)
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        response=xen_api.get(path, status="*")))
    thread.start()
    try:
        # The list has read the guest's record and waits to read its first
        # VBD: the guest goes with its VBDs before that read runs.
        deadline = time.monotonic() + WINDOW_SECONDS
        while faults.stats()["calls"].get("VBD.get_record", 0) == calls:
            assert time.monotonic() < deadline, "VBD.get_record never came"
            time.sleep(0.05)
        with xapi_session(xapi_simulator) as xapi:
            xapi.VM.destroy(xapi.VM.get_by_uuid(guest["id"]))
    finally:
        faults.clear_faults()
        thread.join(WINDOW_SECONDS)

    response = result["response"]
    assert response.status_int == 404
    assert response.json["error"] == "EntityNotFound"
    assert response.json["hypervisor"]["code"] == "HANDLE_INVALID"
    assert faults.stats()["sessions"].get("simplestack", 0) == 0
