"""The guest list: which VMs it shows, and changes between its two calls.

list_guests reads the VMs with VM.get_all_records_where, then the VBD,
VDI, guest metrics and host records with event.from. The tests that change
the pool between the two calls hold the second call with the simulator's
hang fault and make the change through a session of their own.
"""

import concurrent.futures
import time

import pytest

from simplestack import errors
from simplestack.adapters.xen.constants import GUEST_VM_QUERY

#: Maximum seconds that the simulator delays event.from. The tests end the
#: delay earlier by clearing the faults.
HOLD_SECONDS = 20

#: Seconds to wait for the held call to reach the simulator.
ARRIVAL_TIMEOUT = 10


def listed_ids(adapter):
    return {guest["id"] for guest in adapter.list_guests()}


def vm_ref(xapi, guest_id):
    return xapi.VM.get_by_uuid(guest_id)


def wait_for_call(simulator, method):
    """Wait until the simulator has counted a call of ``method``."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while simulator.stats()["calls"].get(method, 0) < 1:
        if time.monotonic() > deadline:
            raise AssertionError("%s did not reach the simulator within %d s"
                                 % (method, ARRIVAL_TIMEOUT))
        time.sleep(0.02)


def list_with_change_between(adapter, xen_kit, change):
    """Return adapter.list_guests() by guest id, with ``change(xapi)`` made
    through another session after the list's VM call and before its
    event.from."""
    simulator = xen_kit.simulator
    simulator.reset_stats()
    simulator.set_fault("event.from", "hang", seconds=HOLD_SECONDS, times=1)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            listing = pool.submit(adapter.list_guests)
            wait_for_call(simulator, "event.from")
            assert simulator.stats()["calls"].get(
                "VM.get_all_records_where") == 1
            with xen_kit.session() as xapi:
                change(xapi)
            assert not listing.done()
            simulator.clear_faults()
            guests = listing.result(timeout=HOLD_SECONDS)
    finally:
        simulator.clear_faults()
    return {guest["id"]: guest for guest in guests}


# -- which VMs are guests -----------------------------------------------------

def test_query_returns_vms_without_flags(adapter, make_guest, xen_kit):
    guest = make_guest()
    adapter.create_snapshot(guest["id"], "kept")
    template = make_guest()
    adapter.update_guest(template["id"], {"template": True})

    found = adapter._records_where("VM", GUEST_VM_QUERY)
    with xen_kit.session() as xapi:
        every_vm = xapi.VM.get_all_records()

    expected = {ref for ref, vm in every_vm.items()
                if not (vm["is_a_template"] or vm["is_a_snapshot"]
                        or vm["is_control_domain"])}
    assert set(found) == expected
    assert len(found) < len(every_vm)
    for vm in found.values():
        assert vm["is_a_template"] is False
        assert vm["is_a_snapshot"] is False
        assert vm["is_control_domain"] is False


def test_list_leaves_out_non_guests(adapter, make_guest, xen_kit):
    guest = make_guest()
    snapshot = adapter.create_snapshot(guest["id"], "kept")
    template = make_guest()
    adapter.update_guest(template["id"], {"template": True})

    listed = listed_ids(adapter)
    with xen_kit.session() as xapi:
        every_vm = xapi.VM.get_all_records().values()
    control_domains = {vm["uuid"] for vm in every_vm
                       if vm["is_control_domain"]}
    default_templates = {vm["uuid"] for vm in every_vm
                         if vm["other_config"].get("default_template")
                         == "true"}

    assert guest["id"] in listed
    assert snapshot["id"] not in listed
    assert template["id"] not in listed
    assert control_domains
    assert not listed & control_domains
    assert default_templates
    assert not listed & default_templates


def test_guest_made_template_after_listing(adapter, make_guest, xen_kit):
    guest = make_guest()
    assert guest["id"] in listed_ids(adapter)

    with xen_kit.session() as xapi:
        xapi.VM.set_is_a_template(vm_ref(xapi, guest["id"]), True)
    assert guest["id"] not in listed_ids(adapter)

    with xen_kit.session() as xapi:
        xapi.VM.set_is_a_template(vm_ref(xapi, guest["id"]), False)
    assert guest["id"] in listed_ids(adapter)


# -- changes between the two calls --------------------------------------------

def test_disk_removed_between_calls(adapter, make_guest, xen_kit):
    guest = make_guest(hdd=2)
    assert guest["hdd"] == 2

    def remove_disk(xapi):
        for vbd in xapi.VM.get_VBDs(vm_ref(xapi, guest["id"])):
            if xapi.VBD.get_type(vbd) == "Disk":
                xapi.VBD.destroy(vbd)

    guests = list_with_change_between(adapter, xen_kit, remove_disk)

    # The VM record of the first call names the VBD, which is gone, so the
    # list reads the guest again: it shows the guest as it is now.
    assert guests[guest["id"]]["hdd"] == 0
    assert guests[guest["id"]] == adapter.get_guest(guest["id"])


def test_guest_stopped_between_calls(adapter, make_guest, xen_kit):
    guest = make_guest()
    adapter.set_power(guest["id"], "start")
    before = {item["id"]: item for item in adapter.list_guests()}
    assert before[guest["id"]]["tools_up_to_date"] is True
    assert before[guest["id"]]["host"] is not None

    def stop(xapi):
        # Halting destroys the guest metrics and clears resident_on.
        xapi.VM.hard_shutdown(vm_ref(xapi, guest["id"]))

    guests = list_with_change_between(adapter, xen_kit, stop)

    listed = guests[guest["id"]]
    assert listed["state"] == "STOPPED"
    assert listed["tools_up_to_date"] is None
    assert listed["ip"] is None
    assert listed["host"] is None
    assert listed == adapter.get_guest(guest["id"])


def test_guest_deleted_between_calls(adapter, make_guest, xen_kit):
    kept = make_guest()
    deleted = make_guest()
    with xen_kit.session() as xapi:
        ref = vm_ref(xapi, deleted["id"])
        vdis = [xapi.VBD.get_VDI(vbd) for vbd in xapi.VM.get_VBDs(ref)]

    def delete(xapi):
        # VM.destroy removes the VBDs too, but not the VDIs.
        xapi.VM.destroy(ref)

    try:
        guests = list_with_change_between(adapter, xen_kit, delete)
    finally:
        with xen_kit.session() as xapi:
            for vdi in vdis:
                if vdi != "OpaqueRef:NULL":
                    xapi.VDI.destroy(vdi)

    assert deleted["id"] not in guests
    assert guests[kept["id"]] == kept


def test_unchanged_guests_cost_no_calls(adapter, make_guest, xen_kit):
    make_guest()
    changed = make_guest()

    def remove_disk(xapi):
        for vbd in xapi.VM.get_VBDs(vm_ref(xapi, changed["id"])):
            xapi.VBD.destroy(vbd)

    list_with_change_between(adapter, xen_kit, remove_disk)
    calls = xen_kit.simulator.stats()["calls"]

    # Only the changed guest is read again, and it has no VBD left.
    assert calls.get("VM.get_record") == 1
    assert calls.get("VBD.get_record") is None
    assert adapter.list_guests()


def test_guest_created_between_calls(adapter, make_guest, xen_kit):
    source = make_guest()
    created = []

    def clone(xapi):
        ref = xapi.VM.clone(vm_ref(xapi, source["id"]), source["name"] + "-c")
        created.append(xapi.VM.get_uuid(ref))

    try:
        guests = list_with_change_between(adapter, xen_kit, clone)

        assert source["id"] in guests
        assert created[0] not in guests
        assert created[0] in listed_ids(adapter)
    finally:
        for guest_id in created:
            adapter.delete_guest(guest_id)


@pytest.mark.parametrize("method", ["VM.get_all_records_where",
                                    "event.from"])
def test_list_fault_in_either_call(adapter, xapi_simulator, method):
    xapi_simulator.set_fault(method, error=["INTERNAL_ERROR", "injected"],
                             times=1)
    try:
        with pytest.raises(errors.HypervisorError) as raised:
            adapter.list_guests()
    finally:
        xapi_simulator.clear_faults()

    assert raised.value.code == "INTERNAL_ERROR"
    assert raised.value.params == ["injected"]
    assert adapter.list_guests()
