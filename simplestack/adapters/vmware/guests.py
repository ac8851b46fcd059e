"""Creating, changing, cloning and deleting guests."""

import logging

from pyVmomi import vim

from simplestack import errors
from simplestack.adapters.vmware.constants import GIB, MEMORY_GRANULE_MIB
from simplestack.adapters.vmware.devices import (
    Device, devices_of, disks_of, grow_disk_spec, new_cdrom_spec,
    new_disk_spec, new_nic_spec, new_scsi_controller_spec, nic_backing)
from simplestack.adapters.vmware.disks import DISK_PATHS, positive_gib
from simplestack.adapters.vmware.guest_records import (
    GUEST_PATHS, disk_bytes, disk_capacity)
from simplestack.adapters.vmware.inventory import validate_name

logger = logging.getLogger(__name__)

CREATE_KEYS = {"name", "cpus", "memory", "hdd", "template", "storage_id",
               "network", "paravirtualized"}
UPDATE_KEYS = {"name", "memory", "cpus", "hdd", "paravirtualized"}

DEFAULT_MEMORY_MIB = 512

#: Key of the first of the two IDE controllers that vSphere gives every VM.
FIRST_IDE_CONTROLLER_KEY = 200

#: Properties of a compute resource (host or cluster) that places a guest.
COMPUTE_PATHS = ("name", "resourcePool", "datastore")


def check_memory(memory):
    if isinstance(memory, dict):
        raise errors.FeatureNotImplemented(
            "VMware takes memory as a number of MiB, not as Xen's "
            "memory_target/memory_static_* settings")
    if isinstance(memory, bool) or not isinstance(memory, int) or memory < 1:
        raise errors.InvalidArguments(
            "invalid memory %r; expected a positive number of MiB"
            % (memory,))
    if memory % MEMORY_GRANULE_MIB:
        raise errors.InvalidArguments(
            "invalid memory %d MiB; vSphere needs a multiple of %d MiB"
            % (memory, MEMORY_GRANULE_MIB))
    return memory


def check_cpus(cpus):
    if isinstance(cpus, dict):
        raise errors.FeatureNotImplemented(
            "VMware takes cpus as a number, not as Xen's vcpus_* settings")
    if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
        raise errors.InvalidArguments(
            "invalid cpus %r; expected a positive number" % (cpus,))
    return cpus


def check_paravirtualized(value):
    if value not in (None, False):
        raise errors.FeatureNotImplemented(
            "VMware has no paravirtualized guests")


class GuestsMixin:
    """Methods of VmwareAdapter that create, change and delete guests."""

    # -- placement --------------------------------------------------------------

    def _datacenter(self):
        """Return the Found of the datacenter of new guests."""
        datacenters = self._retrieve({vim.Datacenter: (
            "name", "vmFolder")})[vim.Datacenter]
        wanted = self.config["datacenter"]
        if wanted:
            datacenters = [item for item in datacenters
                           if item.get("name") == wanted]
        if not datacenters:
            raise errors.EntityNotFound(
                "datacenter %s not found (the datacenter setting)"
                % (wanted or "of any name"))
        return datacenters[0]

    def _placement(self, datacenter, storage_id):
        """Return (datastore Found, resource pool) for a new guest."""
        if storage_id is None and self.config["datastore"]:
            storage_id = self.config["datastore"]
        found = self._retrieve({
            vim.Datastore: ("name", "summary.freeSpace"),
            vim.ComputeResource: COMPUTE_PATHS,
        }, root=datacenter.ref)
        if storage_id is not None:
            datastore = self._pick("storage", storage_id,
                                   found[vim.Datastore])
        elif found[vim.Datastore]:
            datastore = max(found[vim.Datastore],
                            key=lambda item: item.get("summary.freeSpace")
                            or 0)
        else:
            raise errors.EntityNotFound("no datastore in datacenter %s"
                                        % datacenter.get("name"))
        for compute in found[vim.ComputeResource]:
            if any(ref._moId == datastore.ref._moId
                   for ref in compute.get("datastore") or []):
                return datastore, compute.get("resourcePool")
        raise errors.EntityNotFound(
            "no host or cluster of datacenter %s reaches datastore %s"
            % (datacenter.get("name"), datastore.get("name")))

    # -- create -----------------------------------------------------------------

    def create_guest(self, spec):
        with self._name_lock(spec.get("name")):
            return self._create_guest(spec)

    def _create_guest(self, spec):
        unknown = set(spec) - CREATE_KEYS
        if unknown:
            raise errors.FeatureNotImplemented(
                "VMware cannot take %s when creating a guest"
                % ", ".join(sorted(unknown)))
        name = spec.get("name")
        validate_name("guest", name)
        check_paravirtualized(spec.get("paravirtualized"))
        memory = check_memory(spec.get("memory", DEFAULT_MEMORY_MIB))
        cpus = check_cpus(spec.get("cpus", 1))
        hdd = spec.get("hdd")
        if hdd is not None:
            positive_gib(hdd, "hdd")

        datacenter = self._datacenter()
        datastore, pool = self._placement(datacenter, spec.get("storage_id"))
        network_name = spec.get("network") or self.config["network"] or None
        network = self._network(network_name) if network_name else None
        template = None
        if spec.get("template") is not None:
            template = self._guest(spec["template"], DISK_PATHS,
                                   templates=True)
            if hdd is not None and hdd * GIB < disk_bytes(
                    devices_of(template)):
                raise errors.InvalidArguments(
                    "hdd %d GiB is smaller than the disks of template %s"
                    % (hdd, spec["template"]))
        self._check_free_name(name)

        if template is not None:
            ref = self._create_from_template(
                template, name, datacenter, datastore, pool, network, spec)
            self._adjust_clone(ref, spec)
        else:
            ref = self._create_from_scratch(
                name, datacenter, datastore, pool, memory, cpus, hdd,
                network)
        return self._reread(ref)

    def _create_from_scratch(self, name, datacenter, datastore, pool,
                             memory, cpus, hdd, network):
        datastore_name = datastore.get("name")
        changes = [new_scsi_controller_spec(),
                   new_cdrom_spec(FIRST_IDE_CONTROLLER_KEY)]
        if hdd is not None:
            changes.append(new_disk_spec(-100, 0, hdd, datastore_name))
        if network is not None:
            changes.append(new_nic_spec(network))
        config = vim.vm.ConfigSpec(
            name=name, guestId=self.config["guest_os"], numCPUs=cpus,
            memoryMB=memory, deviceChange=changes,
            files=vim.vm.FileInfo(vmPathName="[%s]" % datastore_name))
        return self._run("CreateVM_Task", datacenter.get("vmFolder"),
                         config=config, pool=pool)

    def _create_from_template(self, template, name, datacenter, datastore,
                              pool, network, spec):
        config = vim.vm.ConfigSpec()
        if network is not None and spec.get("network"):
            nics = [device for device in devices_of(template)
                    if isinstance(device, Device.VirtualEthernetCard)]
            if nics:
                nics[0].backing = nic_backing(network)
                config.deviceChange = [vim.vm.device.VirtualDeviceSpec(
                    operation="edit", device=nics[0])]
            else:
                config.deviceChange = [new_nic_spec(network)]
        clone_spec = vim.vm.CloneSpec(
            location=vim.vm.RelocateSpec(datastore=datastore.ref, pool=pool),
            powerOn=False, template=False, config=config)
        return self._run("CloneVM_Task", template.ref,
                         folder=datacenter.get("vmFolder"), name=name,
                         spec=clone_spec)

    def _adjust_clone(self, ref, spec):
        """Apply the memory, CPUs and disk size of ``spec`` to a guest
        cloned from a template, with one ReconfigVM_Task. govmomi's
        simulator ignores them in the CloneSpec, so they come after."""
        found = self._properties(ref, tuple(GUEST_PATHS) + DISK_PATHS)
        config = vim.vm.ConfigSpec()
        if "memory" in spec:
            config.memoryMB = spec["memory"]
        if "cpus" in spec:
            config.numCPUs = spec["cpus"]
        grow = None
        if spec.get("hdd") is not None:
            grow = self._hdd_growth(found, spec["hdd"])
        if grow is not None:
            config.deviceChange = [grow_disk_spec(*grow)]
        if config.memoryMB is not None or config.numCPUs is not None or \
                config.deviceChange:
            self._run("ReconfigVM_Task", ref, spec=config)

    # -- update -----------------------------------------------------------------

    def update_guest(self, guest_id, changes):
        with self._name_lock(changes.get("name")):
            return self._update_guest(guest_id, changes)

    def _update_guest(self, guest_id, changes):
        unknown = set(changes) - UPDATE_KEYS
        if unknown:
            raise errors.FeatureNotImplemented(
                "VMware cannot change %s of a guest"
                % ", ".join(sorted(unknown)))
        check_paravirtualized(changes.get("paravirtualized"))
        if changes.get("name") is not None:
            validate_name("guest", changes["name"])
        if changes.get("memory") is not None:
            check_memory(changes["memory"])
        if changes.get("cpus") is not None:
            check_cpus(changes["cpus"])
        if changes.get("hdd") is not None:
            positive_gib(changes["hdd"], "hdd")

        found = self._guest(guest_id, tuple(GUEST_PATHS) + DISK_PATHS)
        config = vim.vm.ConfigSpec()
        if changes.get("memory") is not None and \
                changes["memory"] != found.get("config.hardware.memoryMB"):
            config.memoryMB = changes["memory"]
        if changes.get("cpus") is not None and \
                changes["cpus"] != found.get("config.hardware.numCPU"):
            config.numCPUs = changes["cpus"]
        if (config.memoryMB is not None or config.numCPUs is not None) and \
                found.get("runtime.powerState") != "poweredOff":
            # Hot add is off by default, and the simulator ignores it.
            raise errors.InvalidState(
                "cannot change the memory or CPUs of guest %s while it is "
                "%s; stop it first" % (found.get("name"),
                                       self._state_name(found)))
        new_name = changes.get("name")
        if new_name is not None and new_name != found.get("name"):
            self._check_free_name(new_name)
            config.name = new_name
        grow = None
        if changes.get("hdd") is not None:
            grow = self._hdd_growth(found, changes["hdd"])

        if grow is not None:
            disk, size_bytes = grow
            if found.get("snapshot") is not None:
                raise errors.InvalidState(
                    "cannot grow a disk of guest %s while it has snapshots; "
                    "delete them first" % found.get("name"))
            config.deviceChange = [grow_disk_spec(disk, size_bytes)]
        if config.name is not None or config.memoryMB is not None or \
                config.numCPUs is not None or config.deviceChange:
            self._run("ReconfigVM_Task", found.ref, spec=config)
        return self._reread(found.ref)

    def _hdd_growth(self, found, hdd):
        """Return (last disk, new size in bytes) to reach ``hdd`` GiB in
        total, or None when the total is already ``hdd``."""
        disks = disks_of(devices_of(found))
        total = disk_bytes(devices_of(found))
        if hdd == total // GIB:
            return None
        if hdd * GIB < total:
            raise errors.InvalidArguments(
                "hdd %d GiB is smaller than the guest's disks (%d GiB); "
                "disks can only grow" % (hdd, total // GIB))
        if not disks:
            raise errors.InvalidState("guest %s has no disk to grow"
                                      % found.get("name"))
        _number, last = disks[-1]
        return last, disk_capacity(last) + hdd * GIB - total

    # -- delete and clone --------------------------------------------------------

    def delete_guest(self, guest_id):
        found = self._guest(guest_id, ("name", "runtime.powerState"))
        if found.get("runtime.powerState") != "poweredOff":
            logger.info("powering off guest %s before deleting it",
                        found.get("name"))
            self._run("PowerOffVM_Task", found.ref)
        self._run("Destroy_Task", found.ref)

    def clone_guest(self, guest_id, name):
        with self._name_lock(name):
            return self._clone_guest(guest_id, name)

    def _clone_guest(self, guest_id, name):
        validate_name("guest", name)
        found = self._guest(guest_id, ("name", "runtime.powerState",
                                       "parent", "resourcePool"))
        if found.get("runtime.powerState") != "poweredOff":
            raise errors.InvalidState(
                "cannot clone guest %s while it is %s; stop it first"
                % (found.get("name"), self._state_name(found)))
        self._check_free_name(name)
        folder = found.get("parent") or self._datacenter().get("vmFolder")
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(),
                                powerOn=False, template=False)
        ref = self._run("CloneVM_Task", found.ref, folder=folder, name=name,
                        spec=spec)
        return self._reread(ref)
