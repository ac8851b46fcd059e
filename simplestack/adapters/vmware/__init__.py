"""The VMware adapter: vCenter and standalone ESXi hosts through pyVmomi.

One vSphere session serves one request: ``open`` logs in and ``close``
logs out, on every path. Every call goes through one pyVmomi SOAP stub,
given an SSL context always (pyVmomi turns verification off for loopback
hosts when it gets none), with the connect and read timeouts.

Identifiers: a guest is its BIOS UUID (``config.uuid``; a unique name is
accepted too), a disk its position number, a NIC its MAC. Hosts,
datastores, networks and snapshots have no UUID in the vSphere API: their
ids are UUIDs derived from the server's instance UUID and the managed
object id. Managed object references stay inside the adapter.

Modules
-------
``adapter.py`` defines VmwareAdapter from one mixin class per concept.

constants.py
    Units, vSphere constants and the state map.
settings.py
    The settings of a hypervisor type and ``parse_settings``.
session.py
    TLS, login, logout, the counting stub and the translation of errors.
faults.py
    vSphere faults by Simplestack error class.
inventory.py
    Bulk reads through the PropertyCollector; lookups by id or name.
tasks.py
    Waiting for tasks through the PropertyCollector.
hosts.py
    Pool, host, storage (datastore) and network records.
networks.py
    Creating VLAN networks as standard or distributed port groups.
guest_records.py
    Guest lookups, ``list_guests`` and ``get_guest``.
guests.py
    Creating, changing, cloning and deleting guests.
power.py
    Power actions and reboots.
devices.py
    Virtual device specs and positions.
disks.py
    Disks and the media device.
nics.py
    Network interfaces.
snapshots.py
    Snapshots.
tags.py
    Guest tags as custom attributes.
images.py
    OVA import and export through HTTP NFC leases.
"""

from simplestack.adapters.vmware.adapter import VmwareAdapter  # noqa: F401
