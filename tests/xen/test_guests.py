"""What only Xen guests have: templates, memory and VCPU settings, boot
modes, HA, the template flag, paused VMs and VIF settings."""

import pytest

from simplestack import errors
from tests import backends

DEBIAN = "Debian Bookworm 12"
GIB = 1024 ** 3
MIB = 1024 ** 2


def vm_record(xen_kit, guest_id):
    with xen_kit.session() as xapi:
        return xapi.VM.get_record(xapi.VM.get_by_uuid(guest_id))


def volume_count(xen_kit, xen_storage):
    return len(xen_kit.volumes(xen_storage))


# -- creation -----------------------------------------------------------------

def test_create_from_named_template(adapter, make_guest):
    guest = make_guest(template=DEBIAN, hdd=None, memory=None)

    # The template provisions one 10 GiB disk and sets 2 GiB of memory.
    assert guest["hdd"] == 10
    assert guest["memory"] == 2048
    assert [disk["number"] for disk in adapter.list_disks(guest["id"])] \
        == [0]
    assert adapter.get_media(guest["id"]) == {"name": None}


def test_create_from_template_id(adapter, make_guest, xen_kit):
    with xen_kit.session() as xapi:
        template = xapi.VM.get_uuid(xapi.VM.get_by_name_label(DEBIAN)[0])

    guest = make_guest(template=template, hdd=2)

    assert guest["hdd"] == 12


def test_create_on_named_storage(adapter, make_guest, xen_kit):
    storage = [record for record in adapter.list_storages()
               if record["name"] == "Local storage"][0]

    guest = make_guest(template=DEBIAN, storage_id=storage["id"], hdd=1)

    with xen_kit.session() as xapi:
        for disk in adapter.list_disks(guest["id"]):
            vdi = xapi.VDI.get_by_uuid(disk["extra_info"])
            assert xapi.SR.get_uuid(xapi.VDI.get_SR(vdi)) == storage["id"]


def test_ambiguous_template_is_conflict(adapter, xen_kit):
    name = backends.unique_name("template")
    with xen_kit.session() as xapi:
        original = xapi.VM.get_by_name_label(DEBIAN)[0]
        copies = [xapi.VM.clone(original, name) for _ in range(2)]
    try:
        with pytest.raises(errors.Conflict):
            adapter.create_guest({"name": backends.unique_name("guest"),
                                  "template": name})
    finally:
        with xen_kit.session() as xapi:
            for copy in copies:
                xapi.VM.destroy(copy)


def test_guest_is_not_a_template(adapter, make_guest):
    other = make_guest()

    with pytest.raises(errors.EntityNotFound):
        adapter.create_guest({"name": backends.unique_name("guest"),
                              "template": other["id"]})


def test_failed_creation_leaves_nothing(adapter, xen_kit, xen_storage,
                                        xen_network, xapi_simulator):
    name = backends.unique_name("guest")
    volumes = volume_count(xen_kit, xen_storage)
    xapi_simulator.set_fault("VIF.create", error=["INTERNAL_ERROR", "x"],
                             times=1)
    try:
        with pytest.raises(errors.HypervisorError):
            adapter.create_guest({"name": name, "template": DEBIAN,
                                  "hdd": 1, "network": xen_network.name})
    finally:
        xapi_simulator.clear_faults()

    assert name not in xen_kit.guest_names()
    assert volume_count(xen_kit, xen_storage) == volumes


def test_create_paravirtualized(adapter, make_guest, xen_kit):
    guest = make_guest(paravirtualized=True)

    assert guest["paravirtualized"] is True
    vm = vm_record(xen_kit, guest["id"])
    assert vm["HVM_boot_policy"] == ""
    assert vm["PV_args"] == "-- quiet console=hvc0"


# -- updates ------------------------------------------------------------------

def test_memory_limits_map(adapter, make_guest, xen_kit):
    guest = make_guest()

    record = adapter.update_guest(guest["id"], {"memory": {
        "memory_static_min": 64, "memory_target": 128,
        "memory_static_max": 256}})

    assert record["memory"] == 256
    vm = vm_record(xen_kit, guest["id"])
    assert int(vm["memory_static_min"]) == 64 * MIB
    assert int(vm["memory_dynamic_min"]) == 128 * MIB
    assert int(vm["memory_dynamic_max"]) == 128 * MIB


def test_vcpus_map(adapter, make_guest, xen_kit):
    guest = make_guest()

    record = adapter.update_guest(guest["id"], {"cpus": {
        "vcpus_at_startup": 2, "vcpus_max": 4}})

    assert record["cpus"] == 2
    assert vm_record(xen_kit, guest["id"])["VCPUs_max"] == "4"
    # An int sets both, lowering the maximum too.
    assert adapter.update_guest(guest["id"], {"cpus": 1})["cpus"] == 1
    assert vm_record(xen_kit, guest["id"])["VCPUs_max"] == "1"


def test_live_changes_need_running_guest(adapter, make_guest, xen_kit):
    guest = make_guest(cpus=2)
    adapter.update_guest(guest["id"], {"memory": {
        "memory_static_min": 64, "memory_target": 256,
        "memory_static_max": 256}})

    with pytest.raises(errors.InvalidState) as raised:
        adapter.update_guest(guest["id"], {"vcpus_number_live": 1})
    assert "STOPPED" in raised.value.message

    adapter.set_power(guest["id"], "start")
    adapter.update_guest(guest["id"], {"vcpus_number_live": 1,
                                       "memory_target_live": 128})
    vm = vm_record(xen_kit, guest["id"])
    assert int(vm["memory_dynamic_max"]) == 128 * MIB
    with pytest.raises(errors.InvalidArguments):
        adapter.update_guest(guest["id"], {"vcpus_number_live": 3})


def test_settings_ha_and_boot_mode(adapter, make_guest, xen_kit):
    guest = make_guest()

    record = adapter.update_guest(guest["id"], {
        "vcpu_settings": {"weight": "512"}, "ha_enabled": True,
        "paravirtualized": "console=hvc0 root=/dev/xvda1"})

    assert record["paravirtualized"] is True
    vm = vm_record(xen_kit, guest["id"])
    assert vm["VCPUs_params"]["weight"] == "512"
    assert vm["ha_restart_priority"] == "best-effort"
    assert vm["PV_args"] == "console=hvc0 root=/dev/xvda1"

    record = adapter.update_guest(guest["id"], {"paravirtualized": False,
                                                "ha_enabled": False})
    assert record["paravirtualized"] is False
    vm = vm_record(xen_kit, guest["id"])
    assert vm["HVM_boot_policy"] == "BIOS order"
    assert vm["ha_restart_priority"] == ""


def test_template_flag_round_trip(adapter, make_guest):
    guest = make_guest()

    adapter.update_guest(guest["id"], {"template": True})
    assert guest["id"] not in [g["id"] for g in adapter.list_guests()]
    assert adapter.get_guest(guest["id"])["id"] == guest["id"]

    adapter.update_guest(guest["id"], {"template": False})
    assert guest["id"] in [g["id"] for g in adapter.list_guests()]


def test_unknown_update_key_changes_nothing(adapter, make_guest):
    guest = make_guest()

    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.update_guest(guest["id"], {"memory": 128, "colour": "red"})

    assert "colour" in raised.value.message
    assert adapter.get_guest(guest["id"]) == guest


# -- power --------------------------------------------------------------------

def test_resume_unpauses_paused_vm(adapter, make_guest, xen_kit):
    guest = make_guest()
    adapter.set_power(guest["id"], "start")
    with xen_kit.session() as xapi:
        xapi.VM.pause(xapi.VM.get_by_uuid(guest["id"]))

    assert adapter.get_guest(guest["id"])["state"] == "PAUSED"
    assert adapter.set_power(guest["id"], "resume") == "STARTED"


def test_pause_suspends(adapter, make_guest, xen_kit):
    guest = make_guest()
    adapter.set_power(guest["id"], "start")

    assert adapter.set_power(guest["id"], "pause") == "PAUSED"
    assert vm_record(xen_kit, guest["id"])["power_state"] == "Suspended"


def test_start_with_too_many_vcpus(adapter, make_guest, xen_kit):
    """The simulated hosts have 16 physical CPUs, so XAPI rejects starting
    a 32-VCPU guest with HOST_NOT_ENOUGH_PCPUS: a value the pool cannot
    take, 400."""
    guest = make_guest(cpus=32)

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.set_power(guest["id"], "start")

    assert raised.value.code == "HOST_NOT_ENOUGH_PCPUS"
    assert raised.value.params == ["32", "16"]
    assert "set cpus to 16 or fewer" in str(raised.value)
    assert vm_record(xen_kit, guest["id"])["power_state"] == "Halted"


def test_start_without_free_memory(adapter, make_guest, xen_kit):
    """A guest larger than any host's free memory gets 409: the memory
    that other guests use may be freed later."""
    guest = make_guest(memory=1024 * 1024)

    with pytest.raises(errors.Conflict) as raised:
        adapter.set_power(guest["id"], "start")

    assert raised.value.code == "HOST_NOT_ENOUGH_FREE_MEMORY"
    assert "not enough free memory" in str(raised.value)
    assert vm_record(xen_kit, guest["id"])["power_state"] == "Halted"


def test_delete_running_guest(adapter, make_guest):
    guest = make_guest()
    adapter.set_power(guest["id"], "start")

    adapter.delete_guest(guest["id"])

    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest(guest["id"])


# -- what is not a guest ------------------------------------------------------

def test_dom0_and_templates_hidden(adapter, xen_kit):
    with xen_kit.session() as xapi:
        hidden = [vm["uuid"] for vm in xapi.VM.get_all_records().values()
                  if vm["is_control_domain"] or vm["is_a_template"]]
    listed = {guest["id"] for guest in adapter.list_guests()}

    assert not listed & set(hidden)
    dom0 = [uuid for uuid in hidden
            if "Control domain" in vm_record(xen_kit, uuid)["name_label"]]
    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest(dom0[0])
    with pytest.raises(errors.EntityNotFound):
        adapter.set_power(dom0[0], "force_stop")


def test_snapshot_is_not_a_guest(adapter, make_guest):
    guest = make_guest()
    other = make_guest()
    snapshot = adapter.create_snapshot(guest["id"], "one")

    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest(snapshot["id"])
    with pytest.raises(errors.EntityNotFound):
        adapter.get_snapshot(other["id"], snapshot["id"])
    assert adapter.get_snapshot(guest["id"], snapshot["id"].upper()) == \
        snapshot


def test_default_template_is_not_a_guest(adapter, xen_kit):
    """A template shipped with XAPI (other_config:default_template=true)
    stays hidden from guest requests, also after its template flag is
    cleared behind the service's back."""
    with xen_kit.session() as xapi:
        ref = [ref for ref, vm in xapi.VM.get_all_records().items()
               if vm["other_config"].get("default_template") == "true"
               and vm["name_label"] not in ("Other install media", DEBIAN)][0]
        template_id = xapi.VM.get_uuid(ref)
        xapi.VM.set_is_a_template(ref, False)
    try:
        listed = {guest["id"] for guest in adapter.list_guests()}

        assert template_id not in listed
        with pytest.raises(errors.EntityNotFound):
            adapter.get_guest(template_id)
        with pytest.raises(errors.EntityNotFound):
            adapter.add_tag(template_id, "mine")
        with pytest.raises(errors.EntityNotFound):
            adapter.delete_guest(template_id)
    finally:
        with xen_kit.session() as xapi:
            xapi.VM.set_is_a_template(ref, True)


# -- network interfaces -------------------------------------------------------

def test_rate_limit_in_kbps(adapter, make_guest, xen_kit, xen_network):
    guest = make_guest(network=xen_network.name)
    mac = adapter.list_nics(guest["id"])[0]["mac"]

    record = adapter.update_nic(guest["id"], mac, {"rate_limit": 8192 * 100})

    assert record["rate_limit"] == 8192 * 100
    with xen_kit.session() as xapi:
        vif = xapi.VIF.get_record(xapi.VM.get_VIFs(
            xapi.VM.get_by_uuid(guest["id"]))[0])
    assert vif["qos_algorithm_type"] == "ratelimit"
    assert vif["qos_algorithm_params"] == {"kbps": "100"}


def test_nic_plug_state_while_running(adapter, make_guest, xen_network):
    guest = make_guest(network=xen_network.name)
    mac = adapter.list_nics(guest["id"])[0]["mac"]
    adapter.set_power(guest["id"], "start")

    adapter.update_nic(guest["id"], mac, {"active": False})
    adapter.update_nic(guest["id"], mac, {"active": True})
    moved = adapter.update_nic(guest["id"], mac, {
        "network": "Pool-wide network associated with eth1"})

    assert moved["network"] == "Pool-wide network associated with eth1"
    adapter.delete_nic(guest["id"], mac)
    assert adapter.list_nics(guest["id"]) == []
