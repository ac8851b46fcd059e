"""The libvirt adapter: QEMU/KVM, LXC, libvirt's test driver and Hyper-V.

One class serves every libvirt-backed hypervisor type. The ``driver``
setting of the type picks the libvirt driver, which decides the domain XML
the adapter writes and the operations it offers. What each driver cannot do is
listed in :data:`DRIVER_GAPS` and checked before any change, so an
unsupported operation raises FeatureNotImplemented without touching the
hypervisor.

Identifiers: a guest is its domain UUID (the domain name is accepted too),
a storage is a pool UUID (or name), a network is a network UUID (or name), a
disk is the position of its target device (``sda`` is 0, ``sdb`` is 1), a
NIC is its MAC and a snapshot is the UUID that names the libvirt snapshot.

Modules
-------
``adapter.py`` defines LibvirtAdapter from one mixin class per concept. The
mixins call each other's methods through ``self``, most often ``_call``
from calls.py and the lookups from lookups.py.

constants.py
    Units, the metadata namespace, the state maps and DRIVER_GAPS.
settings.py
    The settings of a hypervisor type, their defaults and
    ``parse_settings``.
calls.py
    libvirt error codes, ``_call`` and the translation of libvirt errors.
connection.py
    Opening and closing connections, the process-wide test driver
    connections and the event loop that runs keepalive probes.
locks.py
    The per-guest locks that serialize device changes within the process.
lookups.py
    UUID and name checks, and the lookup of domains, pools, networks and
    volumes.
domain_xml.py
    DomainDescription and its devices, target device names, and the
    builders of domain, disk, interface and volume XML.
hosts.py
    Pool, host and storage records.
guest_records.py
    Guest records: ``list_guests`` and ``get_guest``.
guests.py
    Creating, changing and deleting guests.
power.py
    Power actions and reboots.
images.py
    Cloning, exporting and importing guests.
devices.py
    Disks and the media device.
nics.py
    Network interfaces.
networks.py
    Networks.
snapshots.py
    Snapshots.
tags.py
    Guest tags.
volumes.py
    Checks on uploaded qcow2 headers and on storage volumes before a copy
    or a mount, and on the free space of pools.

Every module logs to the logger ``simplestack.adapters.libvirt``, so log
lines name the package, not the module.
"""

# Re-exported so that settings, entry points and tests can import these
# names from simplestack.adapters.libvirt. NOTE: assigning to one of these
# names here, as a monkeypatch does, leaves the module that uses it unchanged.
from simplestack.adapters.libvirt.adapter import (  # noqa: F401
    HYPERVISOR_NAMES, LibvirtAdapter)
from simplestack.adapters.libvirt.constants import (  # noqa: F401
    DRIVER_GAPS, GIB, GUEST_AGENT_CHANNEL, KIB, METADATA_NAMESPACE,
    METADATA_PREFIX, MIB, SNAPSHOT_STATE_MAP, STATE_MAP)
from simplestack.adapters.libvirt.settings import (  # noqa: F401
    DEFAULT_SETTINGS, DEFAULT_URIS, DRIVERS, TEST_DEFAULT_HOST,
    TEST_DEFAULT_URI, _parse_test_hosts)
from simplestack.adapters.libvirt.calls import (  # noqa: F401
    AUTH_CODES, CONNECTION_CODES, ERROR_CODE_NAMES, EXISTS_CODES,
    MISSING_DRIVER_CODES,
    NOT_FOUND_CODES, TIMEOUT_CODES, UNSUPPORTED_CODES, _discard_libvirt_error)
from simplestack.adapters.libvirt.connection import (  # noqa: F401
    _event_loop_lock, _run_event_loop, _shared_test_connection,
    _shared_test_connections, _shared_test_lock, _start_event_loop)
from simplestack.adapters.libvirt.lookups import (  # noqa: F401
    UUID_PATTERN, _is_uuid, _validate_name)
from simplestack.adapters.libvirt.domain_xml import (  # noqa: F401
    DiskDevice, DomainDescription, InterfaceDevice, TARGET_PREFIXES, USB_PORTS,
    _free_target, _free_usb_port, _memory_kib, _target_index, _target_name,
    _to_xml)
from simplestack.adapters.libvirt.hosts import _version_string  # noqa: F401
from simplestack.adapters.libvirt.images import (  # noqa: F401
    STREAM_CHUNK_SIZE)
from simplestack.adapters.libvirt.volumes import (  # noqa: F401
    COPYABLE_FORMATS, MEDIA_FORMATS, QCOW2_MAGIC, _parse_qcow2_header)
from simplestack.adapters.libvirt.nics import (  # noqa: F401
    MAC_PATTERN, _normalize_mac, _random_mac)
from simplestack.adapters.libvirt.snapshots import (  # noqa: F401
    _iso8601, _now_iso8601)
from simplestack.adapters.libvirt.tags import _tags_lock  # noqa: F401
