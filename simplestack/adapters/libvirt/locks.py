"""Locks that serialize the changes to one guest within this process.

A device change reads the domain XML, picks a free target device, USB port
or volume name from it and then attaches the device. Two concurrent
changes of one guest would pick the same one, so each change holds the
guest's lock from the read to the last write.

NOTE: the locks live in this process only. Two service processes, or
another libvirt client, can still change a guest at the same time, and
then libvirt's own checks reject the later change (409 Conflict or 502).
"""

import threading

from simplestack.adapters.guest_locks import guest_lock

# MACs must be unique across guests, so choosing and attaching a MAC is
# serialized across all guests of the process.
_mac_lock = threading.Lock()


class LocksMixin:
    """Methods of LibvirtAdapter that take the per-guest locks."""

    def _guest_lock(self, domain):
        """Return a context manager that holds ``domain``'s lock.

        Read the domain XML only after entering it: a description read
        before may be stale by then.
        """
        return guest_lock(domain.UUIDString())

    @staticmethod
    def _mac_lock():
        return _mac_lock
