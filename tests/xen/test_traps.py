"""The traps of XAPI clients: device numbers, orphan networks, leftover
disks and snapshots, empty CD drives."""

import threading

import pytest
import XenAPI

from simplestack import errors
from tests import backends

DISKS_AT_ONCE = 4


@pytest.fixture
def faults(xapi_simulator):
    xapi_simulator.reset_stats()
    yield xapi_simulator
    xapi_simulator.clear_faults()


def calls_of(simulator, method):
    return simulator.stats()["calls"].get(method, 0)


# -- device numbers -----------------------------------------------------------

def test_concurrent_disks_distinct_numbers(adapter, xen_kit, make_guest):
    guest_id = make_guest()["id"]
    start = threading.Barrier(DISKS_AT_ONCE)
    created, failed = [], []

    def add_disk():
        # One adapter per thread, as one per request in the service.
        own = xen_kit.make_adapter()
        own.open()
        try:
            start.wait(timeout=30)
            created.append(own.create_disk(guest_id, {"size": 1}))
        except errors.SimplestackError as error:
            failed.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=add_disk)
               for _ in range(DISKS_AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failed == []
    numbers = sorted(disk["number"] for disk in created)
    assert len(set(numbers)) == DISKS_AT_ONCE
    listed = [disk["number"] for disk in adapter.list_disks(guest_id)]
    assert sorted(listed) == sorted(set(listed))
    assert len(listed) == DISKS_AT_ONCE + 1


def test_taken_device_number_is_retried(adapter, make_guest, faults):
    guest_id = make_guest()["id"]
    faults.reset_stats()
    # As if another request took the number between the read and the
    # create.
    faults.set_fault("VBD.create", error=["DEVICE_ALREADY_EXISTS", "1"],
                     times=1)

    disk = adapter.create_disk(guest_id, {"size": 1})

    assert calls_of(faults, "VBD.create") == 2
    assert adapter.get_disk(guest_id, disk["id"]) == disk


def test_failed_disk_attach_leaves_no_vdi(adapter, xen_kit, xen_storage,
                                          make_guest, faults):
    guest_id = make_guest()["id"]
    volumes = xen_kit.volumes(xen_storage)
    faults.set_fault("VBD.create", error=["INTERNAL_ERROR", "sstest"],
                     times=1)

    with pytest.raises(errors.HypervisorError):
        adapter.create_disk(guest_id, {"size": 1})

    assert xen_kit.volumes(xen_storage) == volumes
    assert len(adapter.list_disks(guest_id)) == 1


# -- VLANs --------------------------------------------------------------------

def network_names(xen_kit):
    with xen_kit.session() as xapi:
        return sorted(network["name_label"] for network in
                      xapi.network.get_all_records().values())


def test_failed_vlan_leaves_no_network(adapter, xen_kit, faults):
    names = network_names(xen_kit)
    faults.set_fault("pool.create_VLAN_from_PIF",
                     error=["VLAN_IN_USE", "eth0", "77"], times=1)

    with pytest.raises(errors.Conflict) as raised:
        adapter.create_network({
            "name": backends.unique_name("vlan"), "vlan": 77,
            "from_network": "Pool-wide network associated with eth0"})

    assert raised.value.code == "VLAN_IN_USE"
    assert calls_of(faults, "network.create") == 1
    assert calls_of(faults, "network.destroy") == 1
    assert network_names(xen_kit) == names


def test_existing_vlan_creates_no_network(adapter, xen_kit, faults):
    names = network_names(xen_kit)

    # The simulated pool carries VLAN 100 on eth1.
    with pytest.raises(errors.Conflict) as raised:
        adapter.create_network({
            "name": backends.unique_name("vlan"), "vlan": 100,
            "from_network": "Pool-wide network associated with eth1"})

    assert "VLAN 100" in raised.value.message
    assert calls_of(faults, "network.create") == 0
    assert network_names(xen_kit) == names


def test_vlan_network_record(adapter):
    name = backends.unique_name("vlan")

    # The network stays: the simulator has no VLAN.destroy to undo it, and
    # the session's simulator goes away with the run.
    record = adapter.create_network({
        "name": name, "vlan": 42, "description": "lab",
        "from_network": "Pool-wide network associated with eth0",
        "other_config": {"owner": "sstest"}})

    assert record["vlan"] == 42
    assert record["name_label"] == name
    assert record["name_description"] == "lab"
    assert record["other_config"] == {"owner": "sstest"}
    assert adapter.get_network(record["id"]) == record
    assert adapter.get_network(name) == record


# -- deletion -----------------------------------------------------------------

def test_delete_removes_snapshots_and_disks(adapter, xen_kit, xen_storage):
    volumes = xen_kit.volumes(xen_storage)
    guest = adapter.create_guest({"name": backends.unique_name("guest"),
                                  "memory": 64, "hdd": 1})
    adapter.create_disk(guest["id"], {"size": 2})
    adapter.set_power(guest["id"], "start")
    snapshots = [adapter.create_snapshot(guest["id"], name)["id"]
                 for name in ("one", "two")]
    assert len(xen_kit.volumes(xen_storage)) == len(volumes) + 6

    adapter.delete_guest(guest["id"])

    assert xen_kit.volumes(xen_storage) == volumes
    with xen_kit.session() as xapi:
        for vm_id in [guest["id"]] + snapshots:
            with pytest.raises(XenAPI.Failure) as raised:
                xapi.VM.get_by_uuid(vm_id)
            assert raised.value.details[0] == "UUID_INVALID"


def test_blocked_snapshot_delete_changes_nothing(adapter, make_guest,
                                                 xen_kit):
    """A snapshot whose destroy XAPI blocks stops the guest's DELETE
    before the guest is shut down or any disk is destroyed."""
    guest = make_guest()
    adapter.set_power(guest["id"], "start")
    snapshot = adapter.create_snapshot(guest["id"], "keep")
    with xen_kit.session() as xapi:
        snapshot_ref = xapi.VM.get_by_uuid(snapshot["id"])
        xapi.VM.add_to_blocked_operations(snapshot_ref, "destroy",
                                          "protected")
    try:
        with pytest.raises(errors.InvalidState) as raised:
            adapter.delete_guest(guest["id"])

        assert raised.value.code == "OPERATION_BLOCKED"
        assert raised.value.params == [snapshot["id"], "protected"]
        assert adapter.get_guest(guest["id"])["state"] == "STARTED"
        assert [disk["number"] for disk in
                adapter.list_disks(guest["id"])] == [0]
        assert [item["id"] for item in
                adapter.list_snapshots(guest["id"])] == [snapshot["id"]]
    finally:
        with xen_kit.session() as xapi:
            xapi.VM.remove_from_blocked_operations(snapshot_ref, "destroy")


def test_delete_disk_of_suspended_guest(adapter, make_guest):
    """XAPI keeps a suspended guest's disks attached and unplugs disks of
    running guests only, so the disk stays and the request gets 409."""
    guest = make_guest()
    adapter.set_power(guest["id"], "start")
    adapter.set_power(guest["id"], "pause")

    with pytest.raises(errors.InvalidState) as raised:
        adapter.delete_disk(guest["id"], 0)

    assert "PAUSED" in str(raised.value)
    assert [disk["number"] for disk in
            adapter.list_disks(guest["id"])] == [0]


def test_delete_nic_of_suspended_guest(adapter, make_guest, xen_network):
    """XAPI destroys an attached VIF of a suspended VM without an unplug,
    which it allows on running VMs only."""
    guest = make_guest()
    nic = adapter.create_nic(guest["id"], {"network": xen_network.name})
    adapter.set_power(guest["id"], "start")
    adapter.set_power(guest["id"], "pause")

    adapter.delete_nic(guest["id"], nic["mac"])

    assert adapter.list_nics(guest["id"]) == []


def test_delete_keeps_cd_image(adapter, make_guest, xen_iso_image):
    guest_id = make_guest()["id"]
    adapter.set_media(guest_id, xen_iso_image)

    adapter.delete_guest(guest_id)

    other = make_guest()["id"]
    assert adapter.set_media(other, xen_iso_image) == {
        "name": xen_iso_image}


# -- media --------------------------------------------------------------------

def test_eject_empty_drive_succeeds(adapter, make_guest, faults):
    guest_id = make_guest()["id"]

    assert adapter.set_media(guest_id, None) == {"name": None}
    assert adapter.set_media(guest_id, None) == {"name": None}
    assert calls_of(faults, "VBD.eject") == 0


def test_raced_eject_succeeds(adapter, make_guest, xen_iso_image, faults):
    guest_id = make_guest()["id"]
    adapter.set_media(guest_id, xen_iso_image)
    # Another request ejects the image between the read and the eject.
    faults.set_fault("VBD.eject", error=["VBD_IS_EMPTY", "OpaqueRef:x"],
                     times=1)

    assert adapter.set_media(guest_id, None) == {"name": None}


def test_insert_replaces_image(adapter, make_guest, xen_kit, xen_iso_image):
    guest_id = make_guest()["id"]
    adapter.set_media(guest_id, xen_iso_image)
    with xen_kit.iso_image() as other:
        assert adapter.set_media(guest_id, other) == {"name": other}
        assert adapter.get_media(guest_id) == {"name": other}
        adapter.set_media(guest_id, None)


def test_failed_insert_restores_image(adapter, make_guest, xen_kit,
                                               xen_iso_image, faults):
    guest_id = make_guest()["id"]
    adapter.set_media(guest_id, xen_iso_image)
    with xen_kit.iso_image() as other:
        faults.set_fault("VBD.insert", error=["INTERNAL_ERROR", "sstest"],
                         times=1)
        with pytest.raises(errors.HypervisorError):
            adapter.set_media(guest_id, other)
        assert adapter.get_media(guest_id) == {"name": xen_iso_image}
        adapter.set_media(guest_id, None)
