"""Snapshots: VMs with ``is_a_snapshot`` set, each with its own disks."""

import datetime
import logging

from simplestack import errors
from simplestack.adapters.xen.lookups import is_uuid
from simplestack.adapters.xen.records import snapshot_record

logger = logging.getLogger(__name__)


def _now_iso8601():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class SnapshotsMixin:
    """Methods of XenAdapter for snapshots."""

    def list_snapshots(self, guest_id):
        _ref, vm = self._guest(guest_id)
        records = [snapshot_record(snapshot) for snapshot
                   in self._records("VM", vm["snapshots"]).values()]
        return sorted(records, key=lambda record: record["id"])

    def _snapshot(self, guest_ref, guest_id, snapshot_id):
        """Return (ref, record) of a snapshot of the guest."""
        if is_uuid(snapshot_id):
            try:
                ref = self._call("VM.get_by_uuid", snapshot_id.lower())
            except errors.EntityNotFound:
                ref = None
            if ref is not None:
                self._name_ref("VM", ref)
                snapshot = self._record("VM", ref)
                if snapshot["is_a_snapshot"] and \
                        snapshot["snapshot_of"] == guest_ref:
                    return ref, snapshot
        raise errors.EntityNotFound("guest %s has no snapshot %s"
                                    % (guest_id, snapshot_id))

    def get_snapshot(self, guest_id, snapshot_id):
        guest_ref, _vm = self._guest(guest_id)
        _ref, snapshot = self._snapshot(guest_ref, guest_id, snapshot_id)
        return snapshot_record(snapshot)

    def create_snapshot(self, guest_id, name=None):
        ref, _vm = self._guest(guest_id)
        # The third argument lists disks to leave out of the snapshot.
        snapshot_ref = self._call("VM.snapshot", ref, name or _now_iso8601(),
                                  [], vm=ref)
        return snapshot_record(self._record("VM", snapshot_ref))

    def delete_snapshot(self, guest_id, snapshot_id):
        guest_ref, _vm = self._guest(guest_id)
        ref, snapshot = self._snapshot(guest_ref, guest_id, snapshot_id)
        self._destroy_vm_with_disks(ref, snapshot)

    def revert_snapshot(self, guest_id, snapshot_id):
        guest_ref, _vm = self._guest(guest_id)
        ref, _snapshot = self._snapshot(guest_ref, guest_id, snapshot_id)
        self._call("VM.revert", ref, vm=guest_ref)
        return self._guest_record(guest_ref)
