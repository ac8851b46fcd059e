"""Units, metadata names, state maps and driver gaps shared by the modules."""

import libvirt

KIB = 1024
MIB = 1024 ** 2
GIB = 1024 ** 3

#: XML namespace of the adapter's own data in domain and network metadata.
METADATA_NAMESPACE = "urn:simplestack:libvirt:1"
METADATA_PREFIX = "simplestack"

#: Name of the virtio-serial channel of the QEMU guest agent.
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"

# Domain state -> API state. libvirt.VIR_DOMAIN_* values, see
# virDomainState in libvirt-domain.h.
STATE_MAP = {
    # The driver has no state for the domain.
    libvirt.VIR_DOMAIN_NOSTATE: "UNKNOWN",
    # Running on a host CPU.
    libvirt.VIR_DOMAIN_RUNNING: "STARTED",
    # Running but blocked on a resource such as I/O; still a live guest.
    libvirt.VIR_DOMAIN_BLOCKED: "STARTED",
    # Suspended in memory by virDomainSuspend (our "pause").
    libvirt.VIR_DOMAIN_PAUSED: "PAUSED",
    # Shutting down: still running until the guest finishes.
    libvirt.VIR_DOMAIN_SHUTDOWN: "STARTED",
    # Defined and not running.
    libvirt.VIR_DOMAIN_SHUTOFF: "STOPPED",
    # The guest crashed and libvirt kept it (on_crash preserve): neither
    # running nor cleanly stopped.
    libvirt.VIR_DOMAIN_CRASHED: "UNKNOWN",
    # Suspended by the guest's own power management (S3/S4).
    libvirt.VIR_DOMAIN_PMSUSPENDED: "PAUSED",
}

# The same states as domain snapshot XML spells them in <state>. A snapshot's
# state is the state the guest returns to on revert.
SNAPSHOT_STATE_MAP = {
    "nostate": "UNKNOWN",
    "running": "STARTED",
    "blocked": "STARTED",
    "paused": "PAUSED",
    "shutdown": "STARTED",
    "shutoff": "STOPPED",
    "crashed": "UNKNOWN",
    "pmsuspended": "PAUSED",
    # A disk-only snapshot of a running guest contains no memory, so a
    # revert leaves the guest shut off.
    "disk-snapshot": "STOPPED",
}

# Per driver, the features it lacks and why, as measured on libvirt 9.0.
# Operations check these before they change anything.
DRIVER_GAPS = {
    "test": {
        "device_hotplug": "the test driver cannot attach or detach devices",
        "device_update": "the test driver cannot change devices "
                         "(no virDomainUpdateDeviceFlags)",
        "volume_resize": "the test driver cannot resize storage volumes",
        "volume_stream": "the test driver cannot upload or download "
                         "storage volumes",
        "dhcp_leases": "the test driver has no DHCP leases",
        "vlan": "the test driver has no Open vSwitch bridges",
    },
    "lxc": {
        "snapshots": "the LXC driver has no snapshot support",
        "disks": "LXC containers use a root directory, not disk volumes",
        "media": "LXC containers have no CD-ROM drive",
        "rename": "the LXC driver cannot rename domains",
        "volume_stream": "LXC containers have no disk image to transfer",
        "vlan": "VLAN networks need an Open vSwitch bridge",
    },
    "qemu": {
        "vlan": "VLAN networks need an Open vSwitch bridge",
    },
    "hyperv": {},
}
