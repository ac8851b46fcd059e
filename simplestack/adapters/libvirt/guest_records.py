"""Guest records: listing guests and reading one guest.

A record combines the domain XML, the domain state, the disk sizes and the
DHCP leases. ``list_guests`` fetches the states in bulk, and on QEMU the
vCPUs, memory and disk sizes too. It takes the domain XML from the
process-wide cache in description_cache, so that its calls do not grow with
the number of guests. ``get_guest`` reads the XML afresh.
"""

import collections
import functools
import logging
import operator

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt import description_cache
from simplestack.adapters.libvirt.constants import (
    DRIVER_GAPS, GIB, KIB, STATE_MAP)
from simplestack.adapters.libvirt.domain_xml import DomainDescription

logger = logging.getLogger(__name__)


class GuestRecordsMixin:
    """Methods of LibvirtAdapter that build guest records."""

    def _guest_record(self, description, state, disk_sizes, leases,
                      hostname):
        """Build a guest record from data already fetched.

        ``disk_sizes`` maps target device names to bytes; ``leases`` maps
        MACs to IPv4 addresses.
        """
        return _assemble_record(_definition_fields(description),
                                _disk_targets(description),
                                _macs(description), state, disk_sizes,
                                leases, hostname)

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
        description = _record_definition(
            self._call(domain.XMLDesc, 0, domain=domain))
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
        leases = self._leases(set(description.networks))
        hostname = self._cached_hostname() if state != "STOPPED" else None
        return _assemble_record(description.fields, description.disk_targets,
                                description.macs, state, sizes, leases,
                                hostname)

    def list_guests(self):
        uri = self._description_cache_uri()
        cache = description_cache.descriptions
        generation = cache.generation(uri)
        listing = self._list_with_stats()
        # UUIDString formats the UUID on every call, so it runs once here.
        keys = [domain.UUIDString() for domain, _ in listing]
        cached = cache.entries(uri, set(keys))

        # Parallel lists rather than a tuple per guest, and the entry check
        # and state map inline: at 10000 guests this loop took about a
        # quarter less CPU time than with a tuple and two method calls.
        listed_entries = []
        listed_states = []
        listed_stats = []
        now = cache.clock()
        max_age = cache.max_age
        for key, (domain, stats) in zip(keys, listing):
            fingerprint = _fingerprint(domain, stats)
            entry = cached.get(key)
            try:
                # An entry is valid while its fingerprint matches and it is
                # at most max_age seconds old.
                if (entry is None or entry.fingerprint != fingerprint
                        or now - entry.stored_at > max_age):
                    entry = self._read_description(domain, stats,
                                                   fingerprint)
                    cache.put(uri, key, entry, generation)
                native_state = stats.get("state.state")
                if native_state is None:
                    state = self._listed_state(domain, stats)
                else:
                    state = STATE_MAP.get(native_state, "UNKNOWN")
            except errors.EntityNotFound:
                continue  # deleted since the listing
            listed_entries.append(entry)
            listed_states.append(state)
            listed_stats.append(stats)

        network_names = set()
        for entry in listed_entries:
            network_names.update(entry.networks)
        leases = self._leases(network_names)
        hostname = None
        if any(state != "STOPPED" for state in listed_states):
            hostname = self._cached_hostname()

        records = []
        for entry, state, stats in zip(listed_entries, listed_states,
                                       listed_stats):
            sizes = entry.disk_sizes
            if stats.get("block.count"):
                sizes = dict(sizes)
                sizes.update(_stats_capacities(stats))
            records.append(_assemble_record(
                entry.fields, entry.disk_targets, entry.macs, state, sizes,
                leases, hostname))
        records.sort(key=operator.itemgetter("id"))
        return records

    def _list_with_stats(self):
        """Return [(virDomain, stats)] for every domain in one or two calls.

        UUIDString, name and ID of the returned virDomain objects are read
        from the listing and make no further call to libvirt.
        """
        groups = self._stats_groups()
        if groups:
            return self._call(self.conn.getAllDomainStats, groups, 0)
        # LXC has no getAllDomainStats in libvirt 9.0. A second listing
        # returns the running domains, see _listed_state for the others.
        # NOTE: with the leases of one active network an LXC list makes 4
        # calls, one more than a list of the other drivers.
        domains = self._call(self.conn.listAllDomains, 0)
        running = {domain.UUIDString() for domain in self._call(
            self.conn.listAllDomains,
            libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING)}
        return [(domain, {"state.state": libvirt.VIR_DOMAIN_RUNNING}
                 if domain.UUIDString() in running else {})
                for domain in domains]

    def _listed_state(self, domain, stats):
        """Return the API state of a domain of _list_with_stats.

        Without a state in the stats, an inactive domain (ID -1) is
        STOPPED, and an active domain that is not running (paused, shutting
        down, crashed) costs one state call.
        """
        native_state = stats.get("state.state")
        if native_state is not None:
            return STATE_MAP.get(native_state, "UNKNOWN")
        if domain.ID() == -1:
            return "STOPPED"
        return self._state(domain)

    def _read_description(self, domain, stats, fingerprint):
        """Read the domain's XML and the disk sizes that ``stats`` lacks."""
        description = self._describe(domain)
        return description_cache.CachedDescription(
            fingerprint=fingerprint,
            stored_at=description_cache.descriptions.clock(),
            fields=_definition_fields(description),
            disk_targets=_disk_targets(description),
            macs=_macs(description),
            networks=tuple(interface.network for interface
                           in description.interfaces if interface.network),
            disk_sizes=self._disk_sizes(domain, description, stats))

    def _cached_hostname(self):
        uri = self._description_cache_uri()
        hostname = description_cache.descriptions.hostname(uri)
        if hostname is None:
            hostname = self._hostname()
            description_cache.descriptions.store_hostname(uri, hostname)
        return hostname

    def get_guest(self, guest_id):
        return self._guest_from_domain(self._domain(guest_id))


class DiskSource(collections.namedtuple("DiskSource", "target path")):
    """The target device and source path of a disk (CD-ROMs excluded)."""

    __slots__ = ()


class RecordDefinition(collections.namedtuple("RecordDefinition", (
        "fields", "disks", "disk_targets", "macs", "networks"))):
    """The parts of a domain's XML that a guest record uses.

    ``fields`` is the tuple of _definition_fields, ``disks`` the
    DiskSource of each disk in target order, ``networks`` the names of the
    networks of the NICs. It has the ``disks`` attribute that
    GuestRecordsMixin._disk_sizes reads from a DomainDescription.
    """

    __slots__ = ()


#: Number of distinct domain XML texts whose record parts stay parsed.
RECORD_DEFINITION_CACHE_SIZE = 512


@functools.lru_cache(maxsize=RECORD_DEFINITION_CACHE_SIZE)
def _record_definition(xml_text):
    """Parse the record parts of a domain's XML, once per distinct text.

    The result depends on the text alone, and a domain's XML is mostly the
    same from one read to the next, so a repeated read skips the parse:
    parsing took about 65 us of a 300 us request (bench/request_cpu.py).
    The XML is still read from libvirt on every request.
    """
    description = DomainDescription(xml_text)
    return RecordDefinition(
        fields=_definition_fields(description),
        disks=tuple(DiskSource(disk.target, disk.path)
                    for disk in description.disks),
        disk_targets=_disk_targets(description),
        macs=_macs(description),
        networks=tuple(interface.network for interface
                       in description.interfaces if interface.network))


def _fingerprint(domain, stats):
    """Return the bulk stats whose change means the domain's definition
    may have changed.

    The domain ID changes on every start, which also rewrites the live XML.
    The name is part of it so that a rename made elsewhere shows at once;
    ID and name come from the listed virDomain without a call to libvirt.
    The test driver's stats contain the state only.
    """
    get = stats.get
    fingerprint = (domain.ID(), domain.name(), get("state.state"),
                   get("vcpu.current"),
                   get("vcpu.maximum"), get("balloon.maximum"))
    block_count = get("block.count")
    if not block_count:
        return fingerprint
    paths = []
    for index in range(block_count):
        paths.append(stats.get("block.%d.name" % index))
        paths.append(stats.get("block.%d.path" % index))
    return fingerprint + tuple(paths)


def _definition_fields(description):
    """Return the record fields that come from the domain XML alone."""
    return (
        description.uuid,
        description.name,
        description.cpus,
        description.memory_kib // KIB,
        # Xen paravirtualization is the only kind the API means, and
        # no driver served here runs Xen guests.
        description.os_type == "xen",
        # libvirt has no agent version to compare against, so an
        # agent that is connected counts as up to date.
        True if description.agent_connected else None,
    )


def _disk_targets(description):
    """Return the target devices of the disks, CD-ROMs excluded."""
    return tuple(disk.target for disk in description.disks)


def _macs(description):
    return tuple(interface.mac for interface in description.interfaces)


def _assemble_record(fields, disk_targets, macs, state, disk_sizes, leases,
                     hostname):
    """Build a guest record from _definition_fields and the data of the
    request."""
    guest_id, name, cpus, memory, paravirtualized, tools = fields
    hdd_bytes = 0
    for target in disk_targets:
        hdd_bytes += disk_sizes.get(target, 0)
    ip = None
    for mac in macs:
        if mac in leases:
            ip = leases[mac]
            break
    return {
        "id": guest_id,
        "name": name,
        "cpus": cpus,
        "memory": memory,
        "hdd": hdd_bytes // GIB,
        "paravirtualized": paravirtualized,
        "tools_up_to_date": tools,
        "ip": ip,
        "state": state,
        "host": hostname if state != "STOPPED" else None,
    }


def _stats_capacities(stats):
    """Map target device -> capacity in bytes from a domain's block stats."""
    capacities = {}
    for index in range(stats.get("block.count", 0)):
        name = stats.get("block.%d.name" % index)
        capacity = stats.get("block.%d.capacity" % index)
        if name and capacity is not None:
            capacities[name] = capacity
    return capacities
