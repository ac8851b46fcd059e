"""Guest records: listing guests and reading one guest.

A record combines the domain XML, the domain state, the disk sizes and the
DHCP leases. ``list_guests`` fetches the states in bulk, and on QEMU the
vCPUs, memory and disk sizes too. It takes the domain XML from the
process-wide cache in description_cache, so that its calls do not grow with
the number of guests. ``get_guest`` reads the XML afresh.
"""

import logging

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt import description_cache
from simplestack.adapters.libvirt.constants import (
    DRIVER_GAPS, GIB, KIB, STATE_MAP)

logger = logging.getLogger(__name__)


class GuestRecordsMixin:
    """Methods of LibvirtAdapter that build guest records."""

    def _guest_record(self, description, state, disk_sizes, leases,
                      hostname):
        """Build a guest record from data already fetched.

        ``disk_sizes`` maps target device names to bytes; ``leases`` maps
        MACs to IPv4 addresses.
        """
        hdd_bytes = sum(disk_sizes.get(disk.target, 0)
                        for disk in description.disks)
        ip = None
        for interface in description.interfaces:
            if interface.mac in leases:
                ip = leases[interface.mac]
                break
        return {
            "id": description.uuid,
            "name": description.name,
            "cpus": description.cpus,
            "memory": description.memory_kib // KIB,
            "hdd": hdd_bytes // GIB,
            # Xen paravirtualization is the only kind the API means, and
            # no driver served here runs Xen guests.
            "paravirtualized": description.os_type == "xen",
            # libvirt has no agent version to compare against, so an
            # agent that is connected counts as up to date.
            "tools_up_to_date": True if description.agent_connected else None,
            "ip": ip,
            "state": state,
            "host": hostname if state != "STOPPED" else None,
        }

    def _disk_sizes(self, domain, description, block_stats=None):
        """Map target device -> virtual size in bytes for the domain's disks.

        ``block_stats`` is the domain's entry from getAllDomainStats with the
        block group, which on QEMU has every readable disk's capacity. A
        disk missing there costs one virDomainGetBlockInfo call. The test
        driver's block info is a fixed fake, so there a disk costs a volume
        lookup and a volume info call instead.
        """
        sizes = _stats_capacities(block_stats or {})
        for disk in description.disks:
            if disk.target in sizes or not disk.target:
                continue
            if self.driver != "qemu" and disk.path:
                volume = self._volume_by_path(disk.path)
                if volume is not None:
                    sizes[disk.target] = self._call(volume.info)[1]
                    continue
            sizes[disk.target] = self._block_capacity(domain, disk)
        return sizes

    def _block_capacity(self, domain, disk):
        """Return the disk's virtual size from libvirt, or 0 when unknown."""
        try:
            return self._call(domain.blockInfo, disk.target, 0,
                              domain=domain)[0]
        except (errors.FeatureNotImplemented, errors.HypervisorError,
                errors.InvalidState) as error:
            # An image that is missing or unreadable must not hide the
            # guest from lists; its size counts as 0.
            logger.warning("could not read the size of disk %s of guest %s:"
                           " %s", disk.target, domain.UUIDString(),
                           error.message)
            return 0

    def _leases(self, network_names):
        """Map MAC -> IPv4 address from the DHCP leases of the networks.

        One listing of the active networks, then one DHCPLeases call per
        named network. A name that is no active network (a bridge) is
        skipped.
        """
        if DRIVER_GAPS[self.driver].get("dhcp_leases") or not network_names:
            return {}
        active = {network.name(): network for network in self._call(
            self.conn.listAllNetworks,
            libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE)}
        leases = {}
        for name in sorted(network_names):
            if name not in active:
                continue
            try:
                entries = self._call(active[name].DHCPLeases)
            except (errors.EntityNotFound, errors.FeatureNotImplemented):
                continue
            for entry in entries:
                if entry.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                    leases.setdefault(entry["mac"].lower(), entry["ipaddr"])
        return leases

    def _stats_groups(self):
        if self.driver == "qemu":
            return (libvirt.VIR_DOMAIN_STATS_STATE
                    | libvirt.VIR_DOMAIN_STATS_VCPU
                    | libvirt.VIR_DOMAIN_STATS_BALLOON
                    | libvirt.VIR_DOMAIN_STATS_BLOCK)
        if self.driver == "test":
            return libvirt.VIR_DOMAIN_STATS_STATE
        # LXC has no getAllDomainStats in libvirt 9.0.
        return 0

    def _guest_from_domain(self, domain):
        description = self._describe(domain)
        stats = {}
        groups = self._stats_groups()
        if groups:
            result = self._call(self.conn.domainListGetStats, [domain],
                                groups, domain=domain)
            stats = result[0][1] if result else {}
        if "state.state" in stats:
            state = STATE_MAP.get(stats["state.state"], "UNKNOWN")
        else:
            state = self._state(domain)
        sizes = self._disk_sizes(domain, description, stats)
        leases = self._leases({interface.network for interface
                               in description.interfaces
                               if interface.network})
        hostname = self._cached_hostname() if state != "STOPPED" else None
        return self._guest_record(description, state, sizes, leases,
                                  hostname)

    def list_guests(self):
        uri = self._description_cache_uri()
        cache = description_cache.descriptions
        generation = cache.generation(uri)
        listing = self._list_with_stats()
        cache.retain(uri, {domain.UUIDString() for domain, _ in listing})

        entries = {}
        for domain, stats in listing:
            key = domain.UUIDString()
            fingerprint = _fingerprint(domain, stats)
            entry = cache.get(uri, key, fingerprint)
            if entry is None:
                try:
                    entry = self._read_description(domain, stats, fingerprint)
                except errors.EntityNotFound:
                    continue  # deleted since the listing
                cache.put(uri, key, entry, generation)
            entries[key] = entry

        states = self._states_of(listing)
        network_names = {interface.network
                         for entry in entries.values()
                         for interface in entry.description.interfaces
                         if interface.network}
        leases = self._leases(network_names)
        hostname = None
        if any(states.get(key) != "STOPPED" for key in entries):
            hostname = self._cached_hostname()

        records = []
        for domain, stats in listing:
            key = domain.UUIDString()
            if key not in entries or key not in states:
                continue
            entry = entries[key]
            sizes = dict(entry.disk_sizes)
            sizes.update(_stats_capacities(stats))
            records.append(self._guest_record(
                entry.description, states[key], sizes, leases, hostname))
        records.sort(key=lambda record: record["id"])
        return records

    def _list_with_stats(self):
        """Return [(virDomain, stats)] for every domain in one or two calls.

        UUIDString, name and ID of the returned virDomain objects are read
        from the listing and make no further call to libvirt.
        """
        groups = self._stats_groups()
        if groups:
            return self._call(self.conn.getAllDomainStats, groups, 0)
        # LXC has no getAllDomainStats in libvirt 9.0. The running ones
        # come from a second listing, see _states_of.
        domains = self._call(self.conn.listAllDomains, 0)
        running = {domain.UUIDString() for domain in self._call(
            self.conn.listAllDomains,
            libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING)}
        return [(domain, {"state.state": libvirt.VIR_DOMAIN_RUNNING}
                 if domain.UUIDString() in running else {})
                for domain in domains]

    def _states_of(self, listing):
        """Map UUID -> API state for the domains of ``listing``.

        Without a state in the stats, an inactive domain (ID -1) is
        STOPPED, and an active domain that is not running (paused, shutting
        down, crashed) costs one state call.
        """
        states = {}
        for domain, stats in listing:
            key = domain.UUIDString()
            if "state.state" in stats:
                states[key] = STATE_MAP.get(stats["state.state"], "UNKNOWN")
            elif domain.ID() == -1:
                states[key] = "STOPPED"
            else:
                try:
                    states[key] = self._state(domain)
                except errors.EntityNotFound:
                    continue  # deleted since the listing
        return states

    def _read_description(self, domain, stats, fingerprint):
        """Read the domain's XML and the disk sizes that ``stats`` lacks."""
        description = self._describe(domain)
        sizes = self._disk_sizes(domain, description, stats)
        return description_cache.CachedDescription(
            fingerprint, description_cache.descriptions.clock(),
            description, sizes)

    def _cached_hostname(self):
        uri = self._description_cache_uri()
        hostname = description_cache.descriptions.hostname(uri)
        if hostname is None:
            hostname = self._hostname()
            description_cache.descriptions.store_hostname(uri, hostname)
        return hostname

    def get_guest(self, guest_id):
        return self._guest_from_domain(self._domain(guest_id))


# Bulk statistics whose change means the domain's definition may have
# changed. The test driver's statistics contain the state only.
FINGERPRINT_STATS = ("state.state", "vcpu.current", "vcpu.maximum",
                     "balloon.maximum", "block.count")


def _fingerprint(domain, stats):
    """Return the bulk stats that reflect the domain's definition.

    The domain ID changes on every start, which also rewrites the live XML.
    """
    parts = [domain.ID()]
    parts.extend(stats.get(name) for name in FINGERPRINT_STATS)
    for index in range(stats.get("block.count", 0)):
        parts.append(stats.get("block.%d.name" % index))
        parts.append(stats.get("block.%d.path" % index))
    return tuple(parts)


def _stats_capacities(stats):
    """Map target device -> capacity in bytes from a domain's block stats."""
    capacities = {}
    for index in range(stats.get("block.count", 0)):
        name = stats.get("block.%d.name" % index)
        capacity = stats.get("block.%d.capacity" % index)
        if name and capacity is not None:
            capacities[name] = capacity
    return capacities
