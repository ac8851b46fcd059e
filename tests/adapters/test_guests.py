"""Guest records, lists, changes, power states, snapshots and tags."""

import re
import threading
import time
import uuid

import pytest

from simplestack import errors
from simplestack.adapters import base
from simplestack.adapters.libvirt import LibvirtAdapter
from tests import backends
from tests.libvirt_fixtures import TEST_CREDENTIALS, wait_for_state
from tests.vmware_fixtures import VMWARE_BACKENDS

GUEST_FIELDS = {"id", "name", "cpus", "memory", "hdd", "paravirtualized",
                "tools_up_to_date", "ip", "state", "host"}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
ISO_8601_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# -- records ---------------------------------------------------------------

def test_created_guest_record(adapter, backend, make_guest):
    name = backends.unique_name("guest")
    record = make_guest(name=name, cpus=2, memory=96)

    assert set(record) == GUEST_FIELDS
    assert record["id"] == str(uuid.UUID(record["id"]))
    assert record["name"] == name
    assert record["cpus"] == 2
    assert record["memory"] == 96
    assert record["hdd"] == (0 if backend == "lxc" else 1)
    assert record["paravirtualized"] is False
    assert record["tools_up_to_date"] is None
    assert record["ip"] is None
    assert record["state"] == "STOPPED"
    assert record["host"] is None


def test_get_by_upper_id_and_name(adapter, make_guest):
    record = make_guest()

    assert adapter.get_guest(record["id"].upper()) == record
    assert adapter.get_guest(record["name"]) == record


def test_started_guest_names_host(adapter, kit, make_guest):
    record = make_guest()

    state = adapter.set_power(record["id"], "start")

    assert state == "STARTED"
    assert adapter.get_guest(record["id"])["host"] in kit.host_names()


def test_list_equals_get(adapter, backend, make_guest):
    mine = {make_guest()["id"], make_guest()["id"]}
    adapter.set_power(sorted(mine)[0], "start")

    listed = adapter.list_guests()

    ids = [record["id"] for record in listed]
    assert ids == sorted(ids)
    assert mine <= set(ids)
    for record in listed:
        # Other test runs may change their own guests on a shared daemon,
        # so only this test's guests (and all on the test driver) count.
        if backend == "test" or record["id"] in mine:
            assert adapter.get_guest(record["id"]) == record


def test_list_shows_running_paused_stopped(adapter, make_guest):
    running = make_guest()["id"]
    first_paused = make_guest()["id"]
    second_paused = make_guest()["id"]
    stopped = make_guest()["id"]
    adapter.set_power(running, "start")
    for guest_id in (first_paused, second_paused):
        adapter.set_power(guest_id, "start")
        adapter.set_power(guest_id, "pause")

    # The second list takes the definitions from the libvirt adapter's
    # cache, the first reads them.
    adapter.list_guests()
    listed = {record["id"]: record for record in adapter.list_guests()}

    assert listed[running]["state"] == "STARTED"
    assert listed[first_paused]["state"] == "PAUSED"
    assert listed[second_paused]["state"] == "PAUSED"
    assert listed[stopped]["state"] == "STOPPED"
    assert listed[running]["host"] is not None
    assert listed[stopped]["host"] is None


def _seed_file(path, count):
    domains = "".join(
        "<domain type='test'><name>sstest-bulk-%04d</name>"
        "<memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
        "<devices><interface type='network'><mac address='52:54:00:00:%02x:%02x'/>"
        "<source network='default'/></interface></devices></domain>"
        % (index, index // 256, index % 256) for index in range(count))
    path.write_text("<node>%s</node>" % domains)


def _list_calls(tmp_path, count):
    seed = tmp_path / ("sstest-%d.xml" % count)
    _seed_file(seed, count)
    config = LibvirtAdapter.parse_settings(
        "test", {"driver": "test", "hosts": "bulk=%s" % seed})
    adapter = LibvirtAdapter("test", "bulk", TEST_CREDENTIALS, config)
    adapter.open()
    try:
        before = adapter.calls
        guests = adapter.list_guests()
        calls = adapter.calls - before
    finally:
        adapter.close()
    assert len(guests) == count
    return calls


def test_list_guests_calls_per_guest(tmp_path):
    # libvirt 9.0 has no bulk call for domain XML, and the test driver's
    # getAllDomainStats returns the state only: in the first list of a
    # seed each guest costs exactly one XMLDesc, everything else is a
    # fixed number of bulk calls. Later lists take the XML from a cache
    # (see test_call_counts.py).
    calls_10 = _list_calls(tmp_path, 10)
    calls_1000 = _list_calls(tmp_path, 1000)

    assert calls_1000 - calls_10 == 990
    assert calls_10 - 10 == calls_1000 - 1000


# -- validation before changes ---------------------------------------------

def test_taken_name_rejected(adapter, kit, make_guest):
    record = make_guest()
    names = kit.guest_names()

    with pytest.raises(errors.Conflict) as raised:
        adapter.create_guest({"name": record["name"]})

    assert record["name"] in raised.value.message
    assert kit.guest_names() == names


@pytest.mark.parametrize("name", [
    "sstest-a/b",
    "sstest-\x01",
    "0f8fad5b-d9cb-469f-a165-70867728950e",
    "",
])
def test_invalid_names_rejected(adapter, backend, make_guest, name):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.InvalidArguments):
        adapter.create_guest({"name": name})
    with pytest.raises(errors.InvalidArguments):
        adapter.update_guest(guest_id, {"name": name, "memory": 128})
    with pytest.raises(errors.InvalidArguments):
        adapter.clone_guest(guest_id, name)
    # The VMware adapter creates no networks at all.
    expected = errors.FeatureNotImplemented if backend in VMWARE_BACKENDS \
        else errors.InvalidArguments
    with pytest.raises(expected):
        adapter.create_network({"name": name})
    assert adapter.get_guest(guest_id)["memory"] == 64


def test_uuid_id_never_matches_name(adapter, kit):
    # A name in UUID form may exist when another tool defined the guest.
    name = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert not kit.guest_names() & {name}

    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest(name)


def test_id_wins_over_other_name(adapter, kit, make_guest):
    first = make_guest()
    second = make_guest()
    # Only another tool can give a guest a name in UUID form.
    kit.rename_guest(second["id"], first["id"])

    assert adapter.get_guest(first["id"]) == first
    assert adapter.get_guest(first["id"].upper()) == first
    assert adapter.get_guest(second["id"])["name"] == first["id"]


def test_uuid_form_name_only_by_id(adapter, kit, make_guest):
    record = make_guest()
    name = str(uuid.uuid4())
    kit.rename_guest(record["id"], name)

    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest(name)
    assert adapter.get_guest(record["id"])["name"] == name


def test_guest_found_by_name(adapter, make_guest):
    record = make_guest()

    assert adapter.get_guest(record["name"]) == record
    assert adapter.list_disks(record["name"]) == adapter.list_disks(
        record["id"])
    assert adapter.set_power(record["name"], "start") == "STARTED"
    assert adapter.get_guest(record["id"])["state"] == "STARTED"


@pytest.mark.backends("xen")
def test_shared_name_is_conflict(adapter, kit, make_guest):
    # libvirt keeps guest names unique. vSphere keeps them unique in a
    # folder, and tests/vmware/test_guests.py makes twins by a clone.
    first = make_guest()
    second = make_guest()
    kit.rename_guest(second["id"], first["name"])

    with pytest.raises(errors.Conflict) as raised:
        adapter.get_guest(first["name"])
    assert "2 guests" in raised.value.message
    assert "use the id" in raised.value.message
    with pytest.raises(errors.Conflict):
        adapter.delete_guest(first["name"])
    assert adapter.get_guest(first["id"]) == first
    assert adapter.get_guest(second["id"])["name"] == first["name"]


@pytest.mark.parametrize("form", [
    "{00000000-0000-0000-0000-000000000000}",
    "urn:uuid:00000000-0000-0000-0000-000000000000",
    "00000000000000000000000000000000",
])
def test_other_uuid_forms_not_found(adapter, form):
    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest(form)
    with pytest.raises(errors.EntityNotFound):
        adapter.get_storage(form)
    with pytest.raises(errors.EntityNotFound):
        adapter.get_network(form)


@pytest.mark.parametrize("bad_key, bad_value", [
    ("network", "sstest-no-such-network"),
    ("storage_id", "sstest-no-such-pool"),
    ("template", "sstest-no-such-template.qcow2"),
])
def test_unknown_reference_changes_nothing(adapter, backend, kit, storage,
                                           bad_key, bad_value):
    name = backends.unique_name("guest")
    spec = {"name": name, bad_key: bad_value}
    volumes = kit.volumes(storage)

    expected = errors.EntityNotFound
    if backend == "lxc" and bad_key == "template":
        expected = errors.FeatureNotImplemented
    with pytest.raises(expected):
        adapter.create_guest(spec)

    assert name not in kit.guest_names()
    assert kit.volumes(storage) == volumes


@pytest.mark.backends("test", "qemu", "lxc")
def test_paravirtualized_not_implemented(adapter):
    with pytest.raises(errors.FeatureNotImplemented):
        adapter.create_guest({"name": backends.unique_name("guest"),
                              "paravirtualized": True})


# -- unknown ids -----------------------------------------------------------

UNKNOWN_GUEST_CALLS = [
    ("get_guest", ()),
    ("update_guest", ({"memory": 128},)),
    ("delete_guest", ()),
    ("set_power", ("start",)),
    ("reboot_guest", ()),
    ("clone_guest", ("sstest-clone",)),
    ("list_disks", ()),
    ("get_disk", ("0",)),
    ("list_nics", ()),
    ("get_nic", ("52:54:00:00:00:01",)),
    ("list_tags", ()),
    ("add_tag", ("x",)),
    ("delete_tag", ("x",)),
]


@pytest.mark.parametrize("method, arguments", UNKNOWN_GUEST_CALLS,
                         ids=[call[0] for call in UNKNOWN_GUEST_CALLS])
def test_unknown_guest(adapter, method, arguments):
    with pytest.raises(errors.EntityNotFound) as raised:
        getattr(adapter, method)(UNKNOWN_ID, *arguments)

    assert UNKNOWN_ID in raised.value.message


def test_unknown_guest_snapshots(adapter, backend):
    if backend == "lxc":
        expected = errors.FeatureNotImplemented
    else:
        expected = errors.EntityNotFound
    with pytest.raises(expected):
        adapter.list_snapshots(UNKNOWN_ID)
    with pytest.raises(expected):
        adapter.create_snapshot(UNKNOWN_ID)


def test_unknown_disk_nic_snapshot(adapter, backend, make_guest):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.EntityNotFound):
        adapter.get_disk(guest_id, "17")
    with pytest.raises(errors.EntityNotFound):
        adapter.update_disk(guest_id, "17", {"size": 5})
    with pytest.raises(errors.EntityNotFound):
        adapter.get_nic(guest_id, "52:54:00:ff:ff:ff")
    if backend == "lxc":
        with pytest.raises(errors.FeatureNotImplemented):
            adapter.get_snapshot(guest_id, UNKNOWN_ID)
    else:
        with pytest.raises(errors.EntityNotFound):
            adapter.get_snapshot(guest_id, UNKNOWN_ID)
        with pytest.raises(errors.EntityNotFound):
            adapter.revert_snapshot(guest_id, UNKNOWN_ID)
        with pytest.raises(errors.EntityNotFound):
            adapter.delete_snapshot(guest_id, UNKNOWN_ID)


# -- power -----------------------------------------------------------------

@pytest.mark.parametrize("action", ["stop", "force_stop", "pause", "resume"])
def test_stopped_guest_rejects(adapter, make_guest, action):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.InvalidState) as raised:
        adapter.set_power(guest_id, action)

    assert "STOPPED" in raised.value.message


def test_stopped_guest_rejects_reboot(adapter, make_guest):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.InvalidState) as raised:
        adapter.reboot_guest(guest_id)

    assert "STOPPED" in raised.value.message


def test_running_and_paused_reject(adapter, make_guest):
    guest_id = make_guest()["id"]
    adapter.set_power(guest_id, "start")

    with pytest.raises(errors.InvalidState) as raised:
        adapter.set_power(guest_id, "start")
    assert "STARTED" in raised.value.message
    with pytest.raises(errors.InvalidState) as raised:
        adapter.set_power(guest_id, "resume")
    assert "STARTED" in raised.value.message

    assert adapter.set_power(guest_id, "pause") == "PAUSED"
    with pytest.raises(errors.InvalidState) as raised:
        adapter.set_power(guest_id, "pause")
    assert "PAUSED" in raised.value.message
    with pytest.raises(errors.InvalidState) as raised:
        adapter.reboot_guest(guest_id)
    assert "PAUSED" in raised.value.message


def test_unknown_power_action(adapter, make_guest):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.InvalidArguments):
        adapter.set_power(guest_id, "hibernate")


def test_power_cycle_reads_state_back(adapter, make_guest):
    guest_id = make_guest()["id"]

    assert adapter.set_power(guest_id, "start") == "STARTED"
    assert adapter.set_power(guest_id, "pause") == "PAUSED"
    assert adapter.set_power(guest_id, "resume") == "STARTED"
    assert adapter.reboot_guest(guest_id, force=True) == "STARTED"
    assert adapter.set_power(guest_id, "force_stop") == "STOPPED"


def test_acpi_stop_reports_real_state(adapter, backend, make_guest):
    guest_id = make_guest()["id"]
    adapter.set_power(guest_id, "start")
    if backend == "lxc":
        # The container's init ignores SIGTERM until its shell has set the
        # trap, a moment after the start.
        time.sleep(1)

    state = adapter.set_power(guest_id, "stop")

    if backend == "qemu":
        # No guest OS handles the ACPI request, so the guest keeps running.
        assert state == "STARTED"
        assert adapter.get_guest(guest_id)["state"] == "STARTED"
    elif backend == "lxc":
        # The container's init exits on SIGTERM, a moment later.
        assert state in ("STARTED", "STOPPED")
        assert wait_for_state(adapter, guest_id, "STOPPED") == "STOPPED"
    else:
        assert state == "STOPPED"


# -- updates ---------------------------------------------------------------

def test_update_stopped_guest(adapter, make_guest):
    guest_id = make_guest(cpus=1, memory=64)["id"]

    record = adapter.update_guest(guest_id, {"memory": 96, "cpus": 2})

    assert record["id"] == guest_id
    assert record["memory"] == 96
    assert record["cpus"] == 2
    assert adapter.get_guest(guest_id) == record


def test_rename_stopped_guest(adapter, backend, make_guest):
    record = make_guest()
    new_name = backends.unique_name("renamed")
    if backend == "lxc":
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            adapter.update_guest(record["id"], {"name": new_name})
        assert "rename" in raised.value.message
        assert adapter.get_guest(record["id"]) == record
        return

    renamed = adapter.update_guest(record["id"], {"name": new_name})

    assert renamed["name"] == new_name
    assert adapter.get_guest(new_name)["id"] == record["id"]


def test_update_running_guest_rejected(adapter, make_guest):
    record = make_guest(memory=64)
    adapter.set_power(record["id"], "start")

    with pytest.raises(errors.InvalidState) as raised:
        adapter.update_guest(record["id"], {"memory": 128})

    assert "STARTED" in raised.value.message
    assert adapter.get_guest(record["id"])["memory"] == 64


@pytest.mark.backends("test", "qemu", "lxc")
@pytest.mark.parametrize("changes", [
    {"memory": {"memory_target": 256}},
    {"cpus": {"vcpus_at_startup": 2}},
    {"paravirtualized": "console=hvc0"},
])
def test_xen_update_forms_not_implemented(adapter, make_guest, changes):
    record = make_guest()

    with pytest.raises(errors.FeatureNotImplemented):
        adapter.update_guest(record["id"], changes)

    assert adapter.get_guest(record["id"]) == record


@pytest.mark.backends("test", "qemu", "lxc")
def test_update_unknown_key_changes_nothing(adapter, make_guest):
    record = make_guest(memory=64)

    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.update_guest(record["id"], {"memory": 128, "ha_enabled": True})

    assert "ha_enabled" in raised.value.message
    assert adapter.get_guest(record["id"]) == record


def test_hdd_shrink_rejected(adapter, backend, make_guest):
    if backend == "lxc":
        record = make_guest()
        with pytest.raises(errors.FeatureNotImplemented):
            adapter.update_guest(record["id"], {"hdd": 2})
        return
    record = make_guest(hdd=2, memory=64)

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.update_guest(record["id"], {"hdd": 1, "memory": 128})

    assert "smaller" in raised.value.message
    assert adapter.get_guest(record["id"]) == record


def test_disk_shrink_rejected(adapter, backend, make_guest):
    if backend == "lxc":
        return  # no disks: test_hdd_shrink_rejected covers LXC
    record = make_guest(hdd=2)
    disk = adapter.list_disks(record["id"])[0]

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.update_disk(record["id"], disk["id"], {"size": 1})

    assert "shrink" in raised.value.message
    assert adapter.get_disk(record["id"], disk["id"]) == disk


def test_hdd_grows_last_disk(adapter, backend, make_guest):
    record = make_guest()
    if backend == "lxc":
        return  # test_hdd_shrink_rejected covers LXC
    if backend == "test":
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            adapter.update_guest(record["id"], {"hdd": 3})
        assert "resize" in raised.value.message
        assert adapter.get_guest(record["id"]) == record
        return

    updated = adapter.update_guest(record["id"], {"hdd": 3})

    assert updated["hdd"] == 3
    assert adapter.list_disks(record["id"])[-1]["size"] == 3


# -- deletion --------------------------------------------------------------

def test_delete_removes_volumes(adapter, backend, kit, storage):
    volumes = kit.volumes(storage)
    spec = {"name": backends.unique_name("guest"), "memory": 64}
    if backend != "lxc":
        spec["hdd"] = 1
    record = adapter.create_guest(spec)
    if backend != "lxc":
        assert kit.volumes(storage) != volumes

    adapter.delete_guest(record["id"])

    assert record["name"] not in kit.guest_names()
    assert kit.volumes(storage) == volumes
    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest(record["id"])


# -- snapshots -------------------------------------------------------------

def test_snapshot_ids_and_names(adapter, backend, make_guest):
    guest_id = make_guest()["id"]
    if backend == "lxc":
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            adapter.create_snapshot(guest_id, "before")
        assert "LXC" in raised.value.message
        return

    named = adapter.create_snapshot(guest_id, "before upgrade")
    unnamed = adapter.create_snapshot(guest_id)

    assert named["id"] == str(uuid.UUID(named["id"]))
    assert named["name"] == "before upgrade"
    assert named["state"] == "STOPPED"
    assert ISO_8601_UTC.match(named["created"])
    assert ISO_8601_UTC.match(unnamed["name"])
    assert adapter.get_snapshot(guest_id, named["id"]) == named
    assert adapter.get_snapshot(guest_id, named["id"].upper()) == named
    listed = adapter.list_snapshots(guest_id)
    assert sorted(snapshot["id"] for snapshot in listed) == sorted(
        [named["id"], unnamed["id"]])

    adapter.delete_snapshot(guest_id, unnamed["id"])
    assert [snapshot["id"] for snapshot in adapter.list_snapshots(guest_id)] \
        == [named["id"]]


def test_delete_guest_with_snapshots(adapter, backend, kit, storage):
    volumes = kit.volumes(storage)
    spec = {"name": backends.unique_name("guest"), "memory": 64}
    if backend != "lxc":
        spec["hdd"] = 1
    record = adapter.create_guest(spec)
    if backend != "lxc":
        adapter.create_snapshot(record["id"], "one")
        adapter.create_snapshot(record["id"], "two")

    adapter.delete_guest(record["id"])

    assert record["name"] not in kit.guest_names()
    assert kit.volumes(storage) == volumes


# -- tags ------------------------------------------------------------------

def _esx_rejects_tags(adapter, backend, guest_id):
    """Check that a standalone ESX host, which has no custom attributes,
    rejects tags; return whether it did."""
    if backend != "vmware-esx":
        return False
    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.add_tag(guest_id, "web")
    assert "vCenter" in raised.value.message
    with pytest.raises(errors.FeatureNotImplemented):
        adapter.list_tags(guest_id)
    return True


def test_tags_are_a_set(adapter, backend, make_guest):
    guest_id = make_guest()["id"]
    if _esx_rejects_tags(adapter, backend, guest_id):
        return

    assert adapter.list_tags(guest_id) == []
    assert adapter.add_tag(guest_id, "web") == ["web"]
    assert adapter.add_tag(guest_id, "web") == ["web"]
    assert adapter.add_tag(guest_id, "db <&>") == ["db <&>", "web"]
    adapter.delete_tag(guest_id, "web")
    adapter.delete_tag(guest_id, "never-added")
    assert adapter.list_tags(guest_id) == ["db <&>"]


def test_tags_of_running_guest(adapter, backend, make_guest):
    guest_id = make_guest()["id"]
    if _esx_rejects_tags(adapter, backend, guest_id):
        return
    adapter.set_power(guest_id, "start")

    adapter.add_tag(guest_id, "live")
    adapter.set_power(guest_id, "force_stop")

    assert adapter.list_tags(guest_id) == ["live"]


def test_power_actions_match_contract():
    assert set(LibvirtAdapter.POWER_TRANSITIONS) == set(base.POWER_ACTIONS)


def test_concurrent_tags_all_kept(adapter, backend, kit, make_guest):
    guest_id = make_guest()["id"]
    if _esx_rejects_tags(adapter, backend, guest_id):
        return
    names = ["tag-%d" % index for index in range(12)]

    def add(name):
        # One adapter per thread, as one per request in the service.
        adapter = kit.make_adapter()
        adapter.open()
        try:
            adapter.add_tag(guest_id, name)
        finally:
            adapter.close()

    threads = [threading.Thread(target=add, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    reader = kit.make_adapter()
    reader.open()
    try:
        assert reader.list_tags(guest_id) == sorted(names)
    finally:
        reader.close()
