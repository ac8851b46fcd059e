"""API records built from XAPI records, and the conversions they need.

Every function here is pure: it takes XAPI records (dicts as XAPI sends
them, int64 values as strings) and returns an API record.
"""

import datetime

from simplestack.adapters.xen.constants import (
    BITS_PER_KBPS, DEFAULT_TEMPLATE_KEY, GIB, MIB, NULL_REF, STATE_MAP)

#: XAPI's timestamp form, with and without the trailing Z.
XAPI_TIME_FORMATS = ("%Y%m%dT%H:%M:%SZ", "%Y%m%dT%H:%M:%S")


def iso8601(value):
    """Return an XML-RPC DateTime (or its text) as ISO 8601 UTC text.

    XAPI's zero time, 1970-01-01, means "never" and becomes None.
    """
    text = str(getattr(value, "value", value) or "")
    for time_format in XAPI_TIME_FORMATS:
        try:
            moment = datetime.datetime.strptime(text, time_format)
        except ValueError:
            continue
        if moment.year <= 1970:
            return None
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return None


def state_of(record):
    return STATE_MAP.get(record.get("power_state"), "UNKNOWN")


def is_default_template(vm):
    """Tell whether a VM record is a template shipped with XAPI.

    XAPI marks those with other_config:default_template=true and keeps
    the key after VM.set_is_a_template(false).
    """
    return bool(vm.get("is_default_template")) or \
        vm["other_config"].get(DEFAULT_TEMPLATE_KEY) == "true"


def is_guest(vm):
    """Tell whether a VM record is a guest: not a template, a snapshot,
    a host's control domain or a template shipped with XAPI."""
    return not (vm["is_a_template"] or vm["is_a_snapshot"]
                or vm["is_control_domain"] or is_default_template(vm))


def is_guest_or_user_template(vm):
    """Tell whether a VM record can be reached as a guest by its UUID: a
    guest, or a template that a user made (PUT ``template`` turns guests
    into templates and back)."""
    return not (vm["is_a_snapshot"] or vm["is_control_domain"]
                or is_default_template(vm))


def disk_vbds(vm, vbds):
    """Return the (ref, record) of the VM's disk VBDs that hold a VDI,
    ordered by device number. CD drives are left out."""
    found = []
    for ref in vm["VBDs"]:
        vbd = vbds.get(ref)
        if (vbd is not None and vbd["type"] == "Disk" and not vbd["empty"]
                and vbd["userdevice"].isdigit()):
            found.append((ref, vbd))
    return sorted(found, key=lambda item: int(item[1]["userdevice"]))


def names_missing_record(vm, vbds, vdis, guest_metrics, hosts):
    """Tell whether a VM record names a VBD, a disk's VDI, a guest metrics
    or a host record that the maps from references to records lack."""
    if any(ref not in vbds for ref in vm["VBDs"]):
        return True
    if any(vbd["VDI"] not in vdis for _ref, vbd in disk_vbds(vm, vbds)):
        return True
    for ref, records in ((vm["guest_metrics"], guest_metrics),
                         (vm["resident_on"], hosts)):
        if ref != NULL_REF and ref not in records:
            return True
    return False


def disk_record(vbd, vdi):
    return {
        "id": str(int(vbd["userdevice"])),
        "name": vdi["name_label"],
        "number": int(vbd["userdevice"]),
        "size": int(vdi["virtual_size"]) // GIB,
        "extra_info": vdi["uuid"],
    }


#: The fields of each class that list_guests reads: those that guest_record,
#: is_guest and disk_vbds read, and ``uuid``, which error messages show.
GUEST_LIST_FIELDS = {
    "VM": ("uuid", "name_label", "VCPUs_at_startup", "memory_static_max",
           "HVM_boot_policy", "power_state", "guest_metrics", "resident_on",
           "VBDs", "is_a_template", "is_a_snapshot", "is_control_domain",
           "is_default_template", "other_config"),
    "VBD": ("uuid", "VDI", "type", "empty", "userdevice"),
    "VDI": ("uuid", "virtual_size"),
    "VM_guest_metrics": ("uuid", "PV_drivers_up_to_date", "networks"),
    "host": ("uuid", "name_label"),
}


def guest_record(vm, vbds, vdis, guest_metrics, hosts):
    """Build a guest record.

    ``vbds``, ``vdis`` and ``hosts`` map references to records and need
    hold only this VM's objects; ``guest_metrics`` is the VM's
    VM_guest_metrics record, or None.
    """
    disk_bytes = 0
    for _ref, vbd in disk_vbds(vm, vbds):
        vdi = vdis.get(vbd["VDI"])
        if vdi is not None:
            disk_bytes += int(vdi["virtual_size"])

    tools_up_to_date = None
    ip = None
    if guest_metrics is not None:
        tools_up_to_date = bool(guest_metrics["PV_drivers_up_to_date"])
        ip = guest_metrics["networks"].get("0/ip") or None

    host = hosts.get(vm["resident_on"]) if vm["resident_on"] != NULL_REF \
        else None
    return {
        "id": vm["uuid"].lower(),
        "name": vm["name_label"],
        "cpus": int(vm["VCPUs_at_startup"]),
        "memory": int(vm["memory_static_max"]) // MIB,
        "hdd": disk_bytes // GIB,
        # A VM boots paravirtualized exactly when it has no HVM boot
        # policy; the adapter changes that field to switch modes.
        "paravirtualized": vm["HVM_boot_policy"] == "",
        "tools_up_to_date": tools_up_to_date,
        "ip": ip,
        "state": state_of(vm),
        "host": host["name_label"] if host is not None else None,
    }


def rate_limit_of(vif):
    """Return a VIF's rate limit in bits per second, or None."""
    if vif["qos_algorithm_type"] != "ratelimit":
        return None
    kbps = vif["qos_algorithm_params"].get("kbps", "")
    if not kbps.isdigit():
        return None
    return int(kbps) * BITS_PER_KBPS


def nic_record(vif, network):
    mac = vif["MAC"].lower()
    return {
        "id": mac,
        "number": int(vif["device"]),
        "mac": mac,
        "network": network["name_label"] if network is not None else None,
        "locking_mode": vif["locking_mode"],
        "ipv4_allowed": list(vif["ipv4_allowed"]),
        "ipv6_allowed": list(vif["ipv6_allowed"]),
        "rate_limit": rate_limit_of(vif),
    }


def vlan_of(network, pifs):
    """Return the VLAN tag of a network's PIFs, or None for untagged."""
    for ref in network["PIFs"]:
        pif = pifs.get(ref)
        if pif is not None and int(pif["VLAN"]) >= 0:
            return int(pif["VLAN"])
    return None


def network_record(network, pifs):
    return {
        "id": network["uuid"].lower(),
        "name_label": network["name_label"],
        "name_description": network["name_description"],
        "bridge": network["bridge"],
        "vlan": vlan_of(network, pifs),
        "other_config": dict(network["other_config"]),
    }


def storage_record(sr):
    return {
        "id": sr["uuid"].lower(),
        "name": sr["name_label"],
        "type": sr["type"],
        "used_space": int(sr["physical_utilisation"]) // GIB,
        "allocated_space": int(sr["virtual_allocation"]) // GIB,
        "size": int(sr["physical_size"]) // GIB,
    }


def host_record(host):
    return {
        "id": host["uuid"].lower(),
        "name": host["name_label"],
        "address": host["address"],
    }


def snapshot_record(snapshot):
    return {
        "id": snapshot["uuid"].lower(),
        "name": snapshot["name_label"],
        # The state the guest returns to on revert: Halted for a disk
        # snapshot, Suspended for a checkpoint with memory.
        "state": state_of(snapshot),
        # XAPI keeps a snapshot as a VM with its own disks, not in a file.
        "path": None,
        "created": iso8601(snapshot["snapshot_time"]),
    }


def software_info(host):
    """Return the master's software_version map with ``version`` set."""
    info = dict(host["software_version"])
    info["version"] = (info.get("product_version")
                       or info.get("platform_version")
                       or info.get("xapi") or "")
    return info
