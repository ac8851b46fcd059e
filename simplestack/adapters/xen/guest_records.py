"""Guest records: ``list_guests``, ``get_guest`` and what they share."""

from simplestack.adapters.xen.constants import GUEST_CLASSES, NULL_REF
from simplestack.adapters.xen.records import (
    GUEST_LIST_FIELDS, disk_vbds, guest_record, is_guest)


class GuestRecordsMixin:
    """Methods of XenAdapter that read guest records."""

    def list_guests(self):
        # One event.from call returns every VM, VBD, VDI, guest metrics
        # and host record, whatever the number of guests.
        loaded = self._load_classes(GUEST_CLASSES, GUEST_LIST_FIELDS)
        metrics = loaded["VM_guest_metrics"]
        records = [
            guest_record(vm, loaded["VBD"], loaded["VDI"],
                         metrics.get(vm["guest_metrics"]), loaded["host"])
            for vm in loaded["VM"].values() if is_guest(vm)
        ]
        return sorted(records, key=lambda record: record["id"])

    def get_guest(self, guest_id):
        ref, vm = self._guest(guest_id)
        return self._guest_record(ref, vm)

    def _guest_record(self, ref, vm=None):
        """Read the guest's devices and build its record; ``vm`` is its
        VM record when the caller has a fresh one."""
        if vm is None:
            vm = self._record("VM", ref)
        vbds = self._records("VBD", vm["VBDs"])
        vdis = self._records("VDI", [vbd["VDI"] for _ref, vbd
                                     in disk_vbds(vm, vbds)])
        metrics = None
        if vm["guest_metrics"] != NULL_REF:
            metrics = self._record("VM_guest_metrics", vm["guest_metrics"])
        hosts = self._records("host", [vm["resident_on"]])
        return guest_record(vm, vbds, vdis, metrics, hosts)

    def _disks(self, vm):
        """Return [(vbd_ref, vbd, vdi_ref, vdi)] of the VM's disks, in
        device order."""
        vbds = self._records("VBD", vm["VBDs"])
        return [(vbd_ref, vbd, vbd["VDI"], self._record("VDI", vbd["VDI"]))
                for vbd_ref, vbd in disk_vbds(vm, vbds)]
