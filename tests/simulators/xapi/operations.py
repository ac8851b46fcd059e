"""Object construction and the device, storage and network messages.

The VBD rules and their error parameters follow XAPI's server code
(xapi-project/xen-api, ocaml/xapi/xapi_vbd.ml). The others follow the
behaviour XAPI documents, and a NOTE marks details that are inferred.
"""

import random
import re

from .dispatch import check_ref, handler
from .errors import Failure
from .model import now
from .schema import NULL_REF

MAC_PATTERN = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
# Linux limits interface names to 15 characters.
MAX_BRIDGE_LENGTH = 15
# NOTE: inferred ranges of the device numbers a VBD or VIF may use, not
# checked on a host.
MAX_VBD_DEVICE_HVM = 15
MAX_VBD_DEVICE_PV = 254
MAX_VIF_DEVICE = 6


def create_object(sim, cls, values):
    creator = _CREATORS.get(cls)
    if creator is None:
        return sim.db.create(cls, values)
    return creator(sim, values)


# VM

def create_vm(sim, values):
    from .vm import refresh_allowed_operations, validate_new_vm
    db = sim.db
    validate_new_vm(values)
    values = dict(values)
    # A new VM is halted whatever its record contains, and has fresh metrics.
    values.update(power_state="Halted", resident_on=NULL_REF, domid=-1)
    if values.get("affinity", NULL_REF) != NULL_REF:
        check_ref(db, "host", values["affinity"])
    values["metrics"] = db.create("VM_metrics", {
        "memory_actual": 0, "VCPUs_number": 0, "install_time": now(),
        "start_time": now(), "last_updated": now(),
        "VCPUs_CPU": {}, "VCPUs_params": {}, "VCPUs_flags": {}, "state": [],
    })
    values["guest_metrics"] = NULL_REF
    ref = db.create("VM", values)
    refresh_allowed_operations(sim, ref)
    return ref


# VDI

def create_vdi(sim, values):
    db = sim.db
    sr = values.get("SR", NULL_REF)
    check_ref(db, "SR", sr)
    size = values["virtual_size"]
    if size < 0:
        raise Failure("INVALID_VALUE", "virtual_size", size)
    check_sr_space(sim, sr, size)
    values = dict(values)
    values.setdefault("location", "")
    ref = db.create("VDI", dict(values, managed=True, missing=False,
                                physical_utilisation=0, storage_lock=False,
                                allowed_operations=VDI_OPERATIONS))
    record = db.get("VDI", ref)
    if not record["location"]:
        record["location"] = record["uuid"]
    sim.disks.create(record["uuid"], size)
    update_sr_usage(sim, sr)
    return ref


VDI_OPERATIONS = ["clone", "copy", "resize", "destroy", "snapshot", "update",
                  "forget", "generate_config"]


def check_sr_space(sim, sr, extra):
    record = sim.db.get("SR", sr)
    if record["content_type"] == "iso" or record["type"] in ("iso", "udev"):
        return
    used = sum(sim.db.get("VDI", vdi)["virtual_size"]
               for vdi in sim.db.members("SR", sr, "VDIs"))
    if used + extra > record["physical_size"]:
        # A real LVM or NFS SR reports this as SR_BACKEND_FAILURE_44; the
        # documented SR_FULL is raised by the simulator only for
        # SRs whose other_config has simulator-sr-full-error = documented.
        if record["other_config"].get("simulator-sr-full-error") == "documented":
            raise Failure("SR_FULL", used + extra, record["physical_size"])
        raise Failure("SR_BACKEND_FAILURE_44", "", "There is insufficient space", "")


def update_sr_usage(sim, sr):
    db = sim.db
    if not db.exists("SR", sr):
        return
    vdis = [db.get("VDI", vdi) for vdi in db.members("SR", sr, "VDIs")]
    allocation = sum(v["virtual_size"] for v in vdis)
    db.set("SR", sr, virtual_allocation=allocation,
           physical_utilisation=sum(v["physical_utilisation"] for v in vdis))


def vdi_attached(db, vdi):
    return any(db.get("VBD", vbd)["currently_attached"]
               for vbd in db.members("VDI", vdi, "VBDs"))


def destroy_vdi(sim, vdi):
    """Destroy a VDI and the unattached VBDs that use it, as XAPI does."""
    db = sim.db
    record = db.get("VDI", vdi)
    if vdi_attached(db, vdi):
        raise Failure("VDI_IN_USE", vdi, "destroy")
    sr = record["SR"]
    for vbd in db.members("VDI", vdi, "VBDs"):
        db.destroy("VBD", vbd)
    db.destroy("VDI", vdi)
    sim.disks.remove(record["uuid"])
    update_sr_usage(sim, sr)


@handler("VDI.destroy")
def vdi_destroy(sim, session, vdi):
    destroy_vdi(sim, vdi)


@handler("VDI.resize")
def vdi_resize(sim, session, vdi, size):
    db = sim.db
    record = db.get("VDI", vdi)
    if vdi_attached(db, vdi):
        raise Failure("VDI_IN_USE", vdi, "resize")
    if size < record["virtual_size"]:
        # Shrinking is refused by every SR driver.
        raise Failure("VDI_TOO_SMALL", vdi, record["virtual_size"])
    check_sr_space(sim, record["SR"], size - record["virtual_size"])
    sim.disks.resize(record["uuid"], size)
    db.set("VDI", vdi, virtual_size=size)
    update_sr_usage(sim, record["SR"])


@handler("VDI.resize_online")
def vdi_resize_online(sim, session, vdi, size):
    raise Failure("MESSAGE_REMOVED")


@handler("VDI.set_name_label")
def vdi_set_name_label(sim, session, vdi, value):
    sim.db.get("VDI", vdi)
    sim.db.set("VDI", vdi, name_label=value)


@handler("VDI.set_name_description")
def vdi_set_name_description(sim, session, vdi, value):
    sim.db.get("VDI", vdi)
    sim.db.set("VDI", vdi, name_description=value)


@handler("VDI.set_read_only")
def vdi_set_read_only(sim, session, vdi, value):
    sim.db.get("VDI", vdi)
    sim.db.set("VDI", vdi, read_only=value)


@handler("VDI.set_sharable")
def vdi_set_sharable(sim, session, vdi, value):
    sim.db.get("VDI", vdi)
    sim.db.set("VDI", vdi, sharable=value)


def copy_vdi(sim, vdi, sr=None, snapshot=False, name_label=None):
    """Create a copy of a VDI (clone, copy or snapshot) with its contents."""
    db = sim.db
    source = db.record("VDI", vdi)
    sr = sr or source["SR"]
    check_sr_space(sim, sr, source["virtual_size"])
    values = {name: source[name] for name in (
        "name_label", "name_description", "virtual_size", "type", "sharable",
        "read_only", "other_config", "xenstore_data", "sm_config", "tags")}
    values.update(SR=sr, managed=True, missing=False, storage_lock=False,
                  physical_utilisation=source["physical_utilisation"],
                  allowed_operations=VDI_OPERATIONS)
    if name_label is not None:
        values["name_label"] = name_label
    if snapshot:
        values.update(is_a_snapshot=True, snapshot_of=vdi, snapshot_time=now())
    ref = db.create("VDI", values)
    record = db.get("VDI", ref)
    record["location"] = record["uuid"]
    sim.disks.copy(source["uuid"], record["uuid"], source["virtual_size"])
    update_sr_usage(sim, sr)
    return ref


@handler("VDI.clone")
def vdi_clone(sim, session, vdi, driver_params):
    sim.db.get("VDI", vdi)
    return copy_vdi(sim, vdi)


@handler("VDI.snapshot")
def vdi_snapshot(sim, session, vdi, driver_params):
    sim.db.get("VDI", vdi)
    return copy_vdi(sim, vdi, snapshot=True)


@handler("VDI.copy")
def vdi_copy(sim, session, vdi, sr, base_vdi, into_vdi):
    db = sim.db
    source = db.get("VDI", vdi)
    check_ref(db, "SR", sr)
    if into_vdi == NULL_REF:
        return copy_vdi(sim, vdi, sr=sr)
    target = db.get("VDI", into_vdi)
    if target["read_only"]:
        raise Failure("VDI_READONLY", into_vdi)
    if target["virtual_size"] < source["virtual_size"]:
        raise Failure("VDI_TOO_SMALL", into_vdi, source["virtual_size"])
    sim.disks.copy(source["uuid"], target["uuid"], target["virtual_size"])
    return into_vdi


@handler("SR.scan")
def sr_scan(sim, session, sr):
    sim.db.get("SR", sr)
    update_sr_usage(sim, sr)


# VBD

def _valid_userdevice(text):
    return text == "autodetect" or (text.isdigit() and text == str(int(text)))


def create_vbd(sim, values):
    db = sim.db
    vm = values["VM"]
    check_ref(db, "VM", vm)
    vm_record = db.get("VM", vm)
    empty = values["empty"]
    vdi = values.get("VDI", NULL_REF)
    if not empty:
        check_ref(db, "VDI", vdi)
    if values["type"] == "CD" and values["mode"] != "RO":
        raise Failure("VBD_CDS_MUST_BE_READONLY")
    if values["type"] != "CD" and empty:
        raise Failure("VBD_NOT_REMOVABLE_MEDIA", "in constructor")
    if values["type"] == "CD" and not empty:
        assert_iso(db, vdi)
    if values["mode"] == "RW" and not empty and db.get("VDI", vdi)["read_only"]:
        raise Failure("VDI_READONLY", vdi)

    hvm = bool(vm_record["HVM_boot_policy"])
    highest = MAX_VBD_DEVICE_HVM if hvm else MAX_VBD_DEVICE_PV
    used = {db.get("VBD", vbd)["userdevice"] for vbd in db.members("VM", vm, "VBDs")}
    userdevice = values["userdevice"]
    free = [str(n) for n in range(highest + 1) if str(n) not in used]
    if not _valid_userdevice(userdevice) or \
            (userdevice != "autodetect" and int(userdevice) > highest) or \
            (userdevice == "autodetect" and not free):
        raise Failure("INVALID_DEVICE", userdevice)
    if userdevice == "autodetect":
        userdevice = free[0]
    if userdevice in used:
        raise Failure("DEVICE_ALREADY_EXISTS", userdevice)

    values = dict(values, userdevice=userdevice, device="",
                  VDI=NULL_REF if empty else vdi,
                  currently_attached=False, storage_lock=False,
                  status_code=0, status_detail="", runtime_properties={},
                  metrics=NULL_REF)
    ref = db.create("VBD", values)
    _refresh_vbd_operations(sim, ref)
    return ref


def assert_iso(db, vdi):
    record = db.get("VDI", vdi)
    sr = db.get("SR", record["SR"])
    if sr["content_type"] != "iso" and sr["type"] not in ("iso", "udev"):
        raise Failure("VDI_IS_NOT_ISO", vdi, record["type"])


def _refresh_vbd_operations(sim, vbd):
    db = sim.db
    record = db.get("VBD", vbd)
    running = db.get("VM", record["VM"])["power_state"] == "Running"
    operations = []
    if record["type"] == "CD":
        operations.append("insert" if record["empty"] else "eject")
    if running:
        operations.append("unplug" if record["currently_attached"] else "plug")
    db.get("VBD", vbd)["allowed_operations"] = operations


@handler("VBD.destroy")
def vbd_destroy(sim, session, vbd):
    db = sim.db
    record = db.get("VBD", vbd)
    if record["currently_attached"]:
        raise Failure("OPERATION_NOT_ALLOWED",
                      "VBD '%s' still attached to '%s'" % (record["uuid"],
                                                           db.get("VM", record["VM"])["uuid"]))
    db.destroy("VBD", vbd)


def _vm_of(db, cls, device):
    record = db.get(cls, device)
    return record["VM"], db.get("VM", record["VM"])


@handler("VBD.insert")
def vbd_insert(sim, session, vbd, vdi):
    db = sim.db
    vm, vm_record = _vm_of(db, "VBD", vbd)
    check_ref(db, "VDI", vdi)
    if vm_record["power_state"] == "Suspended":
        raise Failure("VM_BAD_POWER_STATE", vm, "halted, running", "suspended")
    record = db.get("VBD", vbd)
    if record["type"] != "CD":
        raise Failure("VBD_NOT_REMOVABLE_MEDIA", vbd)
    if not record["empty"]:
        raise Failure("VBD_NOT_EMPTY", vbd)
    assert_iso(db, vdi)
    db.set("VBD", vbd, VDI=vdi, empty=False)
    _refresh_vbd_operations(sim, vbd)


@handler("VBD.eject")
def vbd_eject(sim, session, vbd):
    db = sim.db
    vm, vm_record = _vm_of(db, "VBD", vbd)
    record = db.get("VBD", vbd)
    if record["type"] != "CD":
        raise Failure("VBD_NOT_REMOVABLE_MEDIA", vbd)
    if record["empty"]:
        raise Failure("VBD_IS_EMPTY", vbd)
    if vm_record["power_state"] == "Suspended":
        raise Failure("VM_BAD_POWER_STATE", vm, "halted, running", "suspended")
    db.set("VBD", vbd, VDI=NULL_REF, empty=True)
    _refresh_vbd_operations(sim, vbd)


def _assert_running_for_hotplug(db, vm, vm_record):
    if vm_record["power_state"] != "Running":
        raise Failure("VM_BAD_POWER_STATE", vm, "running",
                      vm_record["power_state"].lower())


@handler("VBD.plug")
def vbd_plug(sim, session, vbd):
    db = sim.db
    vm, vm_record = _vm_of(db, "VBD", vbd)
    _assert_running_for_hotplug(db, vm, vm_record)
    if db.get("VBD", vbd)["currently_attached"]:
        raise Failure("DEVICE_ALREADY_ATTACHED", vbd)
    db.set("VBD", vbd, currently_attached=True, device=_vbd_device_name(db, vbd))
    _refresh_vbd_operations(sim, vbd)


def _vbd_unplug(sim, vbd, force):
    db = sim.db
    vm, vm_record = _vm_of(db, "VBD", vbd)
    _assert_running_for_hotplug(db, vm, vm_record)
    record = db.get("VBD", vbd)
    if not record["currently_attached"]:
        raise Failure("DEVICE_ALREADY_DETACHED", vbd)
    if not force and not record["unpluggable"]:
        raise Failure("VBD_NOT_UNPLUGGABLE", vbd)
    db.set("VBD", vbd, currently_attached=False)
    _refresh_vbd_operations(sim, vbd)


@handler("VBD.unplug")
def vbd_unplug(sim, session, vbd):
    _vbd_unplug(sim, vbd, force=False)


@handler("VBD.unplug_force")
def vbd_unplug_force(sim, session, vbd):
    _vbd_unplug(sim, vbd, force=True)


@handler("VBD.set_mode")
def vbd_set_mode(sim, session, vbd, value):
    db = sim.db
    record = db.get("VBD", vbd)
    if record["type"] == "CD" and value != "RO":
        raise Failure("VBD_CDS_MUST_BE_READONLY")
    vm_record = db.get("VM", record["VM"])
    if vm_record["power_state"] != "Halted":
        raise Failure("VM_BAD_POWER_STATE", record["VM"], "halted",
                      vm_record["power_state"].lower())
    db.set("VBD", vbd, mode=value)


@handler("VBD.set_userdevice")
def vbd_set_userdevice(sim, session, vbd, value):
    db = sim.db
    record = db.get("VBD", vbd)
    if not _valid_userdevice(value) or value == "autodetect":
        raise Failure("INVALID_DEVICE", value)
    for other in db.members("VM", record["VM"], "VBDs"):
        if other != vbd and db.get("VBD", other)["userdevice"] == value:
            raise Failure("DEVICE_ALREADY_EXISTS", value)
    db.set("VBD", vbd, userdevice=value)


def _vbd_device_name(db, vbd):
    return "xvd%s" % "abcdefghijklmnopqrstuvwxyz"[int(db.get("VBD", vbd)["userdevice"]) % 26]


# VIF

def random_mac():
    # A locally administered unicast address, as XAPI generates.
    octets = [random.randint(0, 255) for _ in range(5)]
    return "%02x:%02x:%02x:%02x:%02x:%02x" % tuple([0x02 | (octets[0] & 0xfc)] + octets[1:] + [random.randint(0, 255)])


def create_vif(sim, values):
    db = sim.db
    vm = values["VM"]
    check_ref(db, "VM", vm)
    check_ref(db, "network", values["network"])
    device = values["device"]
    if not device.isdigit() or int(device) > MAX_VIF_DEVICE:
        raise Failure("INVALID_DEVICE", device)
    for other in db.members("VM", vm, "VIFs"):
        if db.get("VIF", other)["device"] == device:
            raise Failure("DEVICE_ALREADY_EXISTS", device)
    mac = values["MAC"]
    generated = mac == ""
    if generated:
        mac = random_mac()
    elif not MAC_PATTERN.match(mac):
        raise Failure("MAC_INVALID", mac)
    values = dict(values, MAC=mac.lower(), MAC_autogenerated=generated,
                  currently_attached=False, status_code=0, status_detail="",
                  runtime_properties={}, qos_supported_algorithms=["ratelimit"],
                  metrics=NULL_REF)
    return db.create("VIF", values)


@handler("VIF.destroy")
def vif_destroy(sim, session, vif):
    db = sim.db
    vm, vm_record = _vm_of(db, "VIF", vif)
    record = db.get("VIF", vif)
    if record["currently_attached"] and vm_record["power_state"] == "Running":
        raise Failure("OPERATION_NOT_ALLOWED",
                      "VIF '%s' still attached to '%s'" % (record["uuid"], vm_record["uuid"]))
    db.destroy("VIF", vif)


@handler("VIF.plug")
def vif_plug(sim, session, vif):
    db = sim.db
    vm, vm_record = _vm_of(db, "VIF", vif)
    _assert_running_for_hotplug(db, vm, vm_record)
    if db.get("VIF", vif)["currently_attached"]:
        raise Failure("DEVICE_ALREADY_ATTACHED", vif)
    db.set("VIF", vif, currently_attached=True)


@handler("VIF.unplug")
def vif_unplug(sim, session, vif):
    db = sim.db
    vm, vm_record = _vm_of(db, "VIF", vif)
    _assert_running_for_hotplug(db, vm, vm_record)
    if not db.get("VIF", vif)["currently_attached"]:
        raise Failure("DEVICE_ALREADY_DETACHED", vif)
    db.set("VIF", vif, currently_attached=False)


@handler("VIF.unplug_force")
def vif_unplug_force(sim, session, vif):
    vif_unplug(sim, session, vif)


@handler("VIF.move")
def vif_move(sim, session, vif, network):
    db = sim.db
    db.get("VIF", vif)
    check_ref(db, "network", network)
    db.set("VIF", vif, network=network)


@handler("VIF.set_locking_mode")
def vif_set_locking_mode(sim, session, vif, value):
    sim.db.get("VIF", vif)
    sim.db.set("VIF", vif, locking_mode=value)


def _check_addresses(addresses, version):
    import ipaddress
    for address in addresses:
        try:
            parsed = ipaddress.ip_interface(address)
        except ValueError:
            raise Failure("INVALID_IP_ADDRESS_SPECIFIED", address) from None
        if parsed.version != version:
            raise Failure("INVALID_IP_ADDRESS_SPECIFIED", address)


@handler("VIF.set_ipv4_allowed")
def vif_set_ipv4_allowed(sim, session, vif, value):
    sim.db.get("VIF", vif)
    _check_addresses(value, 4)
    sim.db.set("VIF", vif, ipv4_allowed=list(dict.fromkeys(value)))


@handler("VIF.set_ipv6_allowed")
def vif_set_ipv6_allowed(sim, session, vif, value):
    sim.db.get("VIF", vif)
    _check_addresses(value, 6)
    sim.db.set("VIF", vif, ipv6_allowed=list(dict.fromkeys(value)))


@handler("VIF.add_ipv4_allowed")
def vif_add_ipv4_allowed(sim, session, vif, value):
    current = sim.db.get("VIF", vif)["ipv4_allowed"]
    _check_addresses([value], 4)
    if value not in current:
        sim.db.set("VIF", vif, ipv4_allowed=current + [value])


@handler("VIF.remove_ipv4_allowed")
def vif_remove_ipv4_allowed(sim, session, vif, value):
    current = sim.db.get("VIF", vif)["ipv4_allowed"]
    sim.db.set("VIF", vif, ipv4_allowed=[a for a in current if a != value])


# Networks

def create_network(sim, values):
    db = sim.db
    bridge = values.get("bridge", "")
    if len(bridge) > MAX_BRIDGE_LENGTH:
        raise Failure("INVALID_VALUE", "bridge", bridge)
    if bridge and db.find("network", bridge=bridge):
        raise Failure("BRIDGE_NAME_EXISTS", bridge)
    ref = db.create("network", dict(values, bridge=bridge or "pending"))
    if not bridge:
        # XAPI names the bridge itself when the record leaves it empty.
        number = sum(1 for n in db.all("network")
                     if db.get("network", n)["bridge"].startswith("xapi"))
        db.get("network", ref)["bridge"] = "xapi%d" % number
    return ref


@handler("network.destroy")
def network_destroy(sim, session, network):
    """Destroy a network and its unattached VIFs (ocaml/xapi/xapi_network.ml).

    Attached VIFs and any PIF, VLAN PIFs included, keep the network.
    """
    db = sim.db
    record = db.get("network", network)
    vifs = db.members("network", network, "VIFs")
    attached = [vif for vif in vifs if db.get("VIF", vif)["currently_attached"]]
    if attached:
        raise Failure("NETWORK_CONTAINS_VIF", *attached)
    pifs = db.members("network", network, "PIFs")
    if pifs:
        raise Failure("NETWORK_CONTAINS_PIF", *pifs)
    if record["other_config"].get("is_host_internal_management_network") == "true":
        raise Failure("CANNOT_DESTROY_SYSTEM_NETWORK", network)
    for vif in vifs:
        db.destroy("VIF", vif)
    db.destroy("network", network)


@handler("PIF.destroy")
def pif_destroy(sim, session, pif):
    """Destroy a VLAN PIF; XAPI deprecates this for VLAN.destroy, which is not modelled."""
    db = sim.db
    record = db.get("PIF", pif)
    if record["physical"]:
        raise Failure("PIF_IS_PHYSICAL", pif)
    db.destroy("PIF", pif)


def _create_vlan(sim, tagged_pif, network, vlan):
    db = sim.db
    check_ref(db, "network", network)
    if vlan < 0 or vlan > 4094:
        raise Failure("VLAN_TAG_INVALID", vlan)
    pif = db.get("PIF", tagged_pif)
    if pif["VLAN"] >= 0:
        raise Failure("PIF_IS_VLAN", tagged_pif)
    for other in db.members("network", network, "PIFs"):
        if db.get("PIF", other)["host"] == pif["host"]:
            raise Failure("NETWORK_ALREADY_CONNECTED", network, other)
    for other in db.members("host", pif["host"], "PIFs"):
        record = db.get("PIF", other)
        if record["device"] == pif["device"] and record["VLAN"] == vlan:
            raise Failure("PIF_VLAN_EXISTS", record["device"])
    return db.create("PIF", {
        "device": pif["device"], "network": network, "host": pif["host"],
        "MAC": pif["MAC"], "MTU": pif["MTU"], "VLAN": vlan, "physical": False,
        "currently_attached": True, "ip_configuration_mode": "None",
        "metrics": NULL_REF, "VLAN_master_of": NULL_REF,
        "bond_slave_of": NULL_REF, "bond_master_of": [], "VLAN_slave_of": [],
        "managed": True,
    })


def _check_vlan_in_use(db, device, vlan, hosts):
    for host in hosts:
        for pif in db.members("host", host, "PIFs"):
            record = db.get("PIF", pif)
            if record["device"] == device and record["VLAN"] == vlan:
                raise Failure("VLAN_IN_USE", device, vlan)


@handler("pool.create_VLAN_from_PIF")
def pool_create_vlan_from_pif(sim, session, pif, network, vlan):
    """Create the VLAN on the PIF's device on every host of the pool."""
    db = sim.db
    record = db.get("PIF", pif)
    check_ref(db, "network", network)
    if vlan < 0 or vlan > 4094:
        raise Failure("VLAN_TAG_INVALID", vlan)
    if record["VLAN"] >= 0:
        raise Failure("PIF_IS_VLAN", pif)
    device = record["device"]
    hosts = db.all("host")
    _check_vlan_in_use(db, device, vlan, hosts)
    targets = []
    for host in hosts:
        matches = [p for p in db.members("host", host, "PIFs")
                   if db.get("PIF", p)["device"] == device and db.get("PIF", p)["VLAN"] < 0]
        targets.extend(matches)
    created = []
    for target in targets:
        created.append(_create_vlan(sim, target, network, vlan))
    return created


@handler("pool.create_VLAN")
def pool_create_vlan(sim, session, device, network, vlan):
    db = sim.db
    check_ref(db, "network", network)
    if vlan < 0 or vlan > 4094:
        raise Failure("VLAN_TAG_INVALID", vlan)
    hosts = db.all("host")
    physical = [p for h in hosts for p in db.members("host", h, "PIFs")
                if db.get("PIF", p)["device"] == device and db.get("PIF", p)["VLAN"] < 0]
    if not physical:
        raise Failure("PIF_DEVICE_NOT_FOUND")
    _check_vlan_in_use(db, device, vlan, hosts)
    return [_create_vlan(sim, p, network, vlan) for p in physical]


_CREATORS = {
    "VM": create_vm,
    "VDI": create_vdi,
    "VBD": create_vbd,
    "VIF": create_vif,
    "network": create_network,
}
