"""Process-wide cache of parsed domain definitions for guest lists.

libvirt 9.0 has no bulk call for domain XML, and the bulk statistics of the
test driver hold the state only, so a guest list that read every domain's
XML would cost one call per guest. The list instead keeps each domain's
parsed XML and the disk sizes it read per guest, keyed by connection URI
and domain UUID. It reads the XML again when an entry is missing, older
than MAX_AGE_SECONDS, or no longer matches the domain's fingerprint from
the bulk call (domain ID, state and, on QEMU, vCPUs, memory and disk
paths).

The adapter drops the entry of a domain on every call that can change it
(see CallsMixin._call), so changes made through this process show at
once. A change made elsewhere that leaves the fingerprint as it was (a MAC
edited with virsh, a guest agent that connects) shows after at most
MAX_AGE_SECONDS.
"""

import threading
import time

#: Maximum age of an entry, in seconds. It bounds how long a list can show a
#: definition that was changed outside this process.
MAX_AGE_SECONDS = 10.0


class CachedDescription:
    """A parsed domain definition with the disk sizes read for it."""

    __slots__ = ("fingerprint", "stored_at", "description", "disk_sizes")

    def __init__(self, fingerprint, stored_at, description, disk_sizes):
        self.fingerprint = fingerprint
        self.stored_at = stored_at
        self.description = description
        self.disk_sizes = disk_sizes


class DescriptionCache:
    """Parsed domain definitions per (URI, domain UUID), safe across threads.

    A generation number per URI shows a list whether a domain of that URI
    changed while it read XML, so that it never stores a definition that
    was read before a change.
    """

    def __init__(self, max_age=MAX_AGE_SECONDS, clock=time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._entries = {}
        self._generations = {}
        self._hostnames = {}

    def generation(self, uri):
        with self._lock:
            return self._generations.get(uri, 0)

    def get(self, uri, uuid, fingerprint):
        """Return the entry for the domain, or None when it is missing,
        expired or has another fingerprint."""
        with self._lock:
            entry = self._entries.get((uri, uuid))
        if entry is None or entry.fingerprint != fingerprint:
            return None
        if self.clock() - entry.stored_at > self.max_age:
            return None
        return entry

    def put(self, uri, uuid, entry, generation):
        """Store ``entry`` unless a domain of ``uri`` was invalidated since
        ``generation`` was read."""
        with self._lock:
            if self._generations.get(uri, 0) == generation:
                self._entries[(uri, uuid)] = entry

    def invalidate(self, uri, uuid=None):
        """Drop the entry of one domain, or of every domain of ``uri``."""
        with self._lock:
            self._generations[uri] = self._generations.get(uri, 0) + 1
            if uuid is not None:
                self._entries.pop((uri, uuid.lower()), None)
                return
            for key in [key for key in self._entries if key[0] == uri]:
                del self._entries[key]

    def retain(self, uri, uuids):
        """Drop the entries of ``uri`` whose domain is not in ``uuids``, so
        that the cache holds at most the domains of the last list."""
        with self._lock:
            for key in [key for key in self._entries
                        if key[0] == uri and key[1] not in uuids]:
                del self._entries[key]

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


#: The cache that every LibvirtAdapter of this process shares.
descriptions = DescriptionCache()
