"""Creating, changing, cloning and deleting guests."""

import logging
import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.xen.constants import (
    CD_USERDEVICE, DEFAULT_PV_ARGS, GIB, MIB, NULL_REF)
from simplestack.adapters.xen.disks import _vbd_record
from simplestack.adapters.xen.failures import check_no_operation_in_progress
from simplestack.adapters.xen.lookups import validate_name
from simplestack.adapters.xen.records import disk_vbds, state_of
from simplestack.adapters.xen.rollback import Rollback

logger = logging.getLogger(__name__)

#: Keys of update_guest, in the order they are applied. ``hdd`` comes
#: last: a disk cannot shrink back, so no later step may fail after it.
UPDATE_KEYS = ("name", "ha_enabled", "vcpu_settings", "paravirtualized",
               "memory", "cpus", "memory_target_live", "vcpus_number_live",
               "template", "hdd")


def _boot_settings(paravirtualized):
    """Return (PV_args, HVM_boot_policy, HVM_boot_params) for the API's
    ``paravirtualized`` value: true, false, or PV kernel arguments."""
    if paravirtualized is False or paravirtualized == "":
        return "", "BIOS order", {"order": "dc"}
    if paravirtualized is True:
        return DEFAULT_PV_ARGS, "", None
    return paravirtualized, "", None


class GuestsMixin:
    """Methods of XenAdapter that create, change and delete guests."""

    # -- creation -------------------------------------------------------------

    def _template(self, template_id):
        """Return (ref, record) of a template named or identified by
        ``template_id``; a name of several templates is a Conflict."""
        is_template = (lambda vm: vm["is_a_template"]
                       and not vm["is_a_snapshot"])
        return self._find("VM", "template", template_id, accept=is_template)

    def create_guest(self, spec):
        with self._name_lock(spec.get("name")):
            return self._create_guest(spec)

    def _create_guest(self, spec):
        name = spec.get("name")
        validate_name("guest", name)
        memory = spec.get("memory")
        cpus = spec.get("cpus")
        self._check_guest_name_free(name)
        template_ref, _template = self._template(
            spec.get("template") or self.config["default_template"])
        if spec.get("storage_id") is not None:
            sr_ref, sr = self._storage(spec["storage_id"])
        else:
            sr_ref, sr = self._default_storage()
        network_ref = None
        if spec.get("network") is not None:
            network_ref = self._network_by_name(spec["network"])

        with Rollback("creating guest %s" % name) as rollback:
            # A clone of a template is a template; provisioning creates
            # the disks its other_config:disks lists.
            vm_ref = self._call("VM.clone", template_ref, name)
            rollback.add("delete the new VM", self._destroy_vm_with_disks,
                         vm_ref)
            self._provision(vm_ref, sr)
            self._call("VM.set_is_a_template", vm_ref, False, vm=vm_ref)
            vm = self._record("VM", vm_ref)

            if memory is not None:
                size = memory * MIB
                self._call("VM.set_memory_limits", vm_ref,
                           min(int(vm["memory_static_min"]), size), size,
                           size, size, vm=vm_ref)
            if cpus is not None:
                self._set_vcpus(vm_ref, vm, cpus, cpus)
            if spec.get("hdd") is not None:
                self._add_disk(vm_ref, vm, spec["hdd"] * GIB, None, sr_ref,
                               vdi_type="system",
                               bootable=not disk_vbds(vm, self._records(
                                   "VBD", vm["VBDs"])))
            if not any(vbd["type"] == "CD" for vbd in
                       self._records("VBD", vm["VBDs"]).values()):
                self._create_device("VBD", vm_ref, lambda userdevice:
                                    _vbd_record(vm_ref, NULL_REF, userdevice,
                                                "CD"),
                                    number=int(CD_USERDEVICE))
            if network_ref is not None:
                self._add_vif(vm_ref, network_ref)
            if spec.get("paravirtualized") is not None:
                self._set_boot_mode(vm_ref, vm, spec["paravirtualized"])

        record = self._guest_record(vm_ref)
        logger.info("created guest %s (%s) on %s", name, record["id"],
                    self.host)
        return record

    def _provision(self, vm_ref, sr):
        """Create the disks the template lists, on ``sr``."""
        other_config = self._call("VM.get_other_config", vm_ref)
        disks = other_config.get("disks")
        if not disks:
            return
        try:
            root = ET.fromstring(disks)
        except ET.ParseError:
            raise errors.HypervisorError(
                "the template's other_config:disks is not valid XML")
        for disk in root.iter("disk"):
            disk.set("sr", sr["uuid"])
        self._call("VM.remove_from_other_config", vm_ref, "disks")
        self._call("VM.add_to_other_config", vm_ref, "disks",
                   ET.tostring(root, encoding="unicode"))
        self._call("VM.provision", vm_ref, vm=vm_ref)

    def _set_vcpus(self, vm_ref, vm, at_startup, maximum):
        """Set VCPUs_at_startup and VCPUs_max in the order XAPI accepts:
        at_startup may never exceed max."""
        if maximum >= int(vm["VCPUs_max"]):
            self._call("VM.set_VCPUs_max", vm_ref, maximum, vm=vm_ref)
            self._call("VM.set_VCPUs_at_startup", vm_ref, at_startup,
                       vm=vm_ref)
        else:
            self._call("VM.set_VCPUs_at_startup", vm_ref, at_startup,
                       vm=vm_ref)
            self._call("VM.set_VCPUs_max", vm_ref, maximum, vm=vm_ref)

    def _set_boot_mode(self, vm_ref, vm, paravirtualized):
        pv_args, policy, params = _boot_settings(paravirtualized)
        self._call("VM.set_PV_args", vm_ref, pv_args)
        if params is not None:
            self._call("VM.set_HVM_boot_params", vm_ref, params)
        self._call("VM.set_HVM_boot_policy", vm_ref, policy)

    def _restore_boot_mode(self, vm_ref, vm):
        self._call("VM.set_PV_args", vm_ref, vm["PV_args"])
        self._call("VM.set_HVM_boot_params", vm_ref, vm["HVM_boot_params"])
        self._call("VM.set_HVM_boot_policy", vm_ref, vm["HVM_boot_policy"])

    # -- changes --------------------------------------------------------------

    def update_guest(self, guest_id, changes):
        with self._name_lock(changes.get("name")):
            return self._update_guest(guest_id, changes)

    def _update_guest(self, guest_id, changes):
        unknown = set(changes) - set(UPDATE_KEYS)
        if unknown:
            raise self.not_implemented(
                "change %s of a guest" % ", ".join(sorted(unknown)))
        vm_ref, vm = self._guest(guest_id)
        steps = self._plan_update(vm_ref, vm, guest_id, changes)

        with Rollback("updating guest %s" % guest_id) as rollback:
            for key in UPDATE_KEYS:
                if key in steps:
                    steps[key](rollback)
        return self._guest_record(vm_ref)

    def _plan_update(self, vm_ref, vm, guest_id, changes):
        """Check every change against the guest, then return {key: step};
        each step applies its change and registers its undo."""
        state = state_of(vm)
        halted = vm["power_state"] == "Halted"
        steps = {}

        def require(condition, change):
            if not condition:
                raise errors.InvalidState("cannot change %s of guest %s "
                                          "while it is %s" % (change, guest_id,
                                                              state))

        if "name" in changes and changes["name"] != vm["name_label"]:
            validate_name("guest", changes["name"])
            self._check_guest_name_free(changes["name"], own_ref=vm_ref)
            steps["name"] = self._setter(vm_ref, "name_label",
                                         changes["name"], vm["name_label"])

        if "ha_enabled" in changes:
            priority = "best-effort" if changes["ha_enabled"] else ""
            steps["ha_enabled"] = self._setter(
                vm_ref, "ha_restart_priority", priority,
                vm["ha_restart_priority"])

        if "vcpu_settings" in changes:
            params = dict(vm["VCPUs_params"])
            params.update({str(key): str(value) for key, value
                           in dict(changes["vcpu_settings"]).items()})
            steps["vcpu_settings"] = self._setter(
                vm_ref, "VCPUs_params", params, vm["VCPUs_params"])

        if "paravirtualized" in changes:
            value = changes["paravirtualized"]

            def set_boot_mode(rollback):
                self._set_boot_mode(vm_ref, vm, value)
                rollback.add("restore the boot mode",
                             self._restore_boot_mode, vm_ref, vm)
            steps["paravirtualized"] = set_boot_mode

        if "memory" in changes:
            require(halted, "the memory limits")
            steps["memory"] = self._memory_step(vm_ref, vm, changes["memory"])

        if "cpus" in changes:
            require(halted, "the number of VCPUs")
            steps["cpus"] = self._vcpus_step(vm_ref, vm, changes["cpus"])

        if "memory_target_live" in changes:
            require(vm["power_state"] in ("Running", "Halted"),
                    "the memory target")
            steps["memory_target_live"] = self._memory_target_step(
                vm_ref, vm, changes["memory_target_live"])

        if "vcpus_number_live" in changes:
            require(vm["power_state"] == "Running",
                    "the number of live VCPUs")
            count = changes["vcpus_number_live"]
            if not 1 <= count <= int(vm["VCPUs_max"]):
                raise errors.InvalidArguments(
                    "invalid vcpus_number_live %r; expected 1 to VCPUs_max "
                    "(%s)" % (count, vm["VCPUs_max"]))
            steps["vcpus_number_live"] = lambda rollback: self._call(
                "VM.set_VCPUs_number_live", vm_ref, count, vm=vm_ref)

        if "template" in changes and \
                bool(changes["template"]) != vm["is_a_template"]:
            require(halted, "the template flag")
            steps["template"] = self._setter(
                vm_ref, "is_a_template", bool(changes["template"]),
                vm["is_a_template"])

        if "hdd" in changes:
            steps["hdd"] = self._hdd_step(vm, guest_id, changes["hdd"])
        return steps

    def _setter(self, vm_ref, field, value, old_value):
        """Return a step that calls VM.set_<field> and undoes it."""
        method = "VM.set_%s" % field

        def step(rollback):
            self._call(method, vm_ref, value, vm=vm_ref)
            rollback.add("restore %s" % field, self._call, method, vm_ref,
                         old_value)
        return step

    def _memory_step(self, vm_ref, vm, memory):
        old = [int(vm[field]) for field in (
            "memory_static_min", "memory_static_max",
            "memory_dynamic_min", "memory_dynamic_max")]
        if isinstance(memory, dict):
            static_min = memory.get("memory_static_min",
                                    old[0] // MIB) * MIB
            static_max = memory.get("memory_static_max",
                                    old[1] // MIB) * MIB
            target = memory.get("memory_target", old[3] // MIB) * MIB
        else:
            static_max = target = memory * MIB
            static_min = min(old[0], static_max)
        if not static_min <= target <= static_max:
            raise errors.InvalidArguments(
                "invalid memory limits: expected memory_static_min (%d MiB) "
                "<= memory_target (%d MiB) <= memory_static_max (%d MiB)"
                % (static_min // MIB, target // MIB, static_max // MIB))

        def step(rollback):
            self._call("VM.set_memory_limits", vm_ref, static_min,
                       static_max, target, target, vm=vm_ref)
            rollback.add("restore the memory limits", self._call,
                         "VM.set_memory_limits", vm_ref, *old)
        return step

    def _vcpus_step(self, vm_ref, vm, cpus):
        if isinstance(cpus, dict):
            at_startup = cpus.get("vcpus_at_startup",
                                  int(vm["VCPUs_at_startup"]))
            maximum = cpus.get("vcpus_max", int(vm["VCPUs_max"]))
        else:
            at_startup = maximum = cpus
        if not 1 <= at_startup <= maximum:
            raise errors.InvalidArguments(
                "invalid VCPUs: expected 1 <= vcpus_at_startup (%d) <= "
                "vcpus_max (%d)" % (at_startup, maximum))
        old = (int(vm["VCPUs_at_startup"]), int(vm["VCPUs_max"]))

        def step(rollback):
            self._set_vcpus(vm_ref, vm, at_startup, maximum)
            changed = dict(vm, VCPUs_max=str(maximum))
            rollback.add("restore the VCPUs", self._set_vcpus, vm_ref,
                         changed, *old)
        return step

    def _memory_target_step(self, vm_ref, vm, target_mib):
        target = target_mib * MIB
        static_min = int(vm["memory_static_min"])
        static_max = int(vm["memory_static_max"])
        if not static_min <= target <= static_max:
            raise errors.InvalidArguments(
                "invalid memory_target_live %d MiB; expected %d to %d MiB, "
                "the guest's static memory limits"
                % (target_mib, static_min // MIB, static_max // MIB))
        old = (int(vm["memory_dynamic_min"]), int(vm["memory_dynamic_max"]))

        def step(rollback):
            self._call("VM.set_memory_dynamic_range", vm_ref, target,
                       target, vm=vm_ref)
            rollback.add("restore the dynamic memory range", self._call,
                         "VM.set_memory_dynamic_range", vm_ref, *old)
        return step

    def _hdd_step(self, vm, guest_id, total_gib):
        disks = self._disks(vm)
        if not disks:
            raise errors.InvalidArguments(
                "guest %s has no disk to grow; add one instead" % guest_id)
        current = sum(int(vdi["virtual_size"]) for _r, _v, _d, vdi in disks)
        requested = total_gib * GIB
        if requested < current // GIB * GIB:
            raise errors.InvalidArguments(
                "invalid hdd %d GiB: smaller than the guest's disks "
                "(%d GiB); disks only grow" % (total_gib, current // GIB))
        _vbd_ref, vbd, vdi_ref, vdi = disks[-1]
        new_size = int(vdi["virtual_size"]) + requested - current
        if vbd["currently_attached"]:
            raise errors.InvalidState(
                "cannot grow the disks of guest %s while it is %s; stop it "
                "first" % (guest_id, state_of(vm)))

        def step(rollback):
            if new_size > int(vdi["virtual_size"]):
                self._call("VDI.resize", vdi_ref, new_size)
        return step

    # -- clone and delete -----------------------------------------------------

    def clone_guest(self, guest_id, name):
        with self._name_lock(name):
            return self._clone_guest(guest_id, name)

    def _clone_guest(self, guest_id, name):
        vm_ref, vm = self._guest(guest_id)
        validate_name("guest", name)
        if vm["power_state"] != "Halted":
            raise errors.InvalidState("cannot clone guest %s: it is %s; "
                                      "stop it first"
                                      % (guest_id, state_of(vm)))
        self._check_guest_name_free(name)
        clone_ref = self._call("VM.clone", vm_ref, name, vm=vm_ref)
        record = self._guest_record(clone_ref)
        logger.info("cloned guest %s into %s (%s) on %s", vm["uuid"], name,
                    record["id"], self.host)
        return record

    def delete_guest(self, guest_id):
        vm_ref, vm = self._guest(guest_id)
        snapshots = self._records("VM", vm["snapshots"])
        self._check_deletable(guest_id, vm, snapshots)

        if vm["power_state"] != "Halted":
            try:
                self._call("VM.hard_shutdown", vm_ref, vm=vm_ref)
            except errors.InvalidState:
                # Another request may have shut the guest down or deleted it
                # since it was read: 404 when it is gone, go on if halted.
                vm_ref, vm = self._guest(guest_id)
                if vm["power_state"] != "Halted":
                    raise
        # The guest goes before its snapshots, so a VM.destroy that fails
        # after all leaves the snapshots and every disk in place.
        count = self._destroy_vm_with_disks(vm_ref)
        for snapshot_ref, snapshot in snapshots.items():
            count += self._destroy_vm_with_disks(snapshot_ref, snapshot)
        logger.info("deleted guest %s (%s) with %d snapshots and %d disks "
                    "on %s", vm["name_label"], vm["uuid"], len(snapshots),
                    count, self.host)

    def _check_deletable(self, guest_id, vm, snapshots):
        """Raise InvalidState if XAPI blocks an operation that deleting the
        guest needs, or an operation in progress (an export) conflicts with
        it, before anything changes.

        The guest's and its snapshots' ``blocked_operations`` protect them
        against hard_shutdown (of a guest that is not halted) and destroy.
        """
        needed = [(vm, "hard_shutdown")] if vm["power_state"] != "Halted" \
            else []
        needed.append((vm, "destroy"))
        needed += [(snapshot, "destroy") for snapshot in snapshots.values()]
        for record, operation in needed:
            action = "delete guest %s" % guest_id if record is vm else \
                "delete snapshot %s of guest %s" % (record["uuid"], guest_id)
            check_no_operation_in_progress(record, operation, action)
            reason = record["blocked_operations"].get(operation)
            if reason is None:
                continue
            owner = "guest %s" % guest_id if record is vm else \
                "its snapshot %s" % record["uuid"]
            raise errors.InvalidState(
                "cannot delete guest %s while it is %s: XAPI blocks %s of %s "
                "(blocked_operations reason %r); remove that entry first"
                % (guest_id, state_of(vm), operation, owner, reason),
                code="OPERATION_BLOCKED", params=[record["uuid"], reason])

    def _destroy_vm_with_disks(self, vm_ref, vm=None):
        """Destroy a VM or snapshot and the VDIs of its disks; return the
        number of VDIs destroyed.

        VM.destroy removes VBDs and VIFs but leaves VDIs, so they are read
        first and destroyed after, except a VDI that another VM uses too.
        CD images are never touched.
        """
        if vm is None:
            vm = self._record("VM", vm_ref)
        vdis = []
        for _vbd_ref, _vbd, vdi_ref, vdi in self._disks(vm):
            others = [vbd for vbd in vdi["VBDs"] if vbd not in vm["VBDs"]]
            if not others:
                vdis.append(vdi_ref)
        self._call("VM.destroy", vm_ref, vm=vm_ref)
        for vdi_ref in vdis:
            self._call("VDI.destroy", vdi_ref)
        return len(vdis)
