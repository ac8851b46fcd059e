"""Guest records: listing guests and reading one guest.

A record combines the domain XML, the domain state, the disk sizes and the
DHCP leases. ``list_guests`` fetches the states in bulk, and on QEMU the
disk sizes too.
"""

import logging

import libvirt

from simplestack import errors
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
        sizes = {}
        if block_stats:
            for index in range(block_stats.get("block.count", 0)):
                name = block_stats.get("block.%d.name" % index)
                capacity = block_stats.get("block.%d.capacity" % index)
                if name and capacity is not None:
                    sizes[name] = capacity
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
        """Map MAC -> IPv4 address from the DHCP leases of the networks."""
        if DRIVER_GAPS[self.driver].get("dhcp_leases"):
            return {}
        leases = {}
        for name in sorted(network_names):
            try:
                network = self._call(self.conn.networkLookupByName, name)
                if not self._call(network.isActive):
                    continue
                entries = self._call(network.DHCPLeases)
            except (errors.EntityNotFound, errors.FeatureNotImplemented):
                continue
            for entry in entries:
                if entry.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                    leases.setdefault(entry["mac"].lower(), entry["ipaddr"])
        return leases

    def _stats_groups(self):
        if self.driver == "qemu":
            return libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BLOCK
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
        hostname = self._hostname() if state != "STOPPED" else None
        return self._guest_record(description, state, sizes, leases,
                                  hostname)

    def list_guests(self):
        domains = self._call(self.conn.listAllDomains, 0)
        if not domains:
            return []

        states, block_stats = self._bulk_states(domains)

        # NOTE: libvirt 9.0 has no bulk call for domain XML, so this costs
        # one XMLDesc per guest. Only the XML has the MACs (for the IP) and
        # the device kinds (CD-ROMs are not in hdd), and on the test and
        # LXC drivers also the vCPU and memory figures.
        descriptions = {}
        for domain in domains:
            try:
                descriptions[domain.UUIDString()] = self._describe(domain)
            except errors.EntityNotFound:
                continue  # deleted since listAllDomains

        network_names = {interface.network
                         for description in descriptions.values()
                         for interface in description.interfaces
                         if interface.network}
        leases = self._leases(network_names)
        hostname = None
        if any(state != "STOPPED" for state in states.values()):
            hostname = self._hostname()

        records = []
        for domain in domains:
            key = domain.UUIDString()
            if key not in descriptions or key not in states:
                continue
            description = descriptions[key]
            try:
                sizes = self._disk_sizes(domain, description,
                                         block_stats.get(key))
            except errors.EntityNotFound:
                continue  # deleted since listAllDomains
            records.append(self._guest_record(
                description, states[key], sizes, leases, hostname))
        records.sort(key=lambda record: record["id"])
        return records

    def _bulk_states(self, domains):
        """Return ({uuid: API state}, {uuid: block stats}) for ``domains``."""
        states = {}
        block_stats = {}
        groups = self._stats_groups()
        if groups:
            for domain, stats in self._call(self.conn.getAllDomainStats,
                                            groups, 0):
                key = domain.UUIDString()
                states[key] = STATE_MAP.get(stats.get("state.state"),
                                            "UNKNOWN")
                block_stats[key] = stats
        else:
            # Without bulk stats, list by state: three calls whatever the
            # number of guests.
            for flag, state in (
                    (libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING, "STARTED"),
                    (libvirt.VIR_CONNECT_LIST_DOMAINS_PAUSED, "PAUSED"),
                    (libvirt.VIR_CONNECT_LIST_DOMAINS_SHUTOFF, "STOPPED")):
                for domain in self._call(self.conn.listAllDomains, flag):
                    states[domain.UUIDString()] = state
        # Guests in rarer states (blocked, shutting down, crashed,
        # pmsuspended) or defined since the first listing: one call each.
        for domain in domains:
            if domain.UUIDString() not in states:
                try:
                    states[domain.UUIDString()] = self._state(domain)
                except errors.EntityNotFound:
                    continue  # deleted since listAllDomains
        return states, block_stats

    def get_guest(self, guest_id):
        return self._guest_from_domain(self._domain(guest_id))
