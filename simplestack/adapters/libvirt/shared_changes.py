"""Domains changed through any service process, for the guest list caches.

Each process caches parsed domain XML (description_cache) and drops a
domain's entry on every call that can change the domain. production.ini
runs several gunicorn workers, so the others must learn of the change too.
Each process appends the raw 16-byte UUID of every domain that it may have
changed to a log file per connection URI, and each guest list first reads
the records added since its last read and drops their entries. A record of
16 zero bytes (ALL_DOMAINS) stands for every domain of the URI: a pool or
volume call, which can change disk sizes.

The logs are files in shared_folder.SHARED_DIR, so they reach the
processes of one machine and user with the same temporary folder. A log starts again
from empty once it reaches MAX_LOG_BYTES, and a reader whose offset lies
past its end then drops every entry of the URI.
NOTE: a process that lists nothing while the others write more than its
offset after such a restart misses those records. Its entries then still
expire after description_cache.MAX_AGE_SECONDS.
"""

import fcntl
import hashlib
import logging
import os
import threading

from simplestack.adapters import shared_folder

logger = logging.getLogger(__name__)

#: Size of a record: a domain's raw UUID.
RECORD_BYTES = 16
#: The record that stands for every domain of the URI.
ALL_DOMAINS = bytes(RECORD_BYTES)
#: Size at which a log starts again from empty: 65536 records.
MAX_LOG_BYTES = 1024 * 1024
#: End of the name of a log file.
LOG_SUFFIX = ".list-changes"


class ChangeLog:
    """The change logs of this process, one per connection URI."""

    def __init__(self):
        self._lock = threading.Lock()
        # uri -> descriptor of the log, or None when it cannot be used.
        self._descriptors = {}
        # uri -> bytes of the log read so far.
        self._offsets = {}
        self._warned = False
        os.register_at_fork(after_in_child=self._forget_descriptors)

    def _forget_descriptors(self):
        # A child shares the parent's open file descriptions, and with them
        # the parent's flock locks, so it opens the logs again.
        for descriptor in self._descriptors.values():
            if descriptor is not None:
                os.close(descriptor)
        self._descriptors = {}
        self._offsets = {}
        self._lock = threading.Lock()

    def record(self, uri, uuid=None):
        """Append that the domain with the raw UUID ``uuid`` of ``uri``,
        or every domain when ``uuid`` is None, may have changed."""
        with self._lock:
            descriptor = self._descriptor(uri)
        if descriptor is None:
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                if os.fstat(descriptor).st_size >= MAX_LOG_BYTES:
                    os.ftruncate(descriptor, 0)
                # O_APPEND: one write of one record, whole.
                os.write(descriptor, uuid or ALL_DOMAINS)
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        except OSError as error:
            self._warn("writing the change log of %s failed" % uri, error)

    def changed_domains(self, uri):
        """Return the set of raw UUIDs recorded for ``uri`` since the last
        call, with ALL_DOMAINS in it when every entry must go."""
        with self._lock:
            descriptor = self._descriptor(uri)
            if descriptor is None:
                return set()
            offset = self._offsets[uri]
            try:
                size = os.fstat(descriptor).st_size
                if size == offset:
                    return set()
                restarted = size < offset
                if restarted:
                    offset = 0
                data = os.pread(descriptor, size - offset, offset)
            except OSError as error:
                self._warn("reading the change log of %s failed" % uri,
                           error)
                return {ALL_DOMAINS}
            # A record that another process is still writing is read next
            # time.
            whole = len(data) - len(data) % RECORD_BYTES
            self._offsets[uri] = offset + whole
        changed = {data[start:start + RECORD_BYTES]
                   for start in range(0, whole, RECORD_BYTES)}
        if restarted:
            changed.add(ALL_DOMAINS)
        return changed

    def _descriptor(self, uri):
        """Return the descriptor of the log of ``uri``, opened on first
        use; the caller holds the lock."""
        if uri in self._descriptors:
            return self._descriptors[uri]
        descriptor = None
        folder = shared_folder.private_folder()
        if folder is not None:
            digest = hashlib.sha256(uri.encode("utf-8")).hexdigest()[:32]
            path = os.path.join(folder, digest + LOG_SUFFIX)
            try:
                descriptor = os.open(path, os.O_RDWR | os.O_CREAT
                                     | os.O_APPEND | os.O_NOFOLLOW
                                     | os.O_CLOEXEC, 0o600)
                # Nothing of this URI is cached yet, so the records so far
                # do not matter.
                self._offsets[uri] = os.fstat(descriptor).st_size
            except OSError as error:
                if descriptor is not None:
                    os.close(descriptor)
                    descriptor = None
                self._warn("opening %s failed" % path, error)
        self._descriptors[uri] = descriptor
        return descriptor

    def _warn(self, reason, error):
        if self._warned:
            return
        self._warned = True
        logger.warning("guest lists can miss a change made through another "
                       "service process until their cached entry of the "
                       "guest expires, because %s: %s", reason, error)
