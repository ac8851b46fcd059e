"""Guest records: ``list_guests``, ``get_guest`` and what they share."""

from simplestack.adapters.xen.constants import (
    GUEST_DEVICE_CLASSES, GUEST_VM_QUERY, NULL_REF)
from simplestack.adapters.xen.records import (
    GUEST_LIST_FIELDS, disk_vbds, guest_record, is_guest,
    names_missing_record)


class GuestRecordsMixin:
    """Methods of XenAdapter that read guest records."""

    def list_guests(self):
        # Two calls, whatever the number of guests: the VMs that can be
        # guests, then every VBD, VDI, guest metrics and host record. The
        # query leaves out the templates, which event.from would send too.
        vms = self._records_where("VM", GUEST_VM_QUERY,
                                  GUEST_LIST_FIELDS["VM"])
        loaded = self._load_classes(GUEST_DEVICE_CLASSES, GUEST_LIST_FIELDS)
        vbds, vdis, hosts = loaded["VBD"], loaded["VDI"], loaded["host"]
        metrics = loaded["VM_guest_metrics"]
        records = []
        for ref, vm in vms.items():
            if not is_guest(vm):
                continue
            if names_missing_record(vm, vbds, vdis, metrics, hosts):
                # The guest changed between the two calls: a device or
                # the guest itself was destroyed, or it stopped.
                record = self._reread_guest_record(ref)
            else:
                record = guest_record(vm, vbds, vdis,
                                      metrics.get(vm["guest_metrics"]), hosts)
            if record is not None:
                records.append(record)
        return sorted(records, key=lambda record: record["id"])

    def _reread_guest_record(self, ref):
        """Read guest ``ref`` and its devices again, one call each, and
        build its record; return None when it is no longer a guest.

        A record that is destroyed between these calls is left out, as
        guest_record leaves out one that it lacks.
        NOTE: a VM whose record keeps naming a destroyed object costs
        these calls on every list.
        """
        vm = self._existing_records("VM", [ref]).get(ref)
        if vm is None or not is_guest(vm):
            return None
        vbds = self._existing_records("VBD", vm["VBDs"])
        vdis = self._existing_records(
            "VDI", [vbd["VDI"] for _ref, vbd in disk_vbds(vm, vbds)])
        metrics = self._existing_records("VM_guest_metrics",
                                         [vm["guest_metrics"]])
        hosts = self._existing_records("host", [vm["resident_on"]])
        return guest_record(vm, vbds, vdis, metrics.get(vm["guest_metrics"]),
                            hosts)

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
