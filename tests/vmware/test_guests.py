"""What the VMware adapter validates itself, because govmomi's simulator
accepts it while vSphere rejects it, and guest features particular to
vSphere: templates, ambiguous names, ISO lookups and guest facts."""

import time

import pytest
from pyVmomi import vim

from simplestack import errors
from tests import backends
from tests.vmware.conftest import vm_ref


def _wait(task):
    """Wait for a task of a kit session; the simulator runs these at once."""
    while task.info.state not in ("success", "error"):
        time.sleep(0.01)
    assert task.info.state == "success"


def _reconfigure(service, ref, **fields):
    _wait(ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(**fields)))


# -- validation before changes ------------------------------------------------

@pytest.mark.parametrize("memory", [-64, 0, 66])
def test_invalid_memory_rejected(adapter, make_guest, memory):
    record = make_guest(memory=64)

    with pytest.raises(errors.InvalidArguments):
        adapter.update_guest(record["id"], {"memory": memory})
    with pytest.raises(errors.InvalidArguments):
        adapter.create_guest({"name": backends.unique_name("guest"),
                              "memory": memory})
    assert adapter.get_guest(record["id"]) == record


def test_shrink_rejected_before_any_call(adapter, make_guest):
    record = make_guest(hdd=2)
    disk = adapter.list_disks(record["id"])[0]
    before = adapter.calls

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.update_disk(record["id"], disk["id"], {"size": 1})

    assert "shrink" in raised.value.message
    # FindByUuid and RetrievePropertiesEx: no ReconfigVM_Task.
    assert adapter.calls - before == 2
    assert adapter.get_disk(record["id"], disk["id"]) == disk


def test_missing_iso_rejected(adapter, make_guest, vmware_kit):
    guest_id = make_guest()["id"]
    storage = vmware_kit.default_storage()

    with pytest.raises(errors.EntityNotFound):
        adapter.set_media(guest_id, "[%s] sstest-none/missing.iso"
                          % storage.name)
    with pytest.raises(errors.EntityNotFound):
        adapter.set_media(guest_id, "sstest-missing.iso")
    assert adapter.get_media(guest_id) == {"name": None}


def test_iso_found_by_file_name(adapter, make_guest, vmware_kit):
    guest_id = make_guest()["id"]
    storage = vmware_kit.default_storage()

    with vmware_kit.iso_image(storage) as path:
        file_name = path.rsplit("/", 1)[1]
        assert adapter.set_media(guest_id, file_name) == {"name": path}

        # The same file name in a second folder makes the name ambiguous.
        with vmware_kit.iso_image(storage, name=file_name) as other:
            with pytest.raises(errors.Conflict) as raised:
                adapter.set_media(guest_id, file_name)
            assert other in raised.value.message
    assert adapter.get_media(guest_id) == {"name": path}


def test_duplicate_names_rejected(adapter, make_guest):
    first = make_guest()
    second = make_guest()

    with pytest.raises(errors.Conflict):
        adapter.create_guest({"name": first["name"]})
    with pytest.raises(errors.Conflict):
        adapter.update_guest(second["id"], {"name": first["name"]})
    with pytest.raises(errors.Conflict):
        adapter.clone_guest(second["id"], first["name"])
    assert adapter.get_guest(second["id"])["name"] == second["name"]


def test_suspend_of_stopped_guest_rejected(adapter, make_guest):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.InvalidState) as raised:
        adapter.set_power(guest_id, "pause")

    assert "STOPPED" in raised.value.message
    assert adapter.get_guest(guest_id)["state"] == "STOPPED"


def test_running_guest_keeps_memory(adapter, make_guest):
    record = make_guest()
    adapter.set_power(record["id"], "start")

    with pytest.raises(errors.InvalidState) as raised:
        adapter.update_guest(record["id"], {"cpus": 2})

    assert "STARTED" in raised.value.message
    assert adapter.get_guest(record["id"])["cpus"] == 1


# -- names ---------------------------------------------------------------------

def test_ambiguous_name_is_conflict(adapter, make_guest, vcsim_simulator):
    record = make_guest()
    # The simulator clones to a taken name without complaint.
    with vcsim_simulator.session() as service:
        source = vm_ref(service, record["name"])
        _wait(source.CloneVM_Task(folder=source.parent, name=record["name"],
                                  spec=vim.vm.CloneSpec(
                                      location=vim.vm.RelocateSpec())))
    twins = [guest["id"] for guest in adapter.list_guests()
             if guest["name"] == record["name"]]
    assert len(twins) == 2
    try:
        with pytest.raises(errors.Conflict) as raised:
            adapter.set_power(record["name"], "start")
        assert "2 guests are named" in raised.value.message
        assert "use the id" in raised.value.message
        for guest_id in twins:
            assert adapter.get_guest(guest_id)["state"] == "STOPPED"
    finally:
        for guest_id in twins:
            if guest_id != record["id"]:
                adapter.delete_guest(guest_id)


# -- templates -----------------------------------------------------------------

def test_create_from_template(adapter, make_guest, vcsim_simulator):
    template = make_guest(hdd=2, cpus=2)
    with vcsim_simulator.session() as service:
        vm_ref(service, template["name"]).MarkAsTemplate()
    try:
        # A template is not a guest.
        with pytest.raises(errors.EntityNotFound):
            adapter.get_guest(template["id"])
        assert template["id"] not in [guest["id"]
                                      for guest in adapter.list_guests()]

        guest = make_guest(template=template["name"], hdd=3, memory=128)

        assert guest["id"] != template["id"]
        assert guest["cpus"] == 2
        assert guest["memory"] == 128
        assert guest["hdd"] == 3
        assert guest["state"] == "STOPPED"
        with pytest.raises(errors.EntityNotFound):
            make_guest(template="sstest-no-such-template")
        # A template named by id; its disks are larger than 1 GiB.
        with pytest.raises(errors.InvalidArguments) as raised:
            make_guest(template=template["id"], hdd=1)
        assert "smaller" in raised.value.message
    finally:
        # The guest cleanup skips templates, which are not guests.
        with vcsim_simulator.session() as service:
            _wait(vm_ref(service, template["name"]).Destroy_Task())


# -- guest facts ----------------------------------------------------------------

def test_ip_and_tools_read(adapter, make_guest, vcsim_simulator):
    record = make_guest()
    adapter.set_power(record["id"], "start")
    with vcsim_simulator.session() as service:
        _reconfigure(service, vm_ref(service, record["name"]), extraConfig=[
            vim.option.OptionValue(key="SET.guest.ipAddress",
                                   value="192.0.2.10"),
            vim.option.OptionValue(key="SET.guest.toolsRunningStatus",
                                   value="guestToolsRunning")])

    guest = adapter.get_guest(record["id"])

    assert guest["ip"] == "192.0.2.10"
    assert adapter.list_guests() == sorted(
        adapter.list_guests(), key=lambda item: item["id"])
    assert guest in adapter.list_guests()
