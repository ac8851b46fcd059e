"""Whole guest lifecycles, device changes, images and networks per backend.

Where a backend cannot do an operation, the test checks the exact
FeatureNotImplemented it raises instead.
"""

import io
import tarfile

import pytest

from simplestack import errors
from simplestack.adapters.libvirt import QCOW2_MAGIC
from tests import backends
from tests.libvirt_fixtures import iso_volume, volume_names
from tests.vmware_fixtures import VMWARE_BACKENDS
from tests.xen_fixtures import TOOLS_ISO_SR

NIC_FIELDS = {"id", "number", "mac", "network", "locking_mode",
              "ipv4_allowed", "ipv6_allowed", "rate_limit"}
DISK_FIELDS = {"id", "name", "number", "size", "extra_info"}


def _register(cleanup, record):
    cleanup.append(record["id"])
    return record


def test_full_lifecycle(backend, request):
    lifecycles = {"qemu": _qemu_lifecycle, "lxc": _lxc_lifecycle,
                  "test": _test_driver_lifecycle, "xen": _xen_lifecycle,
                  "vmware": _vmware_lifecycle,
                  "vmware-esx": _vmware_lifecycle}
    lifecycle = lifecycles[backend]
    fixtures = lifecycle.__code__.co_varnames[:lifecycle.__code__.co_argcount]
    lifecycle(*[request.getfixturevalue(name) for name in fixtures])


def _qemu_lifecycle(adapter, make_guest, cleanup, storage_pool, iso_image,
                    isolated_network):
    volumes_before = volume_names(storage_pool)
    guest = make_guest(hdd=1, network=isolated_network.name())
    guest_id = guest["id"]

    # Power: each call returns the state read back.
    assert adapter.set_power(guest_id, "start") == "STARTED"
    assert adapter.set_power(guest_id, "pause") == "PAUSED"
    assert adapter.set_power(guest_id, "resume") == "STARTED"
    # HEAD on an export runs the checks of a GET, here the state's.
    with pytest.raises(errors.InvalidState) as raised:
        adapter.check_export(guest_id)
    assert "STARTED" in raised.value.message

    # A second disk and a NIC, added to and removed from the running guest.
    disk = adapter.create_disk(guest_id, {"size": 1})
    assert set(disk) == DISK_FIELDS
    assert disk["size"] == 1
    assert adapter.get_guest(guest_id)["hdd"] == 2
    nic = adapter.create_nic(guest_id, {"network": isolated_network.name(),
                                        "mac": "52:54:00:AB:CD:EF"})
    assert set(nic) == NIC_FIELDS
    assert nic["mac"] == "52:54:00:ab:cd:ef"
    assert nic["network"] == isolated_network.name()
    assert len(adapter.list_nics(guest_id)) == 2
    adapter.delete_nic(guest_id, nic["mac"])
    adapter.delete_disk(guest_id, disk["id"])
    assert len(adapter.list_nics(guest_id)) == 1
    assert [d["id"] for d in adapter.list_disks(guest_id)] == ["0"]
    assert adapter.get_guest(guest_id)["hdd"] == 1

    # An ISO mounted and ejected while running.
    assert adapter.get_media(guest_id) == {"name": None}
    assert adapter.set_media(guest_id, iso_image) == {"name": iso_image}
    assert adapter.get_media(guest_id) == {"name": iso_image}
    assert adapter.get_guest(guest_id)["hdd"] == 1
    assert adapter.set_media(guest_id, None) == {"name": None}

    # A snapshot of a running guest saves its memory, which QEMU cannot do
    # for a usb-net NIC; stopped, the guest snapshots and reverts.
    with pytest.raises(errors.InvalidState) as raised:
        adapter.create_snapshot(guest_id, "running")
    assert "usb-net" in raised.value.message
    assert adapter.set_power(guest_id, "force_stop") == "STOPPED"
    snapshot = adapter.create_snapshot(guest_id, "before growth")
    adapter.update_guest(guest_id, {"hdd": 2})
    assert adapter.get_guest(guest_id)["hdd"] == 2
    reverted = adapter.revert_snapshot(guest_id, snapshot["id"])
    assert reverted["hdd"] == 1
    assert reverted["state"] == "STOPPED"

    # Clone: new UUID, new MACs, own disk.
    clone = _register(cleanup, adapter.clone_guest(
        guest_id, backends.unique_name("clone")))
    assert clone["id"] != guest_id
    assert clone["hdd"] == 1
    original_macs = {n["mac"] for n in adapter.list_nics(guest_id)}
    clone_macs = {n["mac"] for n in adapter.list_nics(clone["id"])}
    assert len(clone_macs) == 1
    assert not clone_macs & original_macs
    assert adapter.list_disks(clone["id"])[0]["extra_info"] != \
        adapter.list_disks(guest_id)[0]["extra_info"]

    # Export, import, export again: the bytes round-trip.
    facts = adapter.check_export(guest_id)
    image = adapter.export_guest(guest_id)
    try:
        exported = b"".join(image)
    finally:
        image.close()
    assert exported.startswith(QCOW2_MAGIC)
    assert image.length == len(exported)
    assert image.content_type == "application/x-qemu-disk"
    # HEAD's facts are the export's own.
    assert facts == (image.content_type, image.filename, image.length)
    imported = _register(cleanup, adapter.import_guest(
        io.BytesIO(exported), len(exported), "application/octet-stream",
        name=backends.unique_name("imported")))
    assert imported["hdd"] == 1
    again = adapter.export_guest(imported["id"])
    try:
        assert b"".join(again) == exported
    finally:
        again.close()

    # Deletion leaves none of the volumes behind.
    for guest_id_to_delete in (imported["id"], clone["id"], guest_id):
        adapter.delete_guest(guest_id_to_delete)
    assert volume_names(storage_pool) == volumes_before


def _lxc_lifecycle(adapter, make_guest, cleanup, isolated_network):
    guest = make_guest(network=isolated_network.name())
    guest_id = guest["id"]
    assert guest["hdd"] == 0

    assert adapter.set_power(guest_id, "start") == "STARTED"
    assert adapter.set_power(guest_id, "pause") == "PAUSED"
    assert adapter.set_power(guest_id, "resume") == "STARTED"

    # veth NICs plug and unplug while the container runs.
    first_mac = adapter.list_nics(guest_id)[0]["mac"]
    nic = adapter.create_nic(guest_id, {"network": isolated_network.name()})
    assert len(adapter.list_nics(guest_id)) == 2
    adapter.delete_nic(guest_id, nic["mac"])
    assert len(adapter.list_nics(guest_id)) == 1

    # What containers lack: disks, media, snapshots, images.
    cases = [
        (adapter.create_disk, (guest_id, {"size": 1}), "not disk volumes"),
        (adapter.get_media, (guest_id,), "no CD-ROM"),
        (adapter.set_media, (guest_id, "x.iso"), "no CD-ROM"),
        (adapter.create_snapshot, (guest_id,), "no snapshot support"),
        (adapter.export_guest, (guest_id,), "no disk image"),
        (adapter.check_export, (guest_id,), "no disk image"),
        (adapter.import_guest, (io.BytesIO(b"x"), 1, None),
         "no disk image"),
        (adapter.update_nic, (guest_id, first_mac, {"active": False}),
         "stopped containers only"),
    ]
    for method, arguments, reason in cases:
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            method(*arguments)
        assert reason in raised.value.message, method.__name__

    assert adapter.reboot_guest(guest_id, force=True) == "STARTED"
    assert adapter.set_power(guest_id, "force_stop") == "STOPPED"

    clone = _register(cleanup, adapter.clone_guest(
        guest_id, backends.unique_name("clone")))
    assert clone["id"] != guest_id
    assert {n["mac"] for n in adapter.list_nics(clone["id"])} != \
        {n["mac"] for n in adapter.list_nics(guest_id)}
    adapter.delete_guest(clone["id"])
    adapter.delete_guest(guest_id)
    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest(guest_id)


def _test_driver_lifecycle(adapter, make_guest, cleanup, iso_image,
                           isolated_network):
    guest = make_guest(hdd=1, network=isolated_network.name())
    guest_id = guest["id"]
    mac = adapter.list_nics(guest_id)[0]["mac"]

    assert adapter.set_power(guest_id, "start") == "STARTED"
    snapshot = adapter.create_snapshot(guest_id, "running")
    assert snapshot["state"] == "STARTED"
    assert adapter.set_power(guest_id, "force_stop") == "STOPPED"
    assert adapter.revert_snapshot(guest_id, snapshot["id"])["state"] == \
        "STARTED"
    assert adapter.set_power(guest_id, "force_stop") == "STOPPED"
    assert adapter.get_media(guest_id) == {"name": None}

    # The test driver cannot attach, detach or change devices, nor move
    # volume data.
    cases = [
        (adapter.create_disk, (guest_id, {"size": 1}), "attach or detach"),
        (adapter.delete_disk, (guest_id, "0"), "attach or detach"),
        (adapter.create_nic, (guest_id, {"network": "default"}),
         "attach or detach"),
        (adapter.delete_nic, (guest_id, mac), "attach or detach"),
        (adapter.update_nic, (guest_id, mac, {"active": False}),
         "change devices"),
        (adapter.set_media, (guest_id, iso_image), "change devices"),
        (adapter.update_disk, (guest_id, "0", {"size": 2}),
         "resize storage volumes"),
        (adapter.export_guest, (guest_id,), "upload or download"),
        (adapter.check_export, (guest_id,), "upload or download"),
        (adapter.import_guest, (io.BytesIO(b"x"), 1, None),
         "upload or download"),
    ]
    for method, arguments, reason in cases:
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            method(*arguments)
        assert reason in raised.value.message, method.__name__

    clone = _register(cleanup, adapter.clone_guest(
        guest_id, backends.unique_name("clone")))
    assert clone["hdd"] == 1
    assert {n["mac"] for n in adapter.list_nics(clone["id"])} != {mac}


def _xen_lifecycle(adapter, make_guest, cleanup, kit, storage, iso_image,
                   network):
    volumes_before = kit.volumes(storage)
    guest = make_guest(hdd=1, network=network.name)
    guest_id = guest["id"]

    # Power: pause suspends the guest to disk, resume brings it back.
    assert adapter.set_power(guest_id, "start") == "STARTED"
    assert adapter.set_power(guest_id, "pause") == "PAUSED"
    assert adapter.set_power(guest_id, "resume") == "STARTED"

    # A second disk and a NIC, added to and removed from the running guest.
    disk = adapter.create_disk(guest_id, {"size": 1, "name": "data"})
    assert set(disk) == DISK_FIELDS
    assert disk["name"] == "data"
    assert adapter.get_guest(guest_id)["hdd"] == 2
    nic = adapter.create_nic(guest_id, {"network": network.name,
                                        "mac": "52:54:00:AB:CD:EF"})
    assert set(nic) == NIC_FIELDS
    assert nic["mac"] == "52:54:00:ab:cd:ef"
    assert nic["network"] == network.name
    assert len(adapter.list_nics(guest_id)) == 2
    adapter.delete_nic(guest_id, nic["mac"])
    adapter.delete_disk(guest_id, disk["id"])
    assert len(adapter.list_nics(guest_id)) == 1
    assert [d["id"] for d in adapter.list_disks(guest_id)] == ["0"]

    # An ISO mounted and ejected while running; ejecting twice is fine.
    assert adapter.get_media(guest_id) == {"name": None}
    assert adapter.set_media(guest_id, iso_image) == {"name": iso_image}
    assert adapter.get_media(guest_id) == {"name": iso_image}
    assert adapter.get_guest(guest_id)["hdd"] == 1
    assert adapter.set_media(guest_id, None) == {"name": None}
    assert adapter.set_media(guest_id, None) == {"name": None}

    # XAPI snapshots running guests too; a revert restores the disks.
    assert adapter.set_power(guest_id, "force_stop") == "STOPPED"
    snapshot = adapter.create_snapshot(guest_id, "before growth")
    adapter.update_guest(guest_id, {"hdd": 2})
    assert adapter.get_guest(guest_id)["hdd"] == 2
    reverted = adapter.revert_snapshot(guest_id, snapshot["id"])
    assert reverted["hdd"] == 1
    assert reverted["state"] == "STOPPED"

    # Clone: new UUID, own disk.
    clone = _register(cleanup, adapter.clone_guest(
        guest_id, backends.unique_name("clone")))
    assert clone["id"] != guest_id
    assert clone["hdd"] == 1
    assert adapter.list_disks(clone["id"])[0]["extra_info"] != \
        adapter.list_disks(guest_id)[0]["extra_info"]

    # Export to an XVA stream and import it back.
    image = adapter.export_guest(guest_id)
    try:
        exported = b"".join(image)
    finally:
        image.close()
    assert image.content_type == "application/x-xva"
    with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
        assert archive.getnames()[0] == "ova.xml"
    imported = _register(cleanup, adapter.import_guest(
        io.BytesIO(exported), len(exported), "application/x-xva",
        name=backends.unique_name("imported")))
    assert imported["id"] not in (guest_id, clone["id"])
    assert imported["hdd"] == 1

    # Deletion leaves none of the disks behind, snapshot disks included.
    for guest_id_to_delete in (imported["id"], clone["id"], guest_id):
        adapter.delete_guest(guest_id_to_delete)
    assert kit.volumes(storage) == volumes_before


def _vmware_lifecycle(adapter, make_guest, cleanup, kit, storage, iso_image,
                      network):
    volumes_before = kit.volumes(storage)
    guest = make_guest(hdd=1, network=network.name)
    guest_id = guest["id"]

    # Power: pause suspends the guest, resume powers it on again.
    assert adapter.set_power(guest_id, "start") == "STARTED"
    assert adapter.set_power(guest_id, "pause") == "PAUSED"
    assert adapter.set_power(guest_id, "resume") == "STARTED"

    # A second disk and a NIC, added to and removed from the running guest.
    disk = adapter.create_disk(guest_id, {"size": 1})
    assert set(disk) == DISK_FIELDS
    assert disk["number"] == 1
    assert disk["size"] == 1
    assert adapter.get_guest(guest_id)["hdd"] == 2
    nic = adapter.create_nic(guest_id, {"network": network.name,
                                        "mac": "00:50:56:3A:BC:DE"})
    assert set(nic) == NIC_FIELDS
    assert nic["mac"] == "00:50:56:3a:bc:de"
    assert nic["network"] == network.name
    assert len(adapter.list_nics(guest_id)) == 2
    adapter.delete_nic(guest_id, nic["mac"])
    adapter.delete_disk(guest_id, disk["id"])
    assert len(adapter.list_nics(guest_id)) == 1
    assert [d["id"] for d in adapter.list_disks(guest_id)] == ["0"]

    # An ISO mounted and ejected while running; ejecting twice is fine.
    assert adapter.get_media(guest_id) == {"name": None}
    assert adapter.set_media(guest_id, iso_image) == {"name": iso_image}
    assert adapter.get_media(guest_id) == {"name": iso_image}
    assert adapter.get_guest(guest_id)["hdd"] == 1
    assert adapter.set_media(guest_id, None) == {"name": None}
    assert adapter.set_media(guest_id, None) == {"name": None}

    # The simulator lacks RebootGuest; the forced reboot resets.
    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.reboot_guest(guest_id)
    assert "RebootGuest" in raised.value.message
    assert raised.value.code == "MethodNotFound"
    assert adapter.reboot_guest(guest_id, force=True) == "STARTED"

    # A disk with snapshots cannot grow; without them it can.
    assert adapter.set_power(guest_id, "force_stop") == "STOPPED"
    snapshot = adapter.create_snapshot(guest_id, "before growth")
    with pytest.raises(errors.InvalidState) as raised:
        adapter.update_guest(guest_id, {"hdd": 2})
    assert "snapshots" in raised.value.message
    reverted = adapter.revert_snapshot(guest_id, snapshot["id"])
    assert reverted["id"] == guest_id
    assert reverted["state"] == "STOPPED"
    adapter.delete_snapshot(guest_id, snapshot["id"])
    assert adapter.update_guest(guest_id, {"hdd": 2})["hdd"] == 2

    # Clone: new UUID, own disk. The source's disk is read before the
    # clone because govmomi 0.24's simulator then shows the clone's disk
    # file in the source's device list as well.
    source_disk = adapter.list_disks(guest_id)[0]["extra_info"]
    clone = _register(cleanup, adapter.clone_guest(
        guest_id, backends.unique_name("clone")))
    assert clone["id"] != guest_id
    assert clone["hdd"] == 2
    assert adapter.list_disks(clone["id"])[0]["extra_info"] != source_disk

    # The simulator lacks ExportVm: the adapter makes the real call.
    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.export_guest(guest_id)
    assert "ExportVm" in raised.value.message
    assert raised.value.code == "MethodNotFound"

    # Deletion leaves none of the disk files behind.
    for guest_id_to_delete in (clone["id"], guest_id):
        adapter.delete_guest(guest_id_to_delete)
    assert kit.volumes(storage) == volumes_before


# -- disks -----------------------------------------------------------------

def test_disk_records(adapter, backend, kit, make_guest, storage):
    guest = make_guest(hdd=None if backend == "lxc" else 2)
    disks = adapter.list_disks(guest["id"])
    if backend == "lxc":
        assert disks == []
        return

    assert len(disks) == 1
    assert set(disks[0]) == DISK_FIELDS
    assert disks[0]["id"] == "0"
    assert disks[0]["number"] == 0
    assert disks[0]["size"] == 2
    if backend == "xen":
        # extra_info is the VDI's UUID.
        assert disks[0]["extra_info"] in kit.volumes(storage)
    elif backend in VMWARE_BACKENDS:
        # extra_info is the datastore path of the disk file.
        assert disks[0]["extra_info"] in kit.volumes(storage)
        assert disks[0]["extra_info"].endswith("/" + disks[0]["name"])
    else:
        assert disks[0]["name"] in kit.volumes(storage)
        assert disks[0]["extra_info"].endswith("/" + disks[0]["name"])
    assert adapter.get_disk(guest["id"], "0") == disks[0]


def test_disk_rename(adapter, backend, make_guest):
    if backend == "lxc":
        return  # no disks: the LXC lifecycle covers LXC
    guest = make_guest()
    disk = adapter.list_disks(guest["id"])[0]
    if backend == "xen":
        renamed = adapter.update_disk(guest["id"], disk["id"],
                                      {"name": "system disk"})
        assert renamed == dict(disk, name="system disk")
        assert adapter.get_disk(guest["id"], disk["id"]) == renamed
        return

    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.update_disk(guest["id"], disk["id"], {"name": "new.qcow2"})

    if backend in VMWARE_BACKENDS:
        assert "cannot rename disks" in raised.value.message
    else:
        assert "cannot rename volumes" in raised.value.message
    assert adapter.update_disk(guest["id"], disk["id"],
                               {"name": disk["name"]}) == disk


def test_added_disks_keep_numbers(adapter, backend, make_guest):
    if backend not in ("qemu", "xen"):
        return  # the others cannot attach disks; their lifecycles check it
    guest_id = make_guest()["id"]

    second = adapter.create_disk(guest_id, {"size": 1})
    third = adapter.create_disk(guest_id, {"size": 2, "name":
                                           backends.unique_name("named")})
    adapter.delete_disk(guest_id, second["id"])

    numbers = [disk["number"] for disk in adapter.list_disks(guest_id)]
    assert second["number"] not in numbers
    assert third["number"] in numbers
    assert adapter.get_disk(guest_id, third["id"]) == third
    assert adapter.get_guest(guest_id)["hdd"] == 3


# -- media -----------------------------------------------------------------

def _second_iso_image(backend, kit, request, name):
    """Put another image called ``name`` in a second ISO storage."""
    if backend == "xen":
        return kit.iso_image(name=name, sr_name=TOOLS_ISO_SR)
    return iso_volume(request.getfixturevalue("backend_connection"),
                      request.getfixturevalue("storage_pool"), name=name)


def test_media_errors(adapter, backend, kit, request, make_guest, iso_image):
    guest_id = make_guest()["id"]
    if backend not in ("qemu", "xen"):
        return  # the lifecycle tests check what the others raise

    with pytest.raises(errors.EntityNotFound):
        adapter.set_media(guest_id, "sstest-no-such-image.iso")

    # The same name in a second storage makes the name ambiguous.
    with _second_iso_image(backend, kit, request, iso_image):
        with pytest.raises(errors.Conflict):
            adapter.set_media(guest_id, iso_image)
    assert adapter.get_media(guest_id) == {"name": None}


@pytest.mark.backends("test", "qemu", "lxc")
def test_media_without_cdrom(adapter, backend, backend_connection,
                             cleanup, storage_pool):
    if backend != "qemu":
        return  # only QEMU guests have CD-ROM drives
    path = backends.image_dir() / storage_pool.name() / "sstest-bare.qcow2"
    storage_pool.createXML(
        "<volume><name>sstest-bare.qcow2</name><capacity>1048576</capacity>"
        "<target><format type='qcow2'/></target></volume>", 0)
    domain = backend_connection.defineXML(backends.qemu_domain_xml(
        backends.unique_name("bare"), path))
    cleanup.append(domain.UUIDString())

    with pytest.raises(errors.InvalidState) as raised:
        adapter.get_media(domain.UUIDString())

    assert "no CD-ROM" in raised.value.message


# -- NICs ------------------------------------------------------------------

def test_nic_update_stopped_guest(adapter, backend, make_guest, network):
    guest_id = make_guest(network=network.name)["id"]
    mac = adapter.list_nics(guest_id)[0]["mac"]
    if backend == "test":
        return  # the test driver lifecycle covers the test driver
    if backend == "xen":
        # XAPI plugs every VIF when the guest starts, so a stopped guest's
        # NIC cannot be set to stay unplugged; plugging it is a no-op.
        with pytest.raises(errors.InvalidState) as raised:
            adapter.update_nic(guest_id, mac, {"active": False,
                                               "rate_limit": 8192 * 100})
        assert "STOPPED" in raised.value.message
        assert adapter.get_nic(guest_id, mac)["rate_limit"] is None
        assert adapter.update_nic(guest_id, mac, {"active": True}) == \
            adapter.get_nic(guest_id, mac)
        limited = adapter.update_nic(guest_id, mac,
                                     {"rate_limit": 8192 * 100})
        assert limited["rate_limit"] == 8192 * 100
        cleared = adapter.update_nic(guest_id, mac, {"rate_limit": None})
        assert cleared["rate_limit"] is None
        return

    if backend in VMWARE_BACKENDS:
        # vSphere has no per-NIC rate limit; a NIC can be disconnected.
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            adapter.update_nic(guest_id, mac, {"rate_limit": 8192 * 100,
                                               "active": False})
        assert "rate_limit" in raised.value.message
        assert adapter.update_nic(guest_id, mac, {"active": False}) == \
            adapter.get_nic(guest_id, mac)
        assert adapter.update_nic(guest_id, mac, {"rate_limit": None,
                                                  "active": True}) == \
            adapter.get_nic(guest_id, mac)
        return

    limited = adapter.update_nic(guest_id, mac, {"rate_limit": 8192 * 100,
                                                 "active": False})
    assert limited["rate_limit"] == 8192 * 100
    cleared = adapter.update_nic(guest_id, mac, {"rate_limit": None,
                                                 "active": True})
    assert cleared["rate_limit"] is None


def test_nic_locking_and_allowed_addresses(adapter, backend, make_guest,
                                           network):
    guest_id = make_guest(network=network.name)["id"]
    nic = adapter.list_nics(guest_id)[0]
    if backend == "xen":
        changed = adapter.update_nic(guest_id, nic["mac"], {
            "locking_mode": "locked", "ipv4_allowed": ["10.0.0.1"],
            "ipv6_allowed": ["fd00::1"]})
        assert changed == dict(nic, locking_mode="locked",
                               ipv4_allowed=["10.0.0.1"],
                               ipv6_allowed=["fd00::1"])
        return

    # libvirt has no such settings.
    for field, value in (("locking_mode", "locked"),
                         ("ipv4_allowed", ["10.0.0.1"]),
                         ("ipv6_allowed", [])):
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            adapter.update_nic(guest_id, nic["mac"], {field: value})
        assert field in raised.value.message
    assert adapter.get_nic(guest_id, nic["mac"]) == nic


def test_nic_bad_rate_limit(adapter, backend, make_guest, network):
    guest_id = make_guest(network=network.name)["id"]
    nic = adapter.list_nics(guest_id)[0]
    if backend == "test":
        return  # the test driver raises FeatureNotImplemented first

    with pytest.raises(errors.InvalidArguments):
        adapter.update_nic(guest_id, nic["mac"], {"rate_limit": 1000})
    assert adapter.get_nic(guest_id, nic["mac"]) == nic


def test_nic_duplicate_mac(adapter, backend, make_guest, network):
    guest_id = make_guest(network=network.name)["id"]
    nic = adapter.list_nics(guest_id)[0]
    if backend == "test":
        return  # the test driver cannot attach NICs at all

    with pytest.raises(errors.Conflict):
        adapter.create_nic(guest_id, {"network": network.name,
                                      "mac": nic["mac"].upper()})
    assert adapter.list_nics(guest_id) == [nic]


def test_nic_unknown_network(adapter, backend, make_guest):
    guest_id = make_guest()["id"]
    nics = adapter.list_nics(guest_id)

    expected = errors.EntityNotFound
    if backend == "test":
        expected = errors.FeatureNotImplemented
    with pytest.raises(expected):
        adapter.create_nic(guest_id, {"network": "sstest-no-such-network"})
    assert adapter.list_nics(guest_id) == nics


# -- clone and import checks -------------------------------------------------

def test_clone_running_guest_rejected(adapter, make_guest):
    guest_id = make_guest()["id"]
    adapter.set_power(guest_id, "start")

    with pytest.raises(errors.InvalidState) as raised:
        adapter.clone_guest(guest_id, backends.unique_name("clone"))

    assert "STARTED" in raised.value.message


def test_import_raw_image(adapter, backend, kit, cleanup, storage):
    data = bytes(range(256)) * 4096  # 1 MiB that is not qcow2
    if backend == "xen":
        # XAPI imports XVA archives only.
        names = kit.guest_names()
        with pytest.raises(errors.InvalidArguments) as raised:
            adapter.import_guest(io.BytesIO(data), len(data), None,
                                 name=backends.unique_name("raw"))
        assert "not an XVA" in raised.value.message
        assert kit.guest_names() == names
        return
    if backend != "qemu":
        return  # the lifecycle tests check what the others raise

    record = _register(cleanup, adapter.import_guest(
        io.BytesIO(data), len(data), None,
        name=backends.unique_name("raw")))

    disk = adapter.list_disks(record["id"])[0]
    assert disk["name"].endswith(".raw")
    image = adapter.export_guest(record["id"])
    try:
        assert b"".join(image) == data
    finally:
        image.close()


def test_import_short_stream(adapter, backend, kit, storage):
    if backend != "qemu":
        return  # others: their lifecycles, and tests/xen for Xen
    name = backends.unique_name("short")
    volumes = kit.volumes(storage)

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.import_guest(io.BytesIO(b"x" * 1000), 5000, None, name=name)

    assert "1000 of 5000" in raised.value.message
    assert kit.volumes(storage) == volumes
    assert name not in kit.guest_names()


# -- networks --------------------------------------------------------------

def test_create_isolated_network(adapter, backend, kit):
    name = backends.unique_name("net")
    if backend in VMWARE_BACKENDS:
        with pytest.raises(errors.FeatureNotImplemented):
            adapter.create_network({"name": name, "description": "lab"})
        return

    record = adapter.create_network({"name": name, "description": "lab"})
    try:
        assert record["name_label"] == name
        assert record["name_description"] == "lab"
        assert record["vlan"] is None
        if backend == "xen":
            assert record["other_config"] == {}
        else:
            assert record["other_config"]["forward_mode"] == "isolated"
        assert adapter.get_network(record["id"]) == record
    finally:
        kit.remove_network(name)


def test_network_errors(adapter, backend, network):
    if backend in VMWARE_BACKENDS:
        # The VMware adapter creates no networks, so it rejects any request.
        with pytest.raises(errors.FeatureNotImplemented):
            adapter.create_network({"name": network.name})
        return
    with pytest.raises(errors.Conflict):
        adapter.create_network({"name": network.name})
    if backend == "xen":
        # A VLAN needs both a tag and the network that carries it.
        with pytest.raises(errors.InvalidArguments):
            adapter.create_network({"name": backends.unique_name("net"),
                                    "vlan": 10})
        with pytest.raises(errors.InvalidArguments):
            adapter.create_network({"name": backends.unique_name("net"),
                                    "from_network": network.name})
        # An isolated network has no interface to tag.
        with pytest.raises(errors.InvalidArguments):
            adapter.create_network({"name": backends.unique_name("net"),
                                    "from_network": network.name,
                                    "vlan": 10})
        return
    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.create_network({"name": backends.unique_name("net"),
                                "vlan": 10})
    assert "Open vSwitch" in raised.value.message
    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.create_network({"name": backends.unique_name("net"),
                                "from_network": network.name,
                                "vlan": 10})
    assert "Open vSwitch" in raised.value.message
    with pytest.raises(errors.FeatureNotImplemented):
        adapter.create_network({"name": backends.unique_name("net"),
                                "other_config": {"mtu": "9000"}})
