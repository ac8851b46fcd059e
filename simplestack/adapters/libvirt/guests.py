"""Creating, changing and deleting guests."""

import logging
import xml.etree.ElementTree as ET

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt import export_marks
from simplestack.adapters.libvirt.constants import DRIVER_GAPS, GIB, KIB
from simplestack.adapters.libvirt.domain_xml import _to_xml
from simplestack.adapters.libvirt.lookups import _validate_guest_name
from simplestack.adapters.libvirt.volumes import _size_text

logger = logging.getLogger(__name__)


class GuestsMixin:
    """Methods of LibvirtAdapter that create, change and delete guests.

    The name checks, ``_delete_volumes`` and the disk growth steps serve
    clone, import and the disk operations too.
    """

    # -- guest creation ----------------------------------------------------

    def _check_name_free(self, name):
        _validate_guest_name(name)
        try:
            self._call(self.conn.lookupByName, name)
        except errors.EntityNotFound:
            return
        raise errors.Conflict(
            "a guest named %r already exists; libvirt needs unique names"
            % name)

    def _define_new_domain(self, root, name):
        """Define the domain XML ``root`` of a new guest called ``name``.

        libvirt reports a name that another domain took since
        ``_check_name_free`` as VIR_ERR_OPERATION_FAILED, the code of many
        other failures, so the name is looked up again to tell them apart.
        """
        try:
            return self._call(self.conn.defineXML, _to_xml(root))
        except errors.HypervisorError as error:
            try:
                self._call(self.conn.lookupByName, name)
            except errors.EntityNotFound:
                raise error
            raise errors.Conflict(
                "a guest named %r already exists; libvirt needs unique "
                "names" % name, original=error.original) from error

    def _check_volume_name_free(self, pool, name):
        try:
            self._call(pool.storageVolLookupByName, name)
        except errors.EntityNotFound:
            return
        raise errors.Conflict("a volume named %r already exists in storage %s"
                              % (name, pool.name()))

    def _template_volume(self, template):
        """Find the volume ``template`` names: a key, a path or a name.

        Every lookup finds volumes inside storage pools only, so a path
        outside the pools is not found, whatever file it names.
        """
        template = str(template)
        if template.startswith("/"):
            volume = self._volume_by_path(template)
            if volume is not None:
                return volume
        try:
            return self._call(self.conn.storageVolLookupByKey, template)
        except errors.EntityNotFound:
            pass
        volumes = self._volumes_named(template)
        if not volumes:
            raise errors.EntityNotFound("template %s not found" % template)
        if len(volumes) > 1:
            raise errors.Conflict(
                "template name %r matches volumes in %d storages; use the "
                "volume path instead" % (template, len(volumes)))
        return volumes[0]

    def _validate_guest_spec(self, spec):
        """Check a create spec; return (cpus, memory MiB, hdd GiB or None)."""
        if self.driver == "hyperv":
            raise self.not_implemented("create guests",
                                       "the hyperv driver is not available")
        if spec.get("paravirtualized"):
            raise self.not_implemented(
                "create paravirtualized guests",
                "the %s driver runs full virtualization or containers only"
                % self.driver)
        cpus = spec.get("cpus", 1)
        memory = spec.get("memory", 512)
        hdd = spec.get("hdd")
        for key, value in (("cpus", cpus), ("memory", memory)):
            if not isinstance(value, int) or isinstance(value, bool) \
                    or value < 1:
                raise errors.InvalidArguments(
                    "invalid %s %r; expected a positive integer"
                    % (key, value))
        if hdd is not None and (not isinstance(hdd, int)
                                or isinstance(hdd, bool) or hdd < 1):
            raise errors.InvalidArguments(
                "invalid hdd %r; expected a positive number of GiB" % (hdd,))
        if self.driver == "lxc":
            if hdd is not None or spec.get("template") is not None:
                raise self.not_implemented("create guests with disks",
                                           DRIVER_GAPS["lxc"]["disks"])
            if not self.config["container_root"]:
                raise self.not_implemented(
                    "create containers",
                    "the container_root setting names no root directory")
        return cpus, memory, hdd

    def create_guest(self, spec):
        name = spec.get("name")
        cpus, memory, hdd = self._validate_guest_spec(spec)
        self._check_name_free(name)
        self._check_cpus(cpus)
        self._check_memory(memory)
        network = spec.get("network") or self.config["network"] or None
        if network is not None:
            network = self._network_name(network)

        template = None
        pool = None
        if spec.get("template") is not None:
            template = self._template_volume(spec["template"])
            self._check_copy_source(template,
                                    "template %s" % spec["template"])
        if hdd is not None or template is not None:
            pool = self._default_pool(spec.get("storage_id"))
        elif spec.get("storage_id") is not None:
            self._pool(spec["storage_id"])

        capacity = hdd * GIB if hdd is not None else None
        if template is not None:
            template_size = self._call(template.info)[1]
            if capacity is not None and capacity < template_size:
                raise errors.InvalidArguments(
                    "hdd %d GiB is smaller than the template's %d GiB"
                    % (hdd, template_size // GIB))
            capacity = max(capacity or 0, template_size)
        volume_name = "%s-disk0.qcow2" % name
        if pool is not None:
            self._check_space(pool, capacity, "a %s disk" % _size_text(
                capacity))
            self._check_volume_name_free(pool, volume_name)

        domain_element = self._domain_element(name, memory, cpus)
        devices = domain_element.find("devices")
        created_volumes = []
        try:
            if pool is not None:
                volume_xml = self._volume_xml(volume_name, capacity)
                if template is not None:
                    volume = self._call(pool.createXMLFrom, volume_xml,
                                        template, 0)
                else:
                    volume = self._call(pool.createXML, volume_xml, 0)
                created_volumes.append(volume)
                devices.append(self._disk_element(
                    self._call(volume.path), "sda"))
            if self.driver == "lxc":
                filesystem = ET.SubElement(devices, "filesystem",
                                           type="mount")
                ET.SubElement(filesystem, "source",
                              dir=self.config["container_root"])
                ET.SubElement(filesystem, "target", dir="/")
                ET.SubElement(filesystem, "readonly")
            else:
                devices.append(self._cdrom_element(
                    "sdb" if pool is not None else "sda"))
            if network is not None:
                devices.append(self._interface_element(network))
            domain = self._define_new_domain(domain_element, name)
        except errors.SimplestackError:
            self._delete_volumes(created_volumes)
            raise
        logger.info("created guest %s (%s) on %s", name,
                    domain.UUIDString(), self.host)
        return self._guest_from_domain(domain)

    def _delete_volumes(self, volumes):
        """Delete volumes made by a failed operation, logging failures."""
        for volume in volumes:
            try:
                self._call(volume.delete, 0)
            except errors.SimplestackError as error:
                logger.error("could not delete volume %s after a failed "
                             "operation: %s", volume.name(), error.message)

    # -- guest changes -----------------------------------------------------

    UPDATE_KEYS = ("name", "memory", "cpus", "hdd", "paravirtualized")

    def update_guest(self, guest_id, changes):
        domain = self._domain(guest_id)
        unknown = sorted(set(changes) - set(self.UPDATE_KEYS))
        if unknown:
            raise self.not_implemented(
                "update %s" % ", ".join(unknown),
                "the libvirt adapter changes only name, memory, cpus and hdd")
        self._check_update_types(changes)
        with self._guest_lock(domain):
            self._update_locked(domain, changes)
        return self._guest_from_domain(domain)

    def _update_locked(self, domain, changes):
        """Check every change, then apply them, undoing the applied ones
        when a later one fails."""
        description = self._describe(domain, inactive=True, secure=True)
        original_xml = _to_xml(description.root)
        state = self._state(domain)

        new_name = changes.get("name")
        if new_name is not None and new_name == description.name:
            new_name = None
        memory = changes.get("memory")
        if memory is not None and memory * KIB == description.memory_kib:
            memory = None
        cpus = changes.get("cpus")
        if cpus is not None and cpus == description.cpus:
            cpus = None
        if (new_name is not None or memory is not None
                or cpus is not None) and state != "STOPPED":
            raise errors.InvalidState(
                "guest %s is %s; stop it to change its name, memory or cpus"
                % (description.name, state))
        if new_name is not None:
            self._require("rename", "rename guests")
            self._check_name_free(new_name)
        if cpus is not None:
            self._check_cpus(cpus, description.root)
        if memory is not None:
            self._check_memory(memory)
        grow = None
        if changes.get("hdd") is not None:
            grow = self._plan_hdd_growth(domain, description, changes["hdd"])

        # Order: the redefinition, then the rename, then the disk growth,
        # which cannot be undone because disks do not shrink.
        redefined = False
        renamed = False
        try:
            if memory is not None or cpus is not None:
                self._redefine_resources(description.root, memory, cpus)
                redefined = True
            if new_name is not None:
                self._rename(domain, description.name, new_name)
                renamed = True
            if grow is not None:
                self._grow_disk(domain, *grow)
        except errors.SimplestackError:
            self._undo_update(domain, description.name, original_xml,
                              renamed, redefined)
            raise

    def _redefine_resources(self, root, memory, cpus):
        """Redefine the domain ``root`` with new memory (MiB) or cpus.

        One redefinition changes both at once, on every driver: the LXC
        driver has no virDomainSetVcpusFlags.
        """
        if memory is not None:
            root.find("memory").text = str(memory * KIB)
            root.find("memory").set("unit", "KiB")
            current = root.find("currentMemory")
            if current is not None:
                root.remove(current)
        if cpus is not None:
            vcpu = root.find("vcpu")
            vcpu.text = str(cpus)
            vcpu.attrib.pop("current", None)
        self._call(self.conn.defineXML, _to_xml(root))

    def _rename(self, domain, old_name, new_name):
        """Rename the domain; Conflict when another took ``new_name``.

        libvirt reports a taken name with VIR_ERR_OPERATION_INVALID, the
        code of other rejections too, so the name is looked up again.
        """
        try:
            self._call(domain.rename, new_name, 0, domain=domain)
        except (errors.InvalidState, errors.HypervisorError) as error:
            try:
                other = self._call(self.conn.lookupByName, new_name)
            except errors.EntityNotFound:
                raise error
            if other.UUIDString() == domain.UUIDString():
                raise error
            raise errors.Conflict(
                "cannot rename guest %s: a guest named %r already exists"
                % (old_name, new_name), original=error.original) from error

    def _undo_update(self, domain, old_name, original_xml, renamed,
                     redefined):
        """Restore the name and definition after a failed update, logging
        what cannot be restored."""
        uuid = domain.UUIDString()
        if renamed:
            try:
                self._call(domain.rename, old_name, 0, domain=domain)
            except errors.SimplestackError as error:
                logger.error("could not rename guest %s back to %s after a "
                             "failed update: %s", uuid, old_name,
                             error.message)
                return
        if redefined:
            try:
                self._call(self.conn.defineXML, original_xml)
            except errors.SimplestackError as error:
                logger.error("could not restore the definition of guest %s "
                             "after a failed update: %s", uuid,
                             error.message)

    def _check_update_types(self, changes):
        """Reject values of the wrong type before anything changes."""
        for key in ("memory", "cpus"):
            value = changes.get(key)
            if isinstance(value, dict):
                # Xen's {memory_target, ...} and {vcpus_at_startup, ...}.
                raise self.not_implemented(
                    "set %s as a map" % key,
                    "libvirt guests take one integer for %s" % key)
            if value is not None and (not isinstance(value, int)
                                      or isinstance(value, bool)
                                      or value < 1):
                raise errors.InvalidArguments(
                    "invalid %s %r; expected a positive integer"
                    % (key, value))
        paravirtualized = changes.get("paravirtualized")
        if paravirtualized not in (None, False):
            # True, or Xen's PV kernel arguments as a string.
            raise self.not_implemented(
                "make a guest paravirtualized",
                "the %s driver runs full virtualization or containers only"
                % self.driver)
        if changes.get("name") is not None:
            _validate_guest_name(changes["name"])

    def _plan_hdd_growth(self, domain, description, hdd):
        """Check a new hdd total; return (disk, new size in bytes) or None."""
        if not isinstance(hdd, int) or isinstance(hdd, bool) or hdd < 0:
            raise errors.InvalidArguments(
                "invalid hdd %r; expected a number of GiB" % (hdd,))
        sizes = self._disk_sizes(domain, description)
        current = sum(sizes.get(disk.target, 0) for disk in description.disks)
        if hdd * GIB == current or (hdd == current // GIB
                                    and hdd * GIB < current):
            return None
        self._require("disks", "change the disk size")
        if hdd * GIB < current:
            raise errors.InvalidArguments(
                "hdd %d GiB is smaller than the guest's disks (%d GiB); "
                "disks can only grow" % (hdd, current // GIB))
        if not description.disks:
            raise errors.InvalidArguments(
                "guest %s has no disk to grow" % description.name)
        last = description.disks[-1]
        new_size = sizes.get(last.target, 0) + hdd * GIB - current
        self._check_growable(last, hdd * GIB - current)
        return last, new_size

    def _check_growable(self, disk, added_bytes):
        """Raise unless ``disk`` is a volume whose pool has ``added_bytes``
        free."""
        self._require("volume_resize", "grow disks")
        volume = None
        if disk.path is not None:
            volume = self._volume_by_path(disk.path)
        if volume is None:
            raise self.not_implemented(
                "grow disk %s" % disk.target,
                "its image is not a storage volume")
        pool = self._call(volume.storagePoolLookupByVolume)
        self._check_space(pool, added_bytes, "growing disk %d by %s" % (
            disk.number, _size_text(added_bytes)))

    def _grow_disk(self, domain, disk, new_size):
        if self._call(domain.isActive, domain=domain):
            # A running QEMU must learn the new size from libvirt itself.
            self._call(domain.blockResize, disk.target, new_size,
                       libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES, domain=domain)
        else:
            volume = self._volume_by_path(disk.path)
            self._call(volume.resize, new_size, 0)

    def delete_guest(self, guest_id):
        domain = self._domain(guest_id)
        # A concurrent deletion of the same guest waits here, and then
        # finds the domain gone (404).
        with self._guest_lock(domain):
            description = self._describe(domain, inactive=True)
            volumes = self._owned_volumes(domain)

            if self._call(domain.isActive, domain=domain):
                self._destroy(domain)
            # Internal snapshots live inside the qcow2 files deleted below,
            # so dropping their metadata loses nothing else.
            flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                     | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
            if self.driver == "qemu":
                flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            elif self.driver == "lxc":
                # The LXC driver rejects every undefine flag, and has
                # neither snapshots nor managed saves to drop.
                flags = 0
            self._call(domain.undefineFlags, flags, domain=domain)
            if not DRIVER_GAPS[self.driver].get("volume_stream"):
                export_marks.remove_marks(description.uuid.lower())
            for volume in volumes:
                self._call(volume.delete, 0)
        logger.info("deleted guest %s (%s) and %d volumes on %s",
                    description.name, description.uuid, len(volumes),
                    self.host)

    def _destroy(self, domain):
        """Force the domain off; a domain that stopped meanwhile is fine."""
        try:
            self._call(domain.destroy, domain=domain)
        except errors.InvalidState:
            if self._call(domain.isActive, domain=domain):
                raise

    def _owned_volumes(self, domain, keep_paths=()):
        """Return the volumes of the disks of ``domain`` that no other
        domain uses as a disk.

        The disks are those of the live and the persistent definition and
        of every snapshot's definition, so a disk that a revert dropped
        from the definition still counts while a snapshot contains it. Paths
        in ``keep_paths`` and disk images outside storage pools are left
        out.
        """
        paths = set()
        descriptions = [self._describe(domain, inactive=True)]
        if self._call(domain.isActive, domain=domain):
            descriptions.append(self._describe(domain))
        for description in descriptions:
            paths.update(disk.path for disk in description.disks
                         if disk.path)
        if not DRIVER_GAPS[self.driver].get("snapshots"):
            for _label, snapshot_paths in self._snapshot_disk_paths(domain):
                paths.update(snapshot_paths)
        paths.difference_update(keep_paths)
        uuid = domain.UUIDString()
        for other, description in self._all_descriptions():
            if other.UUIDString() != uuid:
                paths.difference_update(disk.path
                                        for disk in description.disks)
        volumes = []
        for path in sorted(paths):
            volume = self._volume_by_path(path)
            if volume is not None:
                volumes.append(volume)
        return volumes
