"""The initial pool: two hosts, storage, networks, default templates, seeded VMs."""

import random

from .model import now
from .operations import create_network, create_vbd, create_vdi, create_vif, random_mac
from .schema import NULL_REF

GIB = 1024 ** 3
MIB = 1024 ** 2

# Product facts reported by the hosts: XenServer 8 with XAPI's API 2.21.
SOFTWARE_VERSION = {
    "product_version": "8.4.0", "product_version_text": "8",
    "product_version_text_short": "8", "platform_name": "XCP",
    "platform_version": "3.4.0", "product_brand": "XenServer",
    "build_number": "8.4.0", "xapi": "24.19", "xapi_build": "24.19.1",
    "xen": "4.17.4-3", "linux": "4.19.0+1", "xencenter_min": "2.21",
    "xencenter_max": "2.21", "network_backend": "openvswitch", "db_schema": "5.780",
}
API_VERSION = (2, 21)

HOST_MEMORY = [64 * GIB, 32 * GIB]
SEEDED_DISK_SIZE = 10 * GIB
CONTROL_DOMAIN_MEMORY = 4 * GIB

LINUX_PLATFORM = {"device-model": "qemu-upstream-compat", "nx": "true",
                  "acpi": "1", "apic": "true", "pae": "true", "hpet": "true",
                  "viridian": "false", "secureboot": "false"}
WINDOWS_PLATFORM = dict(LINUX_PLATFORM, viridian="true",
                        viridian_time_ref_count="true",
                        viridian_reference_tsc="true")

# (name, memory in MiB, VCPUs, disk in GiB, windows): names as XenServer 8
# ships them, a selection of its default templates.
TEMPLATES = [
    ("AlmaLinux 8", 2048, 1, 10, False), ("AlmaLinux 9", 2048, 1, 10, False),
    ("CentOS 7", 2048, 1, 10, False), ("CentOS Stream 8", 2048, 1, 10, False),
    ("CentOS Stream 9", 2048, 1, 10, False),
    ("Debian Buster 10", 2048, 1, 10, False),
    ("Debian Bullseye 11", 2048, 1, 10, False),
    ("Debian Bookworm 12", 2048, 1, 10, False),
    ("Gooroom Platform 2.0", 2048, 1, 10, False),
    ("NeoKylin Linux Server 7", 2048, 1, 10, False),
    ("Oracle Linux 7", 2048, 1, 10, False), ("Oracle Linux 8", 2048, 1, 10, False),
    ("Oracle Linux 9", 2048, 1, 10, False),
    ("Red Hat Enterprise Linux 7", 2048, 1, 10, False),
    ("Red Hat Enterprise Linux 8", 2048, 1, 10, False),
    ("Red Hat Enterprise Linux 9", 2048, 1, 10, False),
    ("Rocky Linux 8", 2048, 1, 10, False), ("Rocky Linux 9", 2048, 1, 10, False),
    ("Scientific Linux 7", 2048, 1, 10, False),
    ("SUSE Linux Enterprise Server 12 SP5 (64-bit)", 2048, 1, 10, False),
    ("SUSE Linux Enterprise Server 15 (64-bit)", 2048, 1, 10, False),
    ("Ubuntu Focal Fossa 20.04", 2048, 1, 10, False),
    ("Ubuntu Jammy Jellyfish 22.04", 2048, 1, 10, False),
    ("Ubuntu Noble Numbat 24.04", 2048, 1, 10, False),
    ("Generic Linux BIOS", 2048, 1, 10, False),
    ("Generic Linux UEFI", 2048, 1, 10, False),
    ("Other install media", 2048, 1, 0, False),
    ("Windows 10 (64-bit)", 4096, 2, 32, True),
    ("Windows 11", 4096, 2, 64, True),
    ("Windows Server 2016 (64-bit)", 4096, 2, 32, True),
    ("Windows Server 2019 (64-bit)", 4096, 2, 32, True),
    ("Windows Server 2022 (64-bit)", 4096, 2, 32, True),
]

ISO_IMAGES = [
    ("debian-12.5.0-amd64-netinst.iso", 658505728),
    ("ubuntu-22.04.4-live-server-amd64.iso", 2104408064),
    ("AlmaLinux-9.3-x86_64-minimal.iso", 1803550720),
    ("Win2022_EVAL_x64FRE_en-us.iso", 5365624832),
]


def seed_pool(sim, master_address, member_address, vm_count):
    db = sim.db
    sim.last_domid = 0
    hosts = [_host(sim, index, address)
             for index, address in enumerate([master_address, member_address])]
    sim.host_by_address = {master_address: hosts[0], member_address: hosts[1]}

    shared = _storage(sim, hosts, vm_count)
    networks = _networks(sim, hosts)
    db.create("pool", {
        "name_label": "Simulated pool", "master": hosts[0], "default_SR": shared,
        "suspend_image_SR": shared, "crash_dump_SR": shared,
        "other_config": {"cpuid_feature_mask": "ffffff7f-ffffffff-ffffffff-ffffffff",
                         "memory-ratio-hvm": "0.25", "memory-ratio-pv": "0.25"},
        "allowed_operations": [],
    })
    for host in hosts:
        _control_domain(sim, host)
    for name, memory, vcpus, disk, windows in TEMPLATES:
        _template(sim, name, memory, vcpus, disk, windows)
    _seed_vms(sim, vm_count, shared, networks[0])


def _host(sim, index, address):
    db = sim.db
    name = "xenserver-%d" % (index + 1)
    metrics = db.create("host_metrics", {
        "memory_total": HOST_MEMORY[index], "memory_free": HOST_MEMORY[index],
        "live": True, "last_updated": now()})
    return db.create("host", {
        "name_label": name, "name_description": "Default install",
        "address": address, "hostname": name,
        "software_version": dict(SOFTWARE_VERSION, hostname=name,
                                 date="2024-09-10"),
        "metrics": metrics, "API_version_major": API_VERSION[0],
        "API_version_minor": API_VERSION[1], "enabled": True,
        "host_CPUs": [], "memory_overhead": 627 * MIB,
        "cpu_info": {"cpu_count": "16", "socket_count": "2",
                     "vendor": "GenuineIntel", "speed": "2394.454",
                     "modelname": "Intel(R) Xeon(R) Gold 6240R CPU @ 2.40GHz",
                     "family": "6", "model": "85", "stepping": "7"},
        "other_config": {"iscsi_iqn": "iqn.2024-09.com.example:%s" % name,
                         "agent_start_time": "1725955200."},
        "allowed_operations": ["provision", "evacuate", "shutdown", "reboot",
                               "vm_start", "vm_resume", "vm_migrate"],
    })


def _sr(sim, name, sr_type, content_type, size, shared, hosts, device_config,
        description="", sm_config=None, tools=False):
    db = sim.db
    sr = db.create("SR", {
        "name_label": name, "name_description": description, "type": sr_type,
        "content_type": content_type, "physical_size": size, "shared": shared,
        "virtual_allocation": 0, "physical_utilisation": 0, "other_config": {},
        "sm_config": sm_config or {}, "is_tools_sr": tools,
        "allowed_operations": ["vdi_create", "vdi_destroy", "vdi_resize",
                               "vdi_clone", "vdi_snapshot", "scan", "update"],
    })
    for host in hosts:
        db.create("PBD", {"host": host, "SR": sr, "device_config": device_config,
                          "currently_attached": True})
    return sr


def _storage(sim, hosts, vm_count):
    for host in hosts:
        host_name = sim.db.get("host", host)["name_label"]
        _sr(sim, "Local storage", "lvm", "user", 500 * GIB, False, [host],
            {"device": "/dev/sda3"}, description="on %s" % host_name,
            sm_config={"allocation": "thick"})
        _sr(sim, "DVD drives", "udev", "iso", 0, False, [host],
            {"location": "/dev/xapi/cd"}, description="Physical DVD drives",
            sm_config={"type": "cd"})
        _sr(sim, "Removable storage", "udev", "disk", 0, False, [host],
            {"location": "/dev/xapi/block"}, sm_config={"type": "block"})
    # 2 TiB, or twice what the seeded guests' disks need.
    size = max(2048 * GIB, 2 * vm_count * SEEDED_DISK_SIZE)
    shared = _sr(sim, "NFS virtual disk storage", "nfs", "", size, True, hosts,
                 {"server": "nfs.example.org", "serverpath": "/exports/xen"},
                 description="NFS SR [nfs.example.org:/exports/xen]")
    iso = _sr(sim, "ISO library", "iso", "iso", 100 * GIB, True, hosts,
              {"location": "nfs.example.org:/exports/iso"},
              description="NFS ISO library")
    for name, size in ISO_IMAGES:
        _iso(sim, iso, name, size)
    tools = _sr(sim, "XenServer Tools", "iso", "iso", 0, True, hosts,
                {"location": "/opt/xensource/packages/iso"},
                description="XenServer Tools ISOs", tools=True)
    _iso(sim, tools, "guest-tools.iso", 52428800)
    return shared


def _iso(sim, sr, name, size):
    ref = create_vdi(sim, {
        "name_label": name, "name_description": "", "SR": sr,
        "virtual_size": size, "type": "user", "sharable": False,
        "read_only": True, "other_config": {}, "xenstore_data": {},
        "sm_config": {}, "tags": []})
    sim.db.get("VDI", ref)["location"] = name
    sim.db.get("VDI", ref)["physical_utilisation"] = size


def _networks(sim, hosts):
    db = sim.db
    networks = []
    for index, device in enumerate(("eth0", "eth1")):
        network = create_network(sim, {
            "name_label": "Pool-wide network associated with %s" % device,
            "name_description": "", "MTU": 1500, "other_config": {},
            "bridge": "xenbr%d" % index, "managed": True, "tags": []})
        networks.append(network)
        for host in hosts:
            address = db.get("host", host)["address"] if index == 0 else ""
            db.create("PIF", {
                "device": device, "network": network, "host": host,
                "MAC": random_mac(), "MTU": 1500, "VLAN": -1, "metrics": NULL_REF,
                "physical": True, "currently_attached": True,
                "ip_configuration_mode": "Static" if address else "None",
                "IP": address, "netmask": "255.0.0.0" if address else "",
                "management": bool(address), "bond_master_of": [],
                "VLAN_slave_of": [], "managed": True,
            })
    create_network(sim, {
        "name_label": "Host internal management network",
        "name_description": "Network on which guests will be assigned a private "
                            "link-local IP address which can be used to talk "
                            "XenAPI",
        "MTU": 1500, "bridge": "xenapi", "managed": True, "tags": [],
        "other_config": {"is_guest_installer_network": "true",
                         "is_host_internal_management_network": "true",
                         "ip_begin": "169.254.0.1", "ip_end": "169.254.255.254",
                         "netmask": "255.255.0.0"}})
    vlan_network = create_network(sim, {
        "name_label": "VLAN 100 on eth1", "name_description": "", "MTU": 1500,
        "other_config": {}, "bridge": "", "managed": True, "tags": []})
    from .operations import pool_create_vlan
    pool_create_vlan(sim, None, "eth1", vlan_network, 100)
    return networks


def _vm_values(name, memory, vcpus, hvm=True, **extra):
    values = {
        "name_label": name, "name_description": "",
        "user_version": 1, "is_a_template": False, "affinity": NULL_REF,
        "memory_static_max": memory, "memory_dynamic_max": memory,
        "memory_dynamic_min": memory, "memory_static_min": min(memory, 512 * MIB),
        "VCPUs_params": {}, "VCPUs_max": vcpus, "VCPUs_at_startup": vcpus,
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "restart", "PV_bootloader": "", "PV_args": "",
        "HVM_boot_policy": "BIOS order" if hvm else "",
        "HVM_boot_params": {"order": "cdn"} if hvm else {},
        "platform": dict(LINUX_PLATFORM), "other_config": {},
        "domain_type": "hvm" if hvm else "pv",
        "blocked_operations": {}, "tags": [],
    }
    values.update(extra)
    return values


def _control_domain(sim, host):
    from .operations import create_vm
    from .vm import _boot, refresh_allowed_operations
    db = sim.db
    host_name = db.get("host", host)["name_label"]
    vm = create_vm(sim, _vm_values(
        "Control domain on host: %s" % host_name, CONTROL_DOMAIN_MEMORY, 8,
        hvm=False, name_description="The domain which manages physical "
                                    "devices and manages other domains"))
    db.set("VM", vm, is_control_domain=True)
    # dom0 has domid 0 and no guest metrics.
    _boot(sim, vm, host, paused=False, guest_agent=False)
    db.set("VM", vm, domid=0)
    sim.last_domid = max(sim.last_domid - 1, 0)
    refresh_allowed_operations(sim, vm)


def _template(sim, name, memory_mib, vcpus, disk_gib, windows):
    from .operations import create_vm
    from .vm import refresh_allowed_operations
    other_config = {"default_template": "true", "install-methods": "cdrom",
                    "base_template_name": name}
    if not windows:
        other_config.update({"linux_template": "true",
                             "install-methods": "cdrom,nfs,http,ftp"})
    if disk_gib:
        other_config["disks"] = (
            '<provision><disk device="0" size="%d" sr="" bootable="true" '
            'type="system"/></provision>' % (disk_gib * GIB))
    vm = create_vm(sim, _vm_values(
        name, memory_mib * MIB, vcpus, is_a_template=True,
        name_description="Template for installing %s" % name,
        platform=dict(WINDOWS_PLATFORM if windows else LINUX_PLATFORM),
        other_config=other_config))
    sim.db.set("VM", vm, is_default_template=True)
    refresh_allowed_operations(sim, vm)


def _seed_vms(sim, count, sr, network):
    """Create ``count`` guests: every third one running while memory lasts."""
    from .errors import Failure
    from .operations import create_vm
    from .vm import _choose_host, _boot, _needed_memory, refresh_allowed_operations, duplicate_vm
    db = sim.db
    randomness = random.Random(count)
    iso_sr = db.find("SR", name_label="ISO library")[0]
    for number in range(1, count + 1):
        name = "sim-vm-%03d" % number
        vm = create_vm(sim, _vm_values(name, 512 * MIB, 1 + number % 2,
                                       name_description="Seeded guest"))
        vdi = create_vdi(sim, {
            "name_label": "%s disk 0" % name, "name_description": "", "SR": sr,
            "virtual_size": SEEDED_DISK_SIZE, "type": "system", "sharable": False,
            "read_only": False, "other_config": {}, "xenstore_data": {},
            "sm_config": {}, "tags": []})
        create_vbd(sim, {"VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
                         "mode": "RW", "type": "Disk", "unpluggable": True,
                         "empty": False, "other_config": {"owner": "true"},
                         "qos_algorithm_type": "", "qos_algorithm_params": {}})
        cd_vdi = NULL_REF
        if number % 4 == 0:
            cd_vdi = randomness.choice(db.members("SR", iso_sr, "VDIs"))
        create_vbd(sim, {"VM": vm, "VDI": cd_vdi, "userdevice": "3", "bootable": False,
                         "mode": "RO", "type": "CD", "unpluggable": True,
                         "empty": cd_vdi == NULL_REF, "other_config": {},
                         "qos_algorithm_type": "", "qos_algorithm_params": {}})
        create_vif(sim, {"device": "0", "network": network, "VM": vm, "MAC": "",
                         "MTU": 1500, "other_config": {}, "qos_algorithm_type": "",
                         "qos_algorithm_params": {}})
        if number == 1:
            duplicate_vm(sim, vm, "%s snapshot" % name, "snapshot")
        if number % 3 == 1:
            try:
                host = _choose_host(sim, vm, _needed_memory(db.get("VM", vm)))
            except Failure:
                continue
            _boot(sim, vm, host, paused=False)
        refresh_allowed_operations(sim, vm)
