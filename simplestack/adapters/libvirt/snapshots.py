"""Guest snapshots. ``create_snapshot`` names each one with a new UUID."""

import datetime
import logging
import uuid
import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.libvirt.constants import SNAPSHOT_STATE_MAP
from simplestack.adapters.libvirt.domain_xml import DiskDevice, _to_xml
from simplestack.adapters.libvirt.lookups import _is_uuid


logger = logging.getLogger(__name__)


def _iso8601(timestamp):
    moment = datetime.datetime.fromtimestamp(int(timestamp),
                                             datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_iso8601():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class SnapshotsMixin:
    """Methods of LibvirtAdapter for snapshots."""

    def _snapshot_record(self, snapshot):
        root = ET.fromstring(self._call(snapshot.getXMLDesc, 0))
        created = root.findtext("creationTime")
        sources = {}
        for disk in root.findall("domain/devices/disk"):
            target = disk.find("target")
            source = disk.find("source")
            if target is not None and source is not None:
                sources[target.get("dev")] = source.get("file")
        # path: where the snapshot's data lives, which for an internal
        # snapshot is the image of its first disk.
        path = None
        for disk in root.findall("disks/disk"):
            kind = disk.get("snapshot")
            if kind == "internal":
                path = sources.get(disk.get("name"))
            elif kind == "external" and disk.find("source") is not None:
                path = disk.find("source").get("file")
            if path:
                break
        return {
            "id": snapshot.getName(),
            "name": root.findtext("description") or snapshot.getName(),
            "state": SNAPSHOT_STATE_MAP.get(root.findtext("state"),
                                            "UNKNOWN"),
            "path": path,
            "created": _iso8601(created) if created else None,
        }

    def _snapshot(self, domain, snapshot_id):
        snapshot_id = str(snapshot_id)
        # The adapter names snapshots with lower-case UUIDs, and ids are
        # accepted in any case.
        names = [snapshot_id]
        if _is_uuid(snapshot_id) and snapshot_id.lower() != snapshot_id:
            names.append(snapshot_id.lower())
        for name in names:
            try:
                return self._call(domain.snapshotLookupByName, name, 0,
                                  domain=domain)
            except errors.EntityNotFound as error:
                not_found = error
        raise errors.EntityNotFound("snapshot %s not found" % snapshot_id,
                                    original=not_found.original)

    def _snapshot_disk_paths(self, domain):
        """Return (label, set of disk image paths) for each snapshot.

        The paths are those of the disks in the definition the snapshot
        saved, which a revert restores. The label is the snapshot id with
        its name, for messages.
        """
        result = []
        for snapshot in self._call(domain.listAllSnapshots, 0,
                                   domain=domain):
            root = ET.fromstring(self._call(snapshot.getXMLDesc, 0))
            paths = {DiskDevice(element).path for element
                     in root.findall("domain/devices/disk")
                     if element.get("device", "disk") == "disk"}
            paths.discard(None)
            label = "%s (%s)" % (snapshot.getName(),
                                 root.findtext("description") or "no name")
            result.append((label, paths))
        return result

    def list_snapshots(self, guest_id):
        self._require("snapshots", "list snapshots")
        domain = self._domain(guest_id)
        snapshots = self._call(domain.listAllSnapshots, 0, domain=domain)
        records = [self._snapshot_record(snapshot) for snapshot in snapshots]
        return sorted(records, key=lambda record: record["id"])

    def get_snapshot(self, guest_id, snapshot_id):
        self._require("snapshots", "show a snapshot")
        domain = self._domain(guest_id)
        return self._snapshot_record(self._snapshot(domain, snapshot_id))

    def create_snapshot(self, guest_id, name=None):
        self._require("snapshots", "create snapshots")
        domain = self._domain(guest_id)
        with self._guest_lock(domain):
            self._check_snapshot_possible(domain)
            root = ET.Element("domainsnapshot")
            ET.SubElement(root, "name").text = str(uuid.uuid4())
            ET.SubElement(root, "description").text = name or _now_iso8601()
            snapshot = self._call(domain.snapshotCreateXML, _to_xml(root), 0,
                                  domain=domain)
            return self._snapshot_record(snapshot)

    def _check_snapshot_possible(self, domain):
        """Raise when QEMU cannot take an internal snapshot of the guest.

        QEMU keeps internal snapshots inside qcow2 images, so a guest
        without a disk or with a disk in another format cannot have one
        (FeatureNotImplemented). A snapshot of a live guest also saves its
        memory the way a migration does, and QEMU 7.2 marks usb-net as not
        migratable (InvalidState). libvirt would report each only after
        checking every other condition, as a 502.
        """
        if self.driver != "qemu":
            return
        description = self._describe(domain)
        if not description.disks:
            raise self.not_implemented(
                "snapshot guest %s" % description.name,
                "it has no disk, and QEMU keeps snapshots inside qcow2 disk "
                "images; add a disk first")
        for disk in description.disks:
            if disk.format != "qcow2":
                raise self.not_implemented(
                    "snapshot guest %s" % description.name,
                    "disk %d is a %s image, and QEMU keeps snapshots inside "
                    "qcow2 images only" % (disk.number,
                                           disk.format or "unknown"))
        state = self._state(domain)
        if state == "STOPPED":
            return
        for interface in description.interfaces:
            model = interface.element.find("model")
            if model is not None and model.get("type") == "usb-net":
                raise errors.InvalidState(
                    "cannot snapshot guest %s while it is %s: QEMU cannot "
                    "save the state of its usb-net network interface %s; "
                    "stop the guest or remove the interface first"
                    % (description.name, state, interface.mac))

    def delete_snapshot(self, guest_id, snapshot_id):
        self._require("snapshots", "delete snapshots")
        domain = self._domain(guest_id)
        with self._guest_lock(domain):
            snapshot = self._snapshot(domain, snapshot_id)
            self._call(snapshot.delete, 0, domain=domain)

    def revert_snapshot(self, guest_id, snapshot_id):
        """Revert to the snapshot, then delete the volumes of the disks it
        dropped that no snapshot or other guest holds.

        Disks added after the snapshot are not in its definition, so the
        revert detaches them. Their volumes would otherwise stay in the
        pool with no guest or snapshot left to reach them.
        """
        self._require("snapshots", "revert to snapshots")
        domain = self._domain(guest_id)
        with self._guest_lock(domain):
            snapshot = self._snapshot(domain, snapshot_id)
            root = ET.fromstring(self._call(snapshot.getXMLDesc, 0))
            before = self._describe(domain, inactive=True)
            self._check_revert_possible(before, snapshot_id, root)
            self._call(domain.revertToSnapshot, snapshot, 0, domain=domain)
            self._delete_dropped_volumes(domain, before)
        return self._guest_from_domain(domain)

    def _check_revert_possible(self, current, snapshot_id, root):
        """Raise Conflict when the revert to the snapshot ``root`` would
        fail after libvirt stopped the guest.

        libvirt stops a running guest before it opens the disk images of
        the snapshot's definition and connects its networks, so a missing
        image or an inactive network would leave the guest stopped.
        """
        current_paths = {disk.path for disk in current.disks}
        for element in root.findall("domain/devices/disk"):
            disk = DiskDevice(element)
            if disk.device != "disk" or not disk.path:
                continue
            if disk.path not in current_paths and \
                    self._volume_by_path(disk.path) is None:
                raise errors.Conflict(
                    "snapshot %s of guest %s needs the disk image %s, which "
                    "no longer exists, so the guest cannot revert to it; "
                    "delete the snapshot" % (snapshot_id, current.name,
                                             disk.path))
        if SNAPSHOT_STATE_MAP.get(root.findtext("state")) == "STOPPED":
            return
        for element in root.findall("domain/devices/interface"):
            source = element.find("source")
            if element.get("type") == "network" and source is not None \
                    and source.get("network"):
                self._check_network_active(source.get("network"),
                                           current.name)

    def _delete_dropped_volumes(self, domain, before):
        """Delete the volumes of disks in the definition ``before`` that the
        guest's definition, its snapshots and other guests no longer use.

        A failure is logged, not raised: the revert itself succeeded.
        """
        after = self._describe(domain, inactive=True)
        dropped = {disk.path for disk in before.disks if disk.path}
        dropped.difference_update(disk.path for disk in after.disks)
        if self._call(domain.isActive, domain=domain):
            dropped.difference_update(
                disk.path for disk in self._describe(domain).disks)
        if not dropped:
            return
        for _label, paths in self._snapshot_disk_paths(domain):
            dropped.difference_update(paths)
        for other, description in self._all_descriptions():
            if other.UUIDString() != domain.UUIDString():
                dropped.difference_update(disk.path
                                          for disk in description.disks)
        for path in sorted(dropped):
            volume = self._volume_by_path(path)
            if volume is None:
                continue
            try:
                self._call(volume.delete, 0)
            except errors.SimplestackError as error:
                logger.error("could not delete volume %s, which the revert "
                             "of guest %s dropped: %s", path, after.uuid,
                             error.message)
            else:
                logger.info("deleted volume %s, which the revert of guest "
                            "%s dropped", path, after.uuid)
