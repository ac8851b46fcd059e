"""Disks and the media device (the CD drive) of a guest.

A disk is a VBD of type Disk with its VDI; its id and number are the
VBD's ``userdevice``, the device position XAPI keeps for the disk's life.
"""

import logging

from simplestack import errors
from simplestack.adapters.xen.constants import GIB, NULL_REF
from simplestack.adapters.xen.records import disk_record, state_of
from simplestack.adapters.xen.rollback import Rollback

logger = logging.getLogger(__name__)


def _vdi_record(name, sr_ref, size_bytes, vdi_type):
    return {
        "name_label": name,
        "name_description": "",
        "SR": sr_ref,
        "virtual_size": size_bytes,
        "type": vdi_type,
        "sharable": False,
        "read_only": False,
        "other_config": {},
        "xenstore_data": {},
        "sm_config": {},
        "tags": [],
    }


def _vbd_record(vm_ref, vdi_ref, userdevice, vbd_type, bootable=False):
    cd = vbd_type == "CD"
    return {
        "VM": vm_ref,
        "VDI": vdi_ref,
        "userdevice": userdevice,
        "bootable": bootable,
        # XAPI requires CD drives to be read-only, and only they may be
        # empty.
        "mode": "RO" if cd else "RW",
        "type": vbd_type,
        "unpluggable": True,
        "empty": vdi_ref == NULL_REF,
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
    }


class DisksMixin:
    """Methods of XenAdapter for disks and the CD drive."""

    # -- disks ---------------------------------------------------------------

    def list_disks(self, guest_id):
        _ref, vm = self._guest(guest_id)
        return [disk_record(vbd, vdi) for _vbd_ref, vbd, _vdi_ref, vdi
                in self._disks(vm)]

    def _disk(self, vm, guest_id, disk_id):
        """Return (vbd_ref, vbd, vdi_ref, vdi) of the disk ``disk_id``."""
        disk_id = str(disk_id)
        if disk_id.isdigit():
            for disk in self._disks(vm):
                if int(disk[1]["userdevice"]) == int(disk_id):
                    self._name_ref("VBD", disk[0])
                    self._name_ref("VDI", disk[2])
                    return disk
        raise errors.EntityNotFound("guest %s has no disk %s"
                                    % (guest_id, disk_id))

    def get_disk(self, guest_id, disk_id):
        _ref, vm = self._guest(guest_id)
        _vbd_ref, vbd, _vdi_ref, vdi = self._disk(vm, guest_id, disk_id)
        return disk_record(vbd, vdi)

    def create_disk(self, guest_id, spec):
        vm_ref, vm = self._guest(guest_id)
        size = self._disk_size(spec.get("size"))
        if spec.get("storage_id") is not None:
            sr_ref, _sr = self._storage(spec["storage_id"])
        else:
            sr_ref = self._storage_of_guest(vm)
        vbd_ref, number = self._add_disk(
            vm_ref, vm, size, spec.get("name"), sr_ref, vdi_type="user")
        vbd = self._record("VBD", vbd_ref)
        logger.info("added disk %d (%d GiB) to guest %s on %s", number,
                    size // GIB, vm["uuid"], self.host)
        return disk_record(vbd, self._record("VDI", vbd["VDI"]))

    @staticmethod
    def _disk_size(size_gib):
        if isinstance(size_gib, bool) or not isinstance(size_gib, int) \
                or size_gib < 1:
            raise errors.InvalidArguments(
                "invalid disk size %r; expected a whole number of GiB, at "
                "least 1" % (size_gib,))
        return size_gib * GIB

    def _storage_of_guest(self, vm):
        """Return the SR of the guest's first disk, else the default SR."""
        disks = self._disks(vm)
        if disks:
            return disks[0][3]["SR"]
        return self._default_storage()[0]

    def _add_disk(self, vm_ref, vm, size_bytes, name, sr_ref,
                  vdi_type="user", bootable=False):
        """Create a VDI and attach it to the VM at a free position;
        plug it into a running VM. Return (vbd_ref, number)."""
        with Rollback("adding a disk") as rollback:
            vdi_ref = self._call("VDI.create", _vdi_record(
                name or "%s disk" % vm["name_label"], sr_ref, size_bytes,
                vdi_type), vm=vm_ref)
            rollback.add("delete the new VDI", self._call, "VDI.destroy",
                         vdi_ref)
            vbd_ref, number = self._create_device(
                "VBD", vm_ref, lambda userdevice: _vbd_record(
                    vm_ref, vdi_ref, userdevice, "Disk", bootable))
            rollback.add("delete the new VBD", self._call, "VBD.destroy",
                         vbd_ref)
            if self._call("VM.get_power_state", vm_ref) == "Running":
                self._call("VBD.plug", vbd_ref, vm=vm_ref)
        return vbd_ref, number

    def update_disk(self, guest_id, disk_id, changes):
        unknown = set(changes) - {"name", "size"}
        if unknown:
            raise self.not_implemented(
                "change %s of a disk" % ", ".join(sorted(unknown)))
        _vm_ref, vm = self._guest(guest_id)
        vbd_ref, vbd, vdi_ref, vdi = self._disk(vm, guest_id, disk_id)

        new_size = None
        if "size" in changes:
            new_size = self._disk_size(changes["size"])
            current = int(vdi["virtual_size"])
            if new_size < current // GIB * GIB:
                raise errors.InvalidArguments(
                    "cannot shrink disk %s of guest %s from %d to %d GiB; "
                    "disks only grow" % (disk_id, guest_id, current // GIB,
                                         changes["size"]))
            if new_size <= current:
                new_size = None
        new_name = changes.get("name")
        if new_name is not None and new_name == vdi["name_label"]:
            new_name = None

        with Rollback("updating a disk") as rollback:
            if new_name is not None:
                self._call("VDI.set_name_label", vdi_ref, new_name)
                rollback.add("restore the disk name", self._call,
                             "VDI.set_name_label", vdi_ref, vdi["name_label"])
            if new_size is not None:
                self._resize(vbd, vdi_ref, new_size, guest_id, vm)
        return disk_record(self._record("VBD", vbd_ref),
                           self._record("VDI", vdi_ref))

    def _resize(self, vbd, vdi_ref, size_bytes, guest_id, vm):
        if vbd["currently_attached"]:
            raise errors.InvalidState(
                "cannot grow a disk of guest %s while it is %s: XAPI "
                "resizes detached disks only; stop the guest first"
                % (guest_id, state_of(vm)))
        self._call("VDI.resize", vdi_ref, size_bytes)

    def delete_disk(self, guest_id, disk_id):
        vm_ref, vm = self._guest(guest_id)
        vbd_ref, vbd, vdi_ref, vdi = self._disk(vm, guest_id, disk_id)
        if vbd["currently_attached"] and vm["power_state"] != "Running":
            # XAPI unplugs disks of running VMs only, and keeps a suspended
            # VM's disks attached.
            raise errors.InvalidState(
                "cannot delete disk %s of guest %s while it is %s: the disk "
                "is attached; resume or stop the guest first"
                % (disk_id, guest_id, state_of(vm)))
        # Another VM or snapshot that has a VBD of the VDI (a sharable
        # disk) keeps it: only this guest's VBD goes.
        shared = any(other != vbd_ref for other in vdi["VBDs"])

        with Rollback("deleting a disk") as rollback:
            if vbd["currently_attached"]:
                self._call("VBD.unplug", vbd_ref, vm=vm_ref)
                rollback.add("plug the disk again", self._call, "VBD.plug",
                             vbd_ref)
            self._call("VBD.destroy", vbd_ref, vm=vm_ref)
        if shared:
            logger.info("deleted disk %s of guest %s on %s; kept VDI %s, "
                        "which other VMs use", disk_id, vm["uuid"],
                        self.host, vdi["uuid"])
            return
        # NOTE: a failure of VDI.destroy leaves the detached VDI in its SR.
        self._call("VDI.destroy", vdi_ref)
        logger.info("deleted disk %s (VDI %s) of guest %s on %s", disk_id,
                    vdi["uuid"], vm["uuid"], self.host)

    # -- media device ---------------------------------------------------------

    def _cd_drive(self, vm, guest_id):
        """Return (vbd_ref, vbd) of the guest's first CD drive."""
        drives = [(ref, vbd) for ref, vbd in
                  self._records("VBD", vm["VBDs"]).items()
                  if vbd["type"] == "CD"]
        if not drives:
            raise errors.InvalidState("guest %s has no CD-ROM drive"
                                      % guest_id)
        drive = min(drives, key=lambda item: item[1]["userdevice"])
        self._name_ref("VBD", drive[0])
        return drive

    def get_media(self, guest_id):
        _ref, vm = self._guest(guest_id)
        _vbd_ref, vbd = self._cd_drive(vm, guest_id)
        if vbd["empty"] or vbd["VDI"] == NULL_REF:
            return {"name": None}
        return {"name": self._call("VDI.get_name_label", vbd["VDI"])}

    def set_media(self, guest_id, name):
        vm_ref, vm = self._guest(guest_id)
        vbd_ref, vbd = self._cd_drive(vm, guest_id)
        loaded = None if vbd["empty"] else vbd["VDI"]
        image_ref = self._iso_image(name) if name is not None else None
        if image_ref is not None and image_ref == loaded:
            return {"name": name}

        with Rollback("changing the media") as rollback:
            if loaded is not None:
                self._eject(vbd_ref, vm_ref)
                rollback.add("insert the previous image", self._call,
                             "VBD.insert", vbd_ref, loaded)
            if image_ref is not None:
                self._call("VBD.insert", vbd_ref, image_ref, vm=vm_ref)
        return {"name": name}

    def _eject(self, vbd_ref, vm_ref):
        try:
            self._call("VBD.eject", vbd_ref, vm=vm_ref)
        except errors.InvalidState as error:
            # Another request ejected it first: the drive is empty either
            # way.
            if error.code != "VBD_IS_EMPTY":
                raise

    def _iso_image(self, name):
        """Return the VDI ref of the ISO image called ``name``."""
        refs = self._call("VDI.get_by_name_label", name)
        vdis = self._records("VDI", refs)
        srs = self._records("SR", {vdi["SR"] for vdi in vdis.values()})
        images = [ref for ref, vdi in vdis.items()
                  if srs.get(vdi["SR"], {}).get("content_type") == "iso"]
        if not images:
            raise errors.EntityNotFound(
                "no ISO image named %r in the ISO storages of %s"
                % (name, self.host))
        if len(images) > 1:
            raise errors.Conflict(
                "%d ISO images are named %r; the name is ambiguous"
                % (len(images), name))
        return images[0]
