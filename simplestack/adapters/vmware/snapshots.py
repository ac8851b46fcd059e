"""Snapshots.

vSphere numbers a VM's snapshots with a per-VM integer; the API id is a
UUID derived from the guest's UUID and that number.
"""

import datetime

from simplestack import errors
from simplestack.adapters.vmware.constants import derived_id, state_of
from simplestack.adapters.vmware.guest_records import GUEST_PATHS
from simplestack.adapters.vmware.inventory import is_uuid

SNAPSHOT_PATHS = ("name", "config.uuid", "snapshot", "runtime.powerState")


def iso_utc(moment):
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def walk(trees, parent_path=""):
    """Yield (tree, path) of every snapshot, parents first."""
    for tree in trees or []:
        path = "%s/%s" % (parent_path, tree.name) if parent_path else \
            tree.name
        yield tree, path
        yield from walk(tree.childSnapshotList, path)


class SnapshotsMixin:
    """Methods of VmwareAdapter for snapshots."""

    def _snapshot_record(self, guest_uuid, tree, path):
        return {
            "id": derived_id(guest_uuid.lower(), "snapshot-%d" % tree.id),
            "name": tree.name,
            "state": state_of(tree.state),
            "path": path,
            "created": iso_utc(tree.createTime),
        }

    def _snapshots(self, found):
        """Return [(record, snapshot ref)] of the guest read with
        SNAPSHOT_PATHS."""
        info = found.get("snapshot")
        trees = info.rootSnapshotList if info is not None else []
        guest_uuid = found.get("config.uuid") or ""
        return [(self._snapshot_record(guest_uuid, tree, path), tree.snapshot)
                for tree, path in walk(trees)]

    def _snapshot(self, found, snapshot_id):
        wanted = snapshot_id.lower() if is_uuid(snapshot_id) else None
        for record, ref in self._snapshots(found):
            if record["id"] == wanted:
                return record, ref
        raise errors.EntityNotFound("snapshot %s of guest %s not found"
                                    % (snapshot_id, found.get("name")))

    def list_snapshots(self, guest_id):
        found = self._guest(guest_id, SNAPSHOT_PATHS)
        return [record for record, _ref in self._snapshots(found)]

    def get_snapshot(self, guest_id, snapshot_id):
        found = self._guest(guest_id, SNAPSHOT_PATHS)
        return self._snapshot(found, snapshot_id)[0]

    def create_snapshot(self, guest_id, name=None):
        if name is None:
            name = iso_utc(datetime.datetime.now(datetime.timezone.utc))
        if not isinstance(name, str) or not name.strip():
            raise errors.InvalidArguments("invalid snapshot name %r" % (name,))
        found = self._guest(guest_id, SNAPSHOT_PATHS)
        # Without memory, a running guest's snapshot contains its disks
        # only, and vSphere powers the guest off when it reverts to it.
        ref = self._run("CreateSnapshot_Task", found.ref, name=name,
                        description="", memory=False, quiesce=False)
        after = self._properties(found.ref, SNAPSHOT_PATHS)
        for record, snapshot_ref in self._snapshots(after):
            if ref is not None and snapshot_ref._moId == ref._moId:
                return record
        raise errors.HypervisorError(
            "the new snapshot of guest %s is missing after "
            "CreateSnapshot_Task" % found.get("name"))

    def delete_snapshot(self, guest_id, snapshot_id):
        found = self._guest(guest_id, SNAPSHOT_PATHS)
        _record, ref = self._snapshot(found, snapshot_id)
        self._run("RemoveSnapshot_Task", ref, removeChildren=False)

    def revert_snapshot(self, guest_id, snapshot_id):
        found = self._guest(guest_id, SNAPSHOT_PATHS)
        _record, ref = self._snapshot(found, snapshot_id)
        self._run("RevertToSnapshot_Task", ref)
        return self._guest_record(self._properties(found.ref, GUEST_PATHS))
