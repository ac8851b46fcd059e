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
import time

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt import description_cache, network_handles
from simplestack.adapters.libvirt.calls import (
    DomainHandleListings, domain_handle_id, domain_handle_name,
    domain_handle_uuid, free_domain_handle, free_domain_handles,
    wrap_domain_handle)
from simplestack.adapters.libvirt.constants import (
    DRIVER_GAPS, GIB, KIB, STATE_MAP)
from simplestack.adapters.libvirt.domain_xml import DomainDescription

logger = logging.getLogger(__name__)


#: Seconds for which a listing of the active networks replaces a new one,
#: on its connection and on the later connections of this process.
#: description_cache has the same bound for other changes made outside
#: the service.
# NOTE: DHCPLeases of a network that is stopped but stays defined still
# returns its last leases (libvirt 9.0), and only a call would show the
# stop. So a list can show those addresses for up to this long after a
# stop made outside the service, and the leases of a network started
# outside it show up to this long late.
NETWORK_HANDLES_MAX_AGE_SECONDS = description_cache.MAX_AGE_SECONDS


class GuestRecordsMixin:
    """Methods of LibvirtAdapter that build guest records."""

    #: (time.monotonic() of the listing, {name: virNetwork}, network
    #: generation of the listing) of the active networks of the open
    #: connection, or None. The connection's open and close drop it,
    #: because the handles belong to that connection.
    _network_handles = None

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

        One DHCPLeases call per named active network. The handles of the
        active networks come from an earlier listing (see _kept_networks),
        or from a new one when a name is missing from it, when it is older
        than NETWORK_HANDLES_MAX_AGE_SECONDS, or when a kept network turns
        out to be destroyed. A name that no active network has is skipped,
        and the listing keeps it as such.
        """
        if DRIVER_GAPS[self.driver].get("dhcp_leases") or not network_names:
            return {}
        active = self._kept_networks(network_names)
        listed = active is None
        if listed:
            active = self._list_active_networks(network_names)
        names = sorted(network_names)
        leases = {}
        index = 0
        while index < len(names):
            network = active.get(names[index])
            try:
                entries = self._call(network.DHCPLeases) if network else ()
            except errors.EntityNotFound:
                # libvirt 9.0 raises VIR_ERR_NO_NETWORK for the handle of a
                # network destroyed since, or destroyed and created again
                # under its name (a new UUID). A kept handle gets one new
                # listing and this network is asked again.
                if not listed:
                    active = self._list_active_networks(network_names)
                    listed = True
                    continue
                entries = ()
            except errors.FeatureNotImplemented:
                entries = ()
            except errors.HypervisorError as error:
                # Such as libvirt 9.0's VIR_ERR_INTERNAL_ERROR for a lease
                # file of invalid JSON. The address is one field of the
                # records, so its guests show none rather than fail all.
                logger.warning("reading the DHCP leases of network %s on %s "
                               "failed, so its guests show no address: %s",
                               names[index], self.host, error.message)
                entries = ()
            index += 1
            for entry in entries:
                if entry.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                    leases.setdefault(entry["mac"].lower(), entry["ipaddr"])
        return leases

    def _kept_networks(self, network_names):
        """Return {name: virNetwork} of the active networks without a call,
        or None.

        The handles are those this connection kept from its last listing,
        else handles made from the names and UUIDs of this process's last
        listing on the same URI (see network_handles). Either must have
        every name, be at most NETWORK_HANDLES_MAX_AGE_SECONDS old, and
        come from a listing made after the last network change seen
        (description_cache's network_generation).
        """
        cache = description_cache.descriptions
        uri = self._description_cache_uri()
        generation = cache.network_generation(uri)
        listing = self._network_handles
        if (listing is None or listing[2] != generation
                or not _covers(listing[0], listing[1], network_names)):
            identities = cache.active_networks(uri)
            if identities is None or not _covers(*identities, network_names):
                return None
            listing = self._handles_from_identities(*identities, generation)
            if listing is None:
                return None
            self._network_handles = listing
        return listing[1]

    def _handles_from_identities(self, listed_at, uuids, generation):
        handles = {}
        for name, uuid in uuids.items():
            network = None
            if uuid is not None:
                network = network_handles.network_handle(self.conn, name,
                                                         uuid)
                if network is None:
                    return None
            handles[name] = network
        return listed_at, handles, generation

    def _list_active_networks(self, network_names):
        """List the active networks, and keep their handles for the later
        requests on this connection and their UUIDs for the later
        connections of this process.

        Returns {name: virNetwork}, with None for each of
        ``network_names`` that no active network has, so that the lists
        after it do not list again for a stopped network.
        """
        cache = description_cache.descriptions
        uri = self._description_cache_uri()
        generation = cache.network_generation(uri)
        listed_at = time.monotonic()
        active = {network.name(): network for network in self._call(
            self.conn.listAllNetworks,
            libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE)}
        identities = {name: network.UUID()
                      for name, network in active.items()}
        for name in network_names.difference(active):
            active[name] = identities[name] = None
        self._network_handles = (listed_at, active, generation)
        cache.store_active_networks(uri, listed_at, identities, generation)
        return active

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
        try:
            cached = cache.entries(uri)
            records, with_nics, network_names = self._listed_records(
                listing, cached, uri, generation)
        finally:
            # After an error, the handles that the pass did not reach.
            free_domain_handles(handle for handle, _ in listing)

        # What remains in ``cached`` belongs to guests deleted since the
        # last list.
        if cached:
            cache.discard(uri, cached)
        leases = self._leases(network_names) if with_nics else {}
        if leases:
            for record, macs in with_nics:
                record["ip"] = _first_address(macs, leases)
        records.sort(key=operator.itemgetter("id"))
        return records

    def _listed_records(self, listing, cached, uri, generation):
        """Build the records of the domains of ``listing``, without
        addresses, from the cached entries or the domain XML.

        Takes each (handle, stats) off ``listing`` and frees the handle, and
        takes each entry it uses out of ``cached``. Returns the records, the
        (record, MACs) pairs of the guests with NICs when the driver has
        DHCP leases, and the names of those guests' networks.
        """
        cache = description_cache.descriptions
        now = cache.clock()
        max_age = cache.max_age
        with_leases = not DRIVER_GAPS[self.driver].get("dhcp_leases")
        # Only QEMU's stats have more than the state.
        detailed = self.driver == "qemu"
        records = []
        with_nics = []
        network_names = set()
        hostname = None
        hostname_read = False

        # Popping from the end takes the domains in listing order. Each
        # (handle, stats) pair is dropped and its handle freed once its
        # record is built. Freed objects lower the garbage collector's
        # allocation count, so the records built later trigger fewer
        # collections.
        listing.reverse()
        while listing:
            handle, stats = listing.pop()
            # The virDomain made from the handle, which then frees it. Only
            # a cache miss and an LXC state need one.
            domain = None
            try:
                # The raw 16 UUID bytes: 0.5 us a call on the test driver,
                # against 1 us for the formatted UUID string.
                uuid = domain_handle_uuid(handle)
                native_state = stats.get("state.state")
                # An active domain gets a new ID on every start, which also
                # rewrites the live XML. Only an inactive domain can be
                # renamed (libvirt 9.0's QEMU and test drivers reject
                # renaming an active one), and its ID is always -1. So the
                # fingerprint contains the ID of an active domain and the
                # name of an inactive one, which saves a read of the handle
                # per guest. An LXC domain without a listed state may be
                # either.
                if native_state == libvirt.VIR_DOMAIN_SHUTOFF:
                    fingerprint = (domain_handle_name(handle), native_state)
                elif native_state is None:
                    domain_id = domain_handle_id(handle)
                    fingerprint = (domain_id, domain_handle_name(handle),
                                   native_state)
                else:
                    fingerprint = (domain_handle_id(handle), native_state)
                if detailed:
                    fingerprint += _stats_fingerprint(stats)
                entry = cached.pop(uuid, None)
                # An entry is valid while its fingerprint matches and it is
                # at most max_age seconds old.
                if (entry is None or entry.fingerprint != fingerprint
                        or now - entry.stored_at > max_age):
                    domain = wrap_domain_handle(self.conn, handle)
                    entry = self._read_description(domain, stats,
                                                   fingerprint)
                    cache.put(uri, uuid, entry, generation)
                if native_state is not None:
                    state = STATE_MAP.get(native_state, "UNKNOWN")
                elif domain_id == -1:
                    state = "STOPPED"
                else:
                    # An active LXC domain that is neither running nor
                    # paused (shutting down, crashed) costs one call.
                    if domain is None:
                        domain = wrap_domain_handle(self.conn, handle)
                    state = self._state(domain)
            except errors.EntityNotFound:
                continue  # deleted since the listing
            finally:
                if domain is None:
                    free_domain_handle(handle)

            record = entry.record.copy()
            record["state"] = state
            if state != "STOPPED":
                if not hostname_read:
                    hostname = self._cached_hostname()
                    hostname_read = True
                record["host"] = hostname
            if detailed and stats.get("block.count"):
                sizes = dict(entry.disk_sizes)
                sizes.update(_stats_capacities(stats))
                record["hdd"] = _hdd_gib(entry.disk_targets, sizes)
            if with_leases and entry.macs:
                network_names.update(entry.networks)
                with_nics.append((record, entry.macs))
            records.append(record)
        return records, with_nics, network_names

    def _list_with_stats(self):
        """Return [(domain handle, stats)] for every domain in one to three
        calls.

        The caller owns the handles (see calls.DomainHandleListings).
        """
        listings = DomainHandleListings(self.conn)
        groups = self._stats_groups()
        if groups:
            return self._call(listings.getAllDomainStats, groups, 0)
        # LXC has no getAllDomainStats in libvirt 9.0, so the states come
        # from listings filtered by state: the running domains, then the
        # paused ones when an active domain is not running. An inactive
        # domain (ID -1) is stopped. list_guests reads the state of the
        # other active domains one by one.
        # NOTE: with the leases of one active network an LXC list makes 4
        # calls, and 5 when a container is paused; QEMU's makes 3. A list
        # that finds the networks of a listing less than
        # NETWORK_HANDLES_MAX_AGE_SECONDS old makes one call fewer (see
        # _kept_networks).
        handles = self._call(listings.listAllDomains, 0)
        try:
            running = self._listed_uuids(
                listings, libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING)
            paused = set()
            if any(domain_handle_id(handle) != -1
                   and domain_handle_uuid(handle) not in running
                   for handle in handles):
                paused = self._listed_uuids(
                    listings, libvirt.VIR_CONNECT_LIST_DOMAINS_PAUSED)
        except BaseException:
            free_domain_handles(handles)
            raise
        listing = []
        for handle in handles:
            uuid = domain_handle_uuid(handle)
            if uuid in running:
                stats = {"state.state": libvirt.VIR_DOMAIN_RUNNING}
            elif uuid in paused:
                stats = {"state.state": libvirt.VIR_DOMAIN_PAUSED}
            else:
                stats = {}
            listing.append((handle, stats))
        return listing

    def _listed_uuids(self, listings, flags):
        """Return the UUID bytes of the domains of one filtered listing."""
        handles = self._call(listings.listAllDomains, flags)
        try:
            return {domain_handle_uuid(handle) for handle in handles}
        finally:
            free_domain_handles(handles)

    def _read_description(self, domain, stats, fingerprint):
        """Read the domain's XML and the disk sizes that ``stats`` lacks."""
        description = self._describe(domain)
        fields = _definition_fields(description)
        disk_targets = _disk_targets(description)
        macs = _macs(description)
        disk_sizes = self._disk_sizes(domain, description, stats)
        return description_cache.CachedDescription(
            fingerprint=fingerprint,
            stored_at=description_cache.descriptions.clock(),
            fields=fields,
            disk_targets=disk_targets,
            macs=macs,
            networks=_lease_networks(description),
            disk_sizes=disk_sizes,
            record=_assemble_record(fields, disk_targets, macs, None,
                                    disk_sizes, {}, None))

    def _cached_hostname(self):
        uri = self._description_cache_uri()
        hostname = description_cache.descriptions.hostname(uri)
        if hostname is None:
            hostname = self._hostname()
            description_cache.descriptions.store_hostname(uri, hostname)
        return hostname

    def get_guest(self, guest_id):
        return self._guest_from_domain(self._domain(guest_id))


def _covers(listed_at, networks, network_names):
    """Tell whether a listing of ``networks`` made at ``listed_at`` is at
    most NETWORK_HANDLES_MAX_AGE_SECONDS old and has every name."""
    return (time.monotonic() - listed_at <= NETWORK_HANDLES_MAX_AGE_SECONDS
            and network_names.issubset(networks))


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
        networks=_lease_networks(description))


def _stats_fingerprint(stats):
    """Return the QEMU bulk stats whose change means the domain's
    definition may have changed: vCPUs, memory and the disks' paths."""
    get = stats.get
    fingerprint = (get("vcpu.current"), get("vcpu.maximum"),
                   get("balloon.maximum"))
    block_count = get("block.count")
    if not block_count:
        return fingerprint
    paths = []
    for index in range(block_count):
        paths.append(get("block.%d.name" % index))
        paths.append(get("block.%d.path" % index))
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


def _lease_networks(description):
    """Return the names of the libvirt networks that the NICs use.

    A NIC of type 'bridge' names a host bridge, not a network, so it has
    no network to ask for DHCP leases.
    """
    return tuple(interface.network for interface in description.interfaces
                 if interface.network
                 and interface.element.get("type") == "network")


def _assemble_record(fields, disk_targets, macs, state, disk_sizes, leases,
                     hostname):
    """Build a guest record from _definition_fields and the data of the
    request."""
    guest_id, name, cpus, memory, paravirtualized, tools = fields
    return {
        "id": guest_id,
        "name": name,
        "cpus": cpus,
        "memory": memory,
        "hdd": _hdd_gib(disk_targets, disk_sizes),
        "paravirtualized": paravirtualized,
        "tools_up_to_date": tools,
        "ip": _first_address(macs, leases),
        "state": state,
        "host": hostname if state != "STOPPED" else None,
    }


def _hdd_gib(disk_targets, disk_sizes):
    """Return the whole GiB of the disks' total size."""
    total = 0
    for target in disk_targets:
        total += disk_sizes.get(target, 0)
    return total // GIB


def _first_address(macs, leases):
    """Return the leased address of the first NIC that has one, or None."""
    for mac in macs:
        if mac in leases:
            return leases[mac]
    return None


def _stats_capacities(stats):
    """Map target device -> capacity in bytes from a domain's block stats."""
    capacities = {}
    for index in range(stats.get("block.count", 0)):
        name = stats.get("block.%d.name" % index)
        capacity = stats.get("block.%d.capacity" % index)
        if name and capacity is not None:
            capacities[name] = capacity
    return capacities
