"""The Xen adapter: XenServer and XCP-ng pools through XAPI.

One XAPI session serves one request: ``open`` logs in with the
``originator`` setting (following HOST_IS_SLAVE to the pool master once)
and ``close`` logs out, on every path. Calls go through the XenAPI SDK
over a transport that verifies TLS against ``ca_bundle`` and enforces the
connect and read timeouts.

Identifiers: a guest, snapshot, storage, host or network is its UUID (a
name is accepted where it names exactly one), a disk is its VBD's
``userdevice`` and a NIC is its MAC. Object references (OpaqueRefs) stay
inside the adapter; error parameters show UUIDs instead.

Modules
-------
``adapter.py`` defines XenAdapter from one mixin class per concept. The
mixins call each other's methods through ``self``, most often ``_call``
from session.py and the lookups from lookups.py.

constants.py
    Units, XAPI constants and the state map.
settings.py
    The settings of a hypervisor type, their defaults and
    ``parse_settings``.
transport.py
    TLS contexts, connections with timeouts, and the SDK's transport.
session.py
    Login, logout, ``_call`` and the translation of errors.
failures.py
    XAPI error codes by Simplestack error class.
records.py
    API records built from XAPI records.
lookups.py
    UUID and name checks, lookups and bulk reads (event.from,
    get_all_records_where).
rollback.py
    Undoing the done steps of a change that failed half-way.
device_numbers.py
    Free device numbers for VBDs and VIFs under concurrent requests.
hosts.py
    Pool, host and storage records.
guest_records.py
    ``list_guests`` and ``get_guest``.
guests.py
    Creating, changing, cloning and deleting guests.
power.py
    Power actions and reboots.
tasks.py
    Tasks and the paths of XAPI's HTTP handlers.
images.py
    XVA export and import.
disks.py
    Disks and the media device.
nics.py
    Network interfaces.
networks.py
    Networks and VLANs.
snapshots.py
    Snapshots.
tags.py
    Guest tags.
"""

from simplestack.adapters.xen.adapter import XenAdapter  # noqa: F401
