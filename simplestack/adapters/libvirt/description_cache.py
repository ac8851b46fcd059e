"""Process-wide cache of parsed domain definitions for guest lists.

libvirt 9.0 has no bulk call for domain XML, and the bulk statistics of the
test driver contain the state only, so a guest list that read every domain's
XML would cost one call per guest. The list instead keeps each domain's
parsed XML and the disk sizes it read per guest, keyed by connection URI
and the domain's raw 16-byte UUID (virDomainGetUUID). It reads the XML
again when an entry is missing, older than MAX_AGE_SECONDS, or no longer
matches the domain's fingerprint. That is the ID of an active domain or
the name of an inactive one, and from the bulk call the state and, on
QEMU, vCPUs, memory and disk paths.

The adapter drops the entry of a domain on every call that can change it
(see CallsMixin._call), so changes made through this process show at
once. The cache records such calls in the change log of shared_changes
too, and reads the records of the other service processes of the machine
at the start of each list, so their changes show at once as well (except
on the test driver, whose domains live in each process). A change made
elsewhere that leaves the fingerprint as it was (a MAC edited with virsh,
a guest agent that connects) shows after at most MAX_AGE_SECONDS.

The cache also keeps the names and UUIDs of the active networks that the
last listing of each URI found, from which guest lists make network
handles without a call (see network_handles). A network change made
through any service process drops them, through the same change log.
"""

import collections
import threading
import time

from simplestack.adapters.libvirt import shared_changes

#: Maximum age of an entry, in seconds. It bounds how long a list can show a
#: definition that was changed outside the service.
MAX_AGE_SECONDS = 10.0

#: The change log record that stands for a change of the networks of a URI.
#: No domain is likely to have this UUID, and one that had it would only
#: drop the kept networks along with its own entry.
NETWORKS_CHANGED = b"\xff" * 16

#: Prefix of the URIs of libvirt's test driver, whose hosts live in each
#: process, so that no other process changes them.
TEST_DRIVER_URI_PREFIX = "test:"


class CachedDescription(collections.namedtuple("CachedDescription", (
        "fingerprint", "stored_at", "fields", "disk_targets", "macs",
        "networks", "disk_sizes", "record"))):
    """The parts of a parsed domain definition that a guest record uses,
    with the disk sizes read for it.

    ``fields`` is the tuple of guest_records._definition_fields,
    ``disk_targets`` and ``macs`` the disks (CD-ROMs excluded) and NICs in
    XML order, ``networks`` the names of the networks of the NICs.
    ``record`` is the guest record built from these parts, with ``state``,
    ``host`` and ``ip`` None. A list copies it and sets those three, so it
    must not be changed in place.
    """

    __slots__ = ()


class DescriptionCache:
    """Parsed domain definitions per URI and domain UUID, safe across
    threads.

    A generation number per URI shows a list whether a domain of that URI
    was invalidated while it read XML, so that it never stores a definition
    that was read before a change.
    """

    def __init__(self, max_age=MAX_AGE_SECONDS, clock=time.monotonic,
                 change_log=None):
        self.max_age = max_age
        self.clock = clock
        # The shared_changes.ChangeLog of the service processes, or None.
        self.change_log = change_log
        self._lock = threading.Lock()
        # uri -> {domain UUID bytes: CachedDescription}
        self._entries = {}
        self._generations = {}
        # uri -> (stored_at, host name)
        self._hostnames = {}
        # uri -> (time.monotonic() of the listing, {name: UUID bytes})
        self._networks = {}
        # uri -> count of the network changes seen, see network_generation
        self._network_generations = {}

    def generation(self, uri):
        """Drop the entries of the domains that other processes changed;
        return the generation of ``uri``, for ``put``."""
        self._apply_shared_changes(uri)
        with self._lock:
            return self._generations.get(uri, 0)

    def _apply_shared_changes(self, uri):
        """Drop what the other processes changed since the last call."""
        if not self._shares_changes(uri):
            return
        changed = self.change_log.changed_domains(uri)
        if NETWORKS_CHANGED in changed:
            changed.discard(NETWORKS_CHANGED)
            self._drop_networks(uri)
        if changed:
            self._drop(uri, changed)

    def _shares_changes(self, uri):
        return self.change_log is not None and not uri.startswith(
            TEST_DRIVER_URI_PREFIX)

    def _drop(self, uri, uuids):
        """Drop the entries of ``uuids``, or all of ``uri`` when
        shared_changes.ALL_DOMAINS is among them, as invalidate does."""
        with self._lock:
            self._generations[uri] = self._generations.get(uri, 0) + 1
            if shared_changes.ALL_DOMAINS in uuids:
                self._entries.pop(uri, None)
                return
            entries = self._entries.get(uri, {})
            for uuid in uuids:
                entries.pop(uuid, None)

    def entries(self, uri):
        """Return a copy of the entries of ``uri``, {uuid: entry}."""
        with self._lock:
            return dict(self._entries.get(uri, ()))

    def discard(self, uri, uuids):
        """Drop the entries of the domains of ``uri`` in ``uuids``.

        A list discards the domains it did not find, so that the cache
        contains at most the domains of the last list.
        """
        with self._lock:
            entries = self._entries.get(uri, {})
            for uuid in uuids:
                entries.pop(uuid, None)

    def put(self, uri, uuid, entry, generation):
        """Store ``entry`` unless a domain of ``uri`` was invalidated since
        ``generation`` was read."""
        with self._lock:
            if self._generations.get(uri, 0) == generation:
                self._entries.setdefault(uri, {})[uuid] = entry

    def invalidate(self, uri, uuid=None):
        """Drop the entry of one domain (its UUID bytes), or of every
        domain of ``uri``, in this process and in the others."""
        self._drop(uri, {shared_changes.ALL_DOMAINS if uuid is None else uuid})
        if self._shares_changes(uri):
            self.change_log.record(uri, uuid)

    def hostname(self, uri):
        """Return the host name stored for ``uri``, or None when it is
        missing or older than ``max_age``."""
        with self._lock:
            stored = self._hostnames.get(uri)
        if stored is None or self.clock() - stored[0] > self.max_age:
            return None
        return stored[1]

    def store_hostname(self, uri, hostname):
        with self._lock:
            self._hostnames[uri] = (self.clock(), hostname)

    def network_generation(self, uri):
        """Return the count of the network changes of ``uri`` seen so far,
        those of the other processes included.

        A listing of the networks, or handles kept from it, is valid while
        the count is the one read before the listing.
        """
        self._apply_shared_changes(uri)
        with self._lock:
            return self._network_generations.get(uri, 0)

    def active_networks(self, uri):
        """Return (listed_at, {name: UUID bytes}) of the last listing of
        the active networks of ``uri``, or None. The caller checks the age:
        ``listed_at`` is a time.monotonic() value."""
        with self._lock:
            return self._networks.get(uri)

    def store_active_networks(self, uri, listed_at, identities, generation):
        """Keep a listing unless a network of ``uri`` changed since
        ``generation`` was read."""
        with self._lock:
            if self._network_generations.get(uri, 0) == generation:
                self._networks[uri] = (listed_at, identities)

    def discard_active_networks(self, uri):
        """Drop the listing of the networks of ``uri``, in this process
        and in the others."""
        self._drop_networks(uri)
        if self._shares_changes(uri):
            self.change_log.record(uri, NETWORKS_CHANGED)

    def _drop_networks(self, uri):
        with self._lock:
            self._network_generations[uri] = (
                self._network_generations.get(uri, 0) + 1)
            self._networks.pop(uri, None)


#: The cache that every LibvirtAdapter of this process shares.
descriptions = DescriptionCache(change_log=shared_changes.ChangeLog())
