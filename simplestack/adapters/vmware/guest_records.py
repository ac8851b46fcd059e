"""Guest lookups, ``list_guests`` and ``get_guest``.

Templates are VMs in vSphere; they are not guests here, and are reached
only through the ``template`` key of a guest creation.
"""

from pyVmomi import vim

from simplestack import errors
from simplestack.adapters.guest_locks import name_lock
from simplestack.adapters.vmware.constants import (
    GIB, TOOLS_STATUS, state_of)
from simplestack.adapters.vmware.inventory import is_uuid

#: The VirtualMachine properties of a guest record.
GUEST_PATHS = (
    "name",
    "config.uuid",
    "config.template",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "runtime.powerState",
    "runtime.host",
    "guest.toolsVersionStatus2",
    "guest.ipAddress",
)


def disk_bytes(devices):
    return sum(disk_capacity(device) for device in devices
               if isinstance(device, vim.vm.device.VirtualDisk))


def disk_capacity(disk):
    """Return the disk's size in bytes; capacityInBytes is unset on
    servers older than vSphere 5.5."""
    return disk.capacityInBytes or (disk.capacityInKB or 0) * 1024


def guest_record(found, host_names):
    """Return the API record of a VirtualMachine read with GUEST_PATHS;
    ``host_names`` maps HostSystem ids to names."""
    devices = found.get("config.hardware.device") or []
    state = state_of(found.get("runtime.powerState"))
    host = None
    host_ref = found.get("runtime.host")
    # A stopped VM stays registered on a host, but runs on none.
    if host_ref is not None and state != "STOPPED":
        host = host_names.get(host_ref._moId)
    return {
        "id": (found.get("config.uuid") or "").lower(),
        "name": found.get("name"),
        "cpus": found.get("config.hardware.numCPU") or 0,
        "memory": found.get("config.hardware.memoryMB") or 0,
        "hdd": disk_bytes(devices) // GIB,
        # vSphere has no paravirtualized guests in Xen's sense.
        "paravirtualized": False,
        "tools_up_to_date": TOOLS_STATUS.get(
            found.get("guest.toolsVersionStatus2")),
        "ip": found.get("guest.ipAddress") or None,
        "state": state,
        "host": host,
    }


class GuestRecordsMixin:
    """Methods of VmwareAdapter that find guests and read their records."""

    def list_guests(self):
        # One container view and one RetrievePropertiesEx for every VM and
        # host, whatever the number of guests (plus one call per further
        # page where the server pages the result).
        found = self._retrieve({vim.VirtualMachine: GUEST_PATHS,
                                vim.HostSystem: ("name",)})
        host_names = {item.ref._moId: item.get("name")
                      for item in found[vim.HostSystem]}
        records = [guest_record(item, host_names)
                   for item in found[vim.VirtualMachine]
                   if not item.get("config.template") and
                   item.get("config.uuid")]
        return sorted(records, key=lambda record: record["id"])

    def get_guest(self, guest_id):
        return self._guest_record(self._guest(guest_id))

    def _guest_record(self, found):
        host_names = {}
        host_ref = found.get("runtime.host")
        if host_ref is not None and \
                found.get("runtime.powerState") != "poweredOff":
            host_names[host_ref._moId] = self._properties(
                host_ref, ["name"]).get("name")
        return guest_record(found, host_names)

    def _reread(self, ref):
        """Return the guest record of ``ref`` as it is now."""
        return self._guest_record(self._properties(ref, GUEST_PATHS))

    def _guest(self, guest_id, paths=GUEST_PATHS, templates=False):
        """Return the Found of the VM that ``guest_id`` names (its BIOS
        UUID in any case, or its unique name) with ``paths``."""
        kind = "template" if templates else "guest"
        if not isinstance(guest_id, str) or not guest_id:
            raise errors.EntityNotFound("%s %r not found" % (kind, guest_id))
        paths = tuple(paths) + ("config.template",)
        if is_uuid(guest_id):
            ref = self.content.searchIndex.FindByUuid(
                None, guest_id.lower(), True, False)
            if ref is None:
                raise errors.EntityNotFound("%s %s not found"
                                            % (kind, guest_id))
            found = self._properties(ref, paths)
        else:
            named = [item for item in self._retrieve(
                {vim.VirtualMachine: ("name", "config.template")}
            )[vim.VirtualMachine] if item.get("name") == guest_id and
                bool(item.get("config.template")) == templates]
            if not named:
                raise errors.EntityNotFound("%s %s not found"
                                            % (kind, guest_id))
            if len(named) > 1:
                raise errors.Conflict(
                    "%d %ss are named %r; use the id instead" % (
                        len(named), kind, guest_id))
            found = self._properties(named[0].ref, paths)
        if bool(found.get("config.template")) != templates:
            raise errors.EntityNotFound("%s %s not found" % (kind, guest_id))
        return found

    def _names_in_use(self):
        """Return the names of every VM and template."""
        return {item.get("name") for item in self._retrieve(
            {vim.VirtualMachine: ("name",)})[vim.VirtualMachine]}

    def _name_lock(self, name):
        """Return a context manager that holds the lock of guest name
        ``name`` on this host in the service processes of the machine, or
        does nothing for no name. vSphere keeps names unique per folder
        only, and the simulator not at all, so a request keeps the lock
        from _check_free_name until the guest has the name."""
        return name_lock(self.type_name, self.host, name)

    def _check_free_name(self, name):
        if name in self._names_in_use():
            raise errors.Conflict("a VM called %s exists already; vSphere "
                                  "guests here need unique names" % name)
