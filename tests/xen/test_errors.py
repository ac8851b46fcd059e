"""XAPI failures as Simplestack errors: class, code, parameters, message."""

import pytest

from simplestack import errors

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def faults(xapi_simulator):
    """The simulator's fault rules, cleared after the test."""
    yield xapi_simulator
    xapi_simulator.clear_faults()


def assert_no_reference(error):
    text = error.message + " ".join(error.params or [])
    assert "OpaqueRef:" not in text


def test_unknown_uuid_keeps_code(adapter):
    with pytest.raises(errors.EntityNotFound) as raised:
        adapter.get_guest(UNKNOWN_ID)

    assert raised.value.code == "UUID_INVALID"
    assert raised.value.params == ["VM", UNKNOWN_ID]
    assert UNKNOWN_ID in raised.value.message


def test_invalid_handle_hides_reference(adapter, make_guest, faults):
    guest_id = make_guest()["id"]
    faults.set_fault("VM.get_record", error=[
        "HANDLE_INVALID", "VM", "OpaqueRef:0b4f2e2c-sstest"], times=1)

    with pytest.raises(errors.EntityNotFound) as raised:
        adapter.get_guest(guest_id)

    assert raised.value.code == "HANDLE_INVALID"
    assert raised.value.params == ["VM", "<hidden reference>"]
    assert_no_reference(raised.value)


def test_bad_power_state_names_state(adapter, make_guest):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.InvalidState) as raised:
        adapter.set_power(guest_id, "pause")

    assert "STOPPED" in raised.value.message
    assert raised.value.code == "VM_BAD_POWER_STATE"
    assert raised.value.params == [guest_id, "running", "halted"]
    assert_no_reference(raised.value)


def test_operation_in_progress_reads_state(adapter, make_guest, faults):
    guest_id = make_guest()["id"]
    faults.set_fault("VM.start", error=[
        "OTHER_OPERATION_IN_PROGRESS", "VM", "OpaqueRef:x", "clone",
        "OpaqueRef:y"], times=1)

    with pytest.raises(errors.InvalidState) as raised:
        adapter.set_power(guest_id, "start")

    assert "while the guest is STOPPED" in raised.value.message
    assert raised.value.code == "OTHER_OPERATION_IN_PROGRESS"
    assert_no_reference(raised.value)


@pytest.mark.parametrize("code", [
    "MEMORY_CONSTRAINT_VIOLATION_ORDER",
    "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
    "INVALID_VALUE",
])
def test_memory_rejection_changes_nothing(adapter, make_guest, faults, code):
    record = make_guest(memory=64)
    faults.set_fault("VM.set_memory_limits", error=[code], times=1)

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.update_guest(record["id"], {"name": record["name"] + "-x",
                                            "memory": 128})

    assert raised.value.code == code
    # The name changed first and was restored.
    assert adapter.get_guest(record["id"]) == record


def test_memory_order_checked_before_any_change(adapter, make_guest):
    record = make_guest(memory=64)

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.update_guest(record["id"], {
            "name": record["name"] + "-x",
            "memory": {"memory_static_min": 256, "memory_target": 128,
                       "memory_static_max": 512}})

    assert "memory_static_min" in raised.value.message
    assert adapter.get_guest(record["id"]) == record


def test_vcpus_above_max_is_400(adapter, make_guest):
    record = make_guest()

    with pytest.raises(errors.InvalidArguments):
        adapter.update_guest(record["id"], {
            "cpus": {"vcpus_at_startup": 4, "vcpus_max": 2}})

    assert adapter.get_guest(record["id"]) == record


def test_unmapped_code_is_hypervisor_error(adapter, faults):
    faults.set_fault("host.get_all_records", error=[
        "INTERNAL_ERROR", "sstest failure"], times=1)

    with pytest.raises(errors.HypervisorError) as raised:
        adapter.list_hosts()

    assert type(raised.value) is errors.HypervisorError
    assert raised.value.code == "INTERNAL_ERROR"
    assert raised.value.params == ["sstest failure"]


def test_unknown_method_is_501(adapter, faults):
    faults.set_fault("host.get_all_records", error=[
        "MESSAGE_METHOD_UNKNOWN", "host.get_all_records"], times=1)

    with pytest.raises(errors.FeatureNotImplemented):
        adapter.list_hosts()


def test_api_error_carries_hypervisor_code(xen_api, xen_host):
    response = xen_api.get("%s/guests/%s" % (xen_host, UNKNOWN_ID),
                           status=404)

    assert response.json["error"] == "EntityNotFound"
    assert response.json["hypervisor"] == {"code": "UUID_INVALID",
                                           "params": ["VM", UNKNOWN_ID]}
