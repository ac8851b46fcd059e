"""Marks of the exports in progress, visible to every service process of
this user on the machine: gunicorn's workers, and other instances.

production.ini runs several gunicorn workers, and a change of a guest can
reach another worker than the guest's export. Each guest has two lock
files in MARKS_DIR, named after its lower-case UUID:

- ``<uuid>.export``: each export holds a shared flock(2) lock on it while it
  streams, and a change tries an exclusive one without waiting. A change
  that does not get it meets an export in another process.
- ``<uuid>.change``: a change holds an exclusive lock on it, so the changes
  of one guest in different processes wait for each other, as they do in
  one process. A change that holds it and misses the export lock can only
  have met an export.

flock(2) locks belong to an open file description, so the kernel releases
them when the process that holds them exits, however it exits. The files
stay, empty, until the guest is deleted through the service. MARKS_DIR is
shared_folder's folder, which holds other files that the processes share.

NOTE: the marks cover the processes of one machine and user with the same
temporary folder (tempfile.gettempdir(), so TMPDIR). A service process
elsewhere, or another libvirt client, can still start a guest whose disk
is being exported.
"""

import contextlib
import fcntl
import logging
import os
import threading

from simplestack.adapters import shared_folder

logger = logging.getLogger(__name__)

#: The folder of the lock files, private to the user of the process.
MARKS_DIR = shared_folder.SHARED_DIR

# Per thread, key -> depth of the changes of that guest that hold its change
# marks. A change may run inside another change of the same guest, because
# the in-process lock is reentrant, and a second flock would wait for the
# first.
_change_depths = threading.local()


class ExportInProgress(Exception):
    """An export of the guest's disk streams in another process."""


def _warn_once(reason, error):
    shared_folder.warn_once("export marks", reason, error)


def _open_mark(key, kind):
    """Return a new descriptor of the guest's ``kind`` lock file, or None
    when the file cannot be opened."""
    folder = shared_folder.private_folder()
    if folder is None:
        return None
    path = os.path.join(folder, "%s.%s" % (key, kind))
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                       | os.O_CLOEXEC, 0o600)
    except OSError as error:
        _warn_once("opening %s failed" % path, error)
        return None


def hold_export_mark(key):
    """Take the shared export lock of the guest ``key`` (a lower-case
    UUID); return the function that releases it.

    Waits while a change of the guest runs in another process, so take it
    before reading the guest's state.
    """
    descriptor = _open_mark(key, "export")
    if descriptor is None:
        return lambda: None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)
    except BaseException:
        os.close(descriptor)
        raise
    released = []
    released_lock = threading.Lock()

    def release():
        with released_lock:
            if released:
                return
            released.append(True)
        os.close(descriptor)

    return release


@contextlib.contextmanager
def change_marks(key):
    """Hold the change lock and the exclusive export lock of the guest
    ``key``, a lower-case UUID.

    Raises ExportInProgress when an export of the guest holds the export
    lock in another process.
    """
    depths = getattr(_change_depths, "by_key", None)
    if depths is None:
        depths = _change_depths.by_key = {}
    if depths.get(key):
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return

    with contextlib.ExitStack() as stack:
        change = _open_mark(key, "change")
        export = _open_mark(key, "export") if change is not None else None
        for descriptor in (change, export):
            if descriptor is not None:
                stack.callback(os.close, descriptor)
        if export is not None:
            fcntl.flock(change, fcntl.LOCK_EX)
            try:
                fcntl.flock(export, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ExportInProgress(key) from None
        depths[key] = 1
        try:
            yield
        finally:
            del depths[key]


def remove_marks(key):
    """Remove the lock files of the deleted guest ``key``, a lower-case
    UUID. Call it while holding change_marks, so no export can start."""
    folder = shared_folder.private_folder()
    if folder is None:
        return
    for kind in ("export", "change"):
        try:
            os.remove(os.path.join(folder, "%s.%s" % (key, kind)))
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("removing the export lock file of deleted guest "
                           "%s failed: %s", key, error)
