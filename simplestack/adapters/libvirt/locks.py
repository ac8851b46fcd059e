"""Locks that serialize the changes to one guest within this process.

A device change reads the domain XML, picks a free target device, USB port
or volume name from it and then attaches the device. Two concurrent
changes of one guest would pick the same one, so each change holds the
guest's lock from the read to the last write.

NOTE: the locks live in this process only. Two service processes, or
another libvirt client, can still change a guest at the same time, and
then libvirt's own checks reject the later change (409 Conflict or 502).
"""

import collections
import contextlib
import threading

from simplestack import errors
from simplestack.adapters.guest_locks import guest_lock

# MACs must be unique across guests, so choosing and attaching a MAC is
# serialized across all guests of the process.
_mac_lock = threading.Lock()

# Lower-case domain UUID -> exports of the guest's disk in progress in this
# process. An export begins while it holds the guest's lock, so a change
# that holds the lock finds every export that began before it.
_exports = collections.Counter()
_exports_lock = threading.Lock()


@contextlib.contextmanager
def unexported_guest_lock(domain_uuid):
    """Hold the guest's lock; raise InvalidState while its disk is being
    exported, because a change could alter the image halfway through."""
    with guest_lock(domain_uuid):
        with _exports_lock:
            exporting = _exports[domain_uuid.lower()] > 0
        if exporting:
            raise errors.InvalidState(
                "cannot change guest %s while an export of its disk is in "
                "progress; try again when the export ends"
                % domain_uuid.lower())
        yield


def begin_export(domain_uuid):
    """Count an export of the guest's disk; return the function that ends
    it, which may be called more than once. Call with the guest's lock
    held."""
    key = domain_uuid.lower()
    with _exports_lock:
        _exports[key] += 1
    ended = []

    def end_export():
        with _exports_lock:
            if ended:
                return
            ended.append(True)
            _exports[key] -= 1
            if _exports[key] <= 0:
                del _exports[key]

    return end_export


class LocksMixin:
    """Methods of LibvirtAdapter that take the per-guest locks."""

    def _guest_lock(self, domain):
        """Return a context manager that holds ``domain``'s lock.

        Read the domain XML only after entering it: a description read
        before may be stale by then. Entering it raises InvalidState while
        an export of the guest's disk is in progress in this process.
        """
        return unexported_guest_lock(domain.UUIDString())

    @staticmethod
    def _mac_lock():
        return _mac_lock
