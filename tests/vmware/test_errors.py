"""vSphere faults as Simplestack errors: class and fields kept."""

import pytest
from pyVmomi import vim

from simplestack import errors

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def test_unknown_guest_is_404(adapter):
    with pytest.raises(errors.EntityNotFound) as raised:
        adapter.get_guest(UNKNOWN_ID)

    assert UNKNOWN_ID in raised.value.message


def test_missing_object_keeps_fault(adapter):
    ghost = vim.VirtualMachine("vm-999999", adapter._stub)

    with pytest.raises(errors.EntityNotFound) as raised:
        adapter._properties(ghost, ["name"])

    assert raised.value.code == "ManagedObjectNotFound"
    assert "obj=VirtualMachine" in raised.value.params
    # The managed object id is a handle: it stays in the adapter.
    assert "vm-999999" not in " ".join(raised.value.params)


def test_invalid_power_state_names_state(adapter, make_guest):
    # The adapter checks states itself, so the fault is provoked through
    # its own task helper: powering on a running VM.
    guest_id = make_guest()["id"]
    adapter.set_power(guest_id, "start")
    found = adapter._guest(guest_id)

    with pytest.raises(errors.InvalidState) as raised:
        adapter._run("PowerOnVM_Task", found.ref)

    assert raised.value.code == "InvalidPowerState"
    assert "existingState=poweredOn" in raised.value.params
    assert "STARTED" in raised.value.message
    assert "PowerOnVM_Task" in raised.value.message


def test_missing_method_is_501_naming_it(adapter, make_guest):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.export_guest(guest_id)

    assert raised.value.code == "MethodNotFound"
    assert "method=ExportVm" in raised.value.params
    assert "ExportVm" in raised.value.message


def test_missing_reboot_is_501_naming_it(adapter, make_guest):
    guest_id = make_guest()["id"]
    adapter.set_power(guest_id, "start")

    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.reboot_guest(guest_id)

    assert raised.value.code == "MethodNotFound"
    assert "method=RebootGuest" in raised.value.params
    assert adapter.get_guest(guest_id)["state"] == "STARTED"


def test_api_error_carries_hypervisor_code(vmware_api, vmware_host):
    guest = vmware_api.post_json(vmware_host + "/guests", {
        "name": "sstest-api-export", "memory": 64}).json
    path = "%s/guests/%s" % (vmware_host, guest["id"])
    try:
        response = vmware_api.put_json(path + "/reboot", {}, status=409)
        assert response.json["error"] == "InvalidState"
        assert "STOPPED" in response.json["message"]

        response = vmware_api.get(path + "/export", status=501)
        assert response.json["error"] == "FeatureNotImplemented"
        assert response.json["hypervisor"]["code"] == "MethodNotFound"
        assert "method=ExportVm" in response.json["hypervisor"]["params"]
    finally:
        vmware_api.delete(path)
