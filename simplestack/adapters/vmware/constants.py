"""Units, vSphere constants and the state map of the VMware adapter."""

import uuid

KIB = 1024
MIB = 1024 ** 2
GIB = 1024 ** 3

#: vSphere API version the adapter speaks: vSphere 7.0, which govmomi's
#: simulator and every supported vCenter and ESXi release accept.
API_VERSION = "vim.version.v7_0"

#: VirtualMachine.runtime.powerState to API state.
STATE_MAP = {
    "poweredOn": "STARTED",    # running, whatever the guest OS does
    "poweredOff": "STOPPED",
    "suspended": "PAUSED",     # memory saved to disk; power on resumes it
}

#: vSphere requires memory sizes in multiples of 4 MiB.
MEMORY_GRANULE_MIB = 4

#: Namespace of the UUIDs that stand for objects without one of their own
#: (hosts, datastores, networks, snapshots): uuid5 of the server's
#: instance UUID and the object's managed object id, stable for the
#: object's life.
ID_NAMESPACE = uuid.UUID("8c6c1f3e-5f0e-4d8b-9a43-0b7d2b6f5a10")

#: guest.toolsVersionStatus2 to tools_up_to_date. Missing or
#: "guestToolsNotInstalled" maps to None.
TOOLS_STATUS = {
    "guestToolsCurrent": True,
    # open-vm-tools updated by the guest's own package manager.
    "guestToolsUnmanaged": True,
    "guestToolsNeedUpgrade": False,
    "guestToolsSupportedOld": False,
    "guestToolsSupportedNew": True,
    "guestToolsTooOld": False,
    "guestToolsTooNew": False,
    "guestToolsBlacklisted": False,
}

#: Custom attribute names that hold guest tags start with this prefix.
TAG_FIELD_PREFIX = "simplestack.tag:"


def state_of(power_state):
    return STATE_MAP.get(power_state, "UNKNOWN")


def derived_id(instance_uuid, moref_id):
    """Return the API id of an object that has no UUID of its own."""
    return str(uuid.uuid5(ID_NAMESPACE, "%s/%s" % (instance_uuid, moref_id)))
