"""The disks and the CD-ROM drive of a guest.

A disk is identified by the position of its target device, and the CD-ROM
is the first cdrom <disk>. Network interfaces are in nics.py.
"""

import os

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt.constants import DRIVER_GAPS, GIB
from simplestack.adapters.libvirt.domain_xml import (
    _free_target, _target_index, _to_xml)
from simplestack.adapters.libvirt.lookups import _validate_volume_name
from simplestack.adapters.libvirt.volumes import MEDIA_FORMATS

# Names tried by _free_volume_name: the plain one, then -1 to -99.
VOLUME_NAME_TRIES = 100


class DevicesMixin:
    """Methods of LibvirtAdapter for disks and the media device."""

    # -- disks -------------------------------------------------------------

    def _disk_record(self, disk, size):
        name = os.path.basename(disk.path) if disk.path else None
        return {
            "id": str(disk.number),
            "name": name,
            "number": disk.number,
            "size": size // GIB,
            "extra_info": disk.path,
        }

    def list_disks(self, guest_id):
        domain = self._domain(guest_id)
        description = self._describe(domain)
        sizes = self._disk_sizes(domain, description)
        return [self._disk_record(disk, sizes.get(disk.target, 0))
                for disk in description.disks]

    def _find_disk(self, description, disk_id):
        for disk in description.disks:
            if str(disk.number) == str(disk_id):
                return disk
        raise errors.EntityNotFound("disk %s of guest %s not found"
                                    % (disk_id, description.name))

    def get_disk(self, guest_id, disk_id):
        domain = self._domain(guest_id)
        description = self._describe(domain)
        disk = self._find_disk(description, disk_id)
        sizes = self._disk_sizes(domain, description)
        return self._disk_record(disk, sizes.get(disk.target, 0))

    def _device_flags(self, domain):
        """Change the persistent definition, and the live guest if running."""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if self._call(domain.isActive, domain=domain):
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return flags

    def create_disk(self, guest_id, spec):
        self._require("disks", "add disks")
        self._require("device_hotplug", "add disks")
        size = spec.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise errors.InvalidArguments(
                "invalid size %r; expected a positive number of GiB"
                % (size,))
        name = spec.get("name")
        if name is not None:
            _validate_volume_name("disk", name)
        domain = self._domain(guest_id)
        pool = self._default_pool(spec.get("storage_id"))
        with self._guest_lock(domain):
            description = self._describe(domain, inactive=True)
            target = _free_target(description)
            number = _target_index(target)
            if name is None:
                volume_name = self._free_volume_name(
                    pool, "%s-disk%d" % (description.name, number), ".qcow2")
            else:
                volume_name = name
                self._check_volume_name_free(pool, volume_name)
            self._check_space(pool, size * GIB, "a %d GiB disk" % size)

            volume = self._call(pool.createXML,
                                self._volume_xml(volume_name, size * GIB), 0)
            try:
                disk_element = self._disk_element(self._call(volume.path),
                                                  target)
                self._call(domain.attachDeviceFlags, _to_xml(disk_element),
                           self._device_flags(domain), domain=domain)
            except errors.SimplestackError:
                self._delete_volumes([volume])
                raise
        return self.get_disk(guest_id, number)

    def update_disk(self, guest_id, disk_id, changes):
        domain = self._domain(guest_id)
        with self._guest_lock(domain):
            description = self._describe(domain)
            disk = self._find_disk(description, disk_id)
            unknown = sorted(set(changes) - {"name", "size"})
            if unknown:
                raise errors.InvalidArguments(
                    "unknown disk fields: %s" % ", ".join(unknown))
            current_name = os.path.basename(disk.path) if disk.path else None
            if changes.get("name") not in (None, current_name):
                raise self.not_implemented(
                    "rename disks",
                    "a disk's name is its storage volume's name, and libvirt "
                    "cannot rename volumes")
            size = changes.get("size")
            if size is not None:
                if not isinstance(size, int) or isinstance(size, bool):
                    raise errors.InvalidArguments(
                        "invalid size %r; expected a number of GiB" % (size,))
                current = self._disk_sizes(domain, description).get(
                    disk.target, 0)
                if size * GIB < current and size != current // GIB:
                    raise errors.InvalidArguments(
                        "disk %s is %d GiB; it cannot shrink to %d GiB"
                        % (disk_id, current // GIB, size))
                if size * GIB > current:
                    self._check_growable(disk, size * GIB - current)
                    self._grow_disk(domain, disk, size * GIB)
        return self.get_disk(guest_id, disk_id)

    def delete_disk(self, guest_id, disk_id):
        self._require("device_hotplug", "delete disks")
        domain = self._domain(guest_id)
        with self._guest_lock(domain):
            description = self._describe(domain, inactive=True)
            disk = self._find_disk(description, disk_id)
            self._check_disk_in_no_snapshot(domain, description, disk)
            volume = self._volume_by_path(disk.path) if disk.path else None
            self._call(domain.detachDeviceFlags, _to_xml(disk.element),
                       self._device_flags(domain), domain=domain)
            if volume is not None:
                self._call(volume.delete, 0)

    def _check_disk_in_no_snapshot(self, domain, description, disk):
        """Raise Conflict when a snapshot of the guest contains ``disk``.

        A revert to that snapshot would need the disk's image. libvirt
        stops the guest before it finds the image missing, so the revert
        would fail and leave the guest stopped with a disk it cannot open.
        """
        if not disk.path or DRIVER_GAPS[self.driver].get("snapshots"):
            return
        holders = [snapshot for snapshot, paths
                   in self._snapshot_disk_paths(domain)
                   if disk.path in paths]
        if holders:
            raise errors.Conflict(
                "disk %d of guest %s is in %d snapshot(s) (%s), and a "
                "revert would need it; delete those snapshots first"
                % (disk.number, description.name, len(holders),
                   ", ".join(sorted(holders))))

    def _free_volume_name(self, pool, stem, suffix):
        """Return ``stem + suffix``, or ``stem-N + suffix`` when a volume of
        the pool has that name (left over from a guest's former disks)."""
        taken = set(self._call(pool.listVolumes))
        for attempt in range(VOLUME_NAME_TRIES):
            name = stem + ("-%d" % attempt if attempt else "") + suffix
            if name not in taken:
                return name
        raise errors.Conflict(
            "storage %s already has volumes %s%s to %s-%d%s; give the disk "
            "a name" % (pool.name(), stem, suffix, stem,
                        VOLUME_NAME_TRIES - 1, suffix))

    # -- media device ------------------------------------------------------

    def _cdrom(self, description):
        if not description.cdroms:
            raise errors.InvalidState("guest %s has no CD-ROM drive"
                                      % description.name)
        return description.cdroms[0]

    def get_media(self, guest_id):
        self._require("media", "show the media device")
        domain = self._domain(guest_id)
        cdrom = self._cdrom(self._describe(domain))
        if not cdrom.path:
            return {"name": None}
        volume = self._volume_by_path(cdrom.path)
        return {"name": volume.name() if volume is not None
                else os.path.basename(cdrom.path)}

    def set_media(self, guest_id, name):
        self._require("media", "change the media device")
        domain = self._domain(guest_id)
        cdrom = self._cdrom(self._describe(domain))
        self._require("device_update", "change the media device")
        path = None
        if name is not None:
            path = self._media_path(name)
        with self._guest_lock(domain):
            cdrom = self._cdrom(self._describe(domain))
            element = self._cdrom_element(cdrom.target, path)
            self._call(domain.updateDeviceFlags, _to_xml(element),
                       self._device_flags(domain), domain=domain)
        return self.get_media(guest_id)

    def _media_path(self, name):
        """Return the path of the image ``name`` for the CD-ROM drive.

        Only raw and ISO volumes that no guest uses as a disk qualify:
        the drive would show a guest another guest's writable disk, and a
        qcow2 image as raw data.
        """
        volumes = self._volumes_named(name)
        if not volumes:
            raise errors.EntityNotFound("image %s not found" % name)
        if len(volumes) > 1:
            raise errors.Conflict(
                "image name %r matches volumes in %d storages"
                % (name, len(volumes)))
        info = self._volume_info(volumes[0])
        if info.backing_path or info.format not in MEDIA_FORMATS:
            raise errors.InvalidArguments(
                "image %s is a %s volume%s; the CD-ROM drive takes only "
                "standalone %s images" % (
                    name, info.format or "unknown format",
                    " with a backing file" if info.backing_path else "",
                    " or ".join(MEDIA_FORMATS)))
        users = sorted(self._disk_users(info.path))
        if users:
            raise errors.Conflict(
                "image %s is a disk of guest %s; the CD-ROM drive takes "
                "only images that no guest uses as a disk"
                % (name, ", ".join(users)))
        return info.path
