"""Guest snapshots. ``create_snapshot`` names each one with a new UUID."""

import datetime
import uuid
import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.libvirt.constants import SNAPSHOT_STATE_MAP
from simplestack.adapters.libvirt.domain_xml import _to_xml
from simplestack.adapters.libvirt.lookups import _is_uuid


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
        self._check_snapshot_possible(domain)
        root = ET.Element("domainsnapshot")
        ET.SubElement(root, "name").text = str(uuid.uuid4())
        ET.SubElement(root, "description").text = name or _now_iso8601()
        snapshot = self._call(domain.snapshotCreateXML, _to_xml(root), 0,
                              domain=domain)
        return self._snapshot_record(snapshot)

    def _check_snapshot_possible(self, domain):
        """Raise InvalidState for a live QEMU guest with a usb-net NIC.

        A snapshot of a live guest saves its memory the way a migration
        does, and QEMU 7.2 marks usb-net as not migratable, so libvirt
        would reject the snapshot after checking every other condition.
        """
        if self.driver != "qemu":
            return
        state = self._state(domain)
        if state == "STOPPED":
            return
        description = self._describe(domain)
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
        snapshot = self._snapshot(domain, snapshot_id)
        self._call(snapshot.delete, 0, domain=domain)

    def revert_snapshot(self, guest_id, snapshot_id):
        self._require("snapshots", "revert to snapshots")
        domain = self._domain(guest_id)
        snapshot = self._snapshot(domain, snapshot_id)
        self._call(domain.revertToSnapshot, snapshot, 0, domain=domain)
        return self._guest_from_domain(domain)
