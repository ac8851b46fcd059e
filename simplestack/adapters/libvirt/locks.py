"""Locks that serialize the changes to one guest.

A device change reads the domain XML, picks a free target device, USB port
or volume name from it and then attaches the device. Two concurrent
changes of one guest would pick the same one, so each change holds the
guest's lock from the read to the last write. The guest locks and the
marks of the exports in progress (export_marks) reach the other service
processes of the machine.

NOTE: another libvirt client can still change a guest at the same time,
and then libvirt's own checks reject the later change (409 Conflict or
502).
"""

import collections
import contextlib
import threading

from simplestack import errors
from simplestack.adapters.guest_locks import guest_lock
from simplestack.adapters.libvirt import export_marks
from simplestack.adapters.libvirt.constants import DRIVER_GAPS

#: The guest_lock key of MAC choices. MACs must be unique across guests, so
#: choosing and attaching a MAC is serialized across all guests, in the
#: service processes of the machine. No guest UUID has this form.
MAC_LOCK_KEY = ("libvirt", "macs")

# Lower-case domain UUID -> exports of the guest's disk in progress in this
# process. An export begins while it holds the guest's lock, so a change
# that holds the lock finds every export that began before it.
_exports = collections.Counter()
_exports_lock = threading.Lock()


@contextlib.contextmanager
def unexported_guest_lock(domain_uuid, exportable=True):
    """Hold the guest's lock; raise InvalidState while its disk is being
    exported, because a change could alter the image halfway through.

    ``exportable=False``, for a driver that cannot export, skips the marks
    of the other processes, which then never exist.
    """
    key = domain_uuid.lower()
    message = ("cannot change guest %s while an export of its disk is in "
               "progress; try again when the export ends" % key)
    with guest_lock(domain_uuid):
        with _exports_lock:
            exporting = _exports[key] > 0
        if exporting:
            raise errors.InvalidState(message)
        with contextlib.ExitStack() as stack:
            try:
                if exportable:
                    stack.enter_context(export_marks.change_marks(key))
            except export_marks.ExportInProgress:
                raise errors.InvalidState(message) from None
            yield


def begin_export(domain_uuid):
    """Count an export of the guest's disk and mark it for the other
    processes. Return the function that ends it, which may be called more
    than once.

    Call with the guest's lock held and before reading the guest's state,
    because the mark waits for a change of the guest in another process.
    """
    key = domain_uuid.lower()
    release_mark = export_marks.hold_export_mark(key)
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
        release_mark()

    return end_export


class LocksMixin:
    """Methods of LibvirtAdapter that take the per-guest locks."""

    def _guest_lock(self, domain):
        """Return a context manager that holds ``domain``'s lock.

        Read the domain XML only after entering it: a description read
        before may be stale by then. Entering it raises InvalidState while
        an export of the guest's disk is in progress in a service process
        of this machine.
        """
        exportable = not DRIVER_GAPS[self.driver].get("volume_stream")
        return unexported_guest_lock(domain.UUIDString(), exportable)

    @staticmethod
    def _mac_lock():
        """Return a context manager that holds the lock of MAC choices.
        Take it inside a guest's lock, never the other way round."""
        return guest_lock(*MAC_LOCK_KEY)
