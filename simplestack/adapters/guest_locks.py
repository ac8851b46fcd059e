"""Locks that serialize the changes of one guest, or the uses of one guest
name, across the service processes of the machine.

Adding a device reads the guest's devices, picks a free slot or notes the
devices that exist, and writes. Two concurrent adds on one guest
would pick the same slot, or each take the other's device for its own, so
each add holds the guest's lock from the first read to the last. Where the
hypervisor allows several guests with one name, a request holds the lock
of the name from the check that it is free to the creation.

production.ini runs several gunicorn workers, so a lock is an RLock in the
process and an open file description lock (fcntl(2) F_OFD_SETLKW, Linux
3.15 and later) on one byte of LOCK_FILE in shared_folder.SHARED_DIR, at
an offset taken from the key's SHA-256 digest. The kernel releases such
locks when their process exits, however it exits. Traditional POSIX
record locks (fcntl.lockf) belong to a process, so the kernel's deadlock
detection failed requests with EDEADLK when two threaded workers each
held one lock and waited for the other's, though the holders did not
wait.

NOTE: the locks cover the processes of one machine and user with the same
temporary folder. A service process elsewhere, or another client of the
hypervisor, can still change a guest at the same time.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import struct
import threading
import weakref

from simplestack.adapters import shared_folder

logger = logging.getLogger(__name__)

#: The file of the locks, in shared_folder.SHARED_DIR.
LOCK_FILE = "guest-locks"

#: Keys map to offsets below 2 ** OFFSET_BITS, within Linux's off_t.
OFFSET_BITS = 62

#: Linux's struct flock: l_type, l_whence, l_start, l_len, l_pid, padding.
FLOCK_STRUCT = struct.Struct("hhqqi4x")

# Key -> RLock. An entry lives while a request holds or waits for its lock,
# so the map does not grow with every guest ever changed.
_locks = weakref.WeakValueDictionary()
_locks_lock = threading.Lock()
# Key -> depth of the holder's nested guest_lock calls. Only the thread that
# holds the key's RLock reads or writes the key's entry.
_depths = {}
# The descriptor of LOCK_FILE, opened once per process: the threads of the
# process share its locks, and the RLocks keep them apart. None before the
# first use, False when the file cannot be used.
_descriptor = None
_descriptor_lock = threading.Lock()


def _forget_held_locks():
    # A child process shares the parent's open file description, and with
    # it the parent's locks, so it opens the file again. It must not take
    # the parent's RLocks and depths for its own either.
    global _locks, _locks_lock, _depths, _descriptor, _descriptor_lock
    if _descriptor:
        # The parent's locks stay: its own descriptor keeps the open file
        # description.
        os.close(_descriptor)
    _descriptor = None
    _locks = weakref.WeakValueDictionary()
    _locks_lock = threading.Lock()
    _depths = {}
    _descriptor_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_held_locks)


@contextlib.contextmanager
def guest_lock(*key):
    """Hold the lock of the guest that ``key`` names, such as (type name,
    host, guest id); parts that are strings are compared case-insensitively.
    The lock is reentrant within a thread."""
    key = tuple(part.lower() if isinstance(part, str) else part
                for part in key)
    with _locks_lock:
        lock = _locks.get(key)
        if lock is None:
            lock = threading.RLock()
            _locks[key] = lock
    with lock:
        if key in _depths:
            _depths[key] += 1
            try:
                yield
            finally:
                _depths[key] -= 1
            return
        with _process_lock(key):
            _depths[key] = 1
            try:
                yield
            finally:
                del _depths[key]


def name_lock(type_name, host, name, kind="guest"):
    """Return a context manager that holds the lock of the ``kind`` name
    ``name`` on the host, or does nothing when ``name`` is not a string."""
    if not isinstance(name, str):
        return contextlib.nullcontext()
    return guest_lock(type_name, host, kind, "name", name)


@contextlib.contextmanager
def _process_lock(key):
    """Hold the lock of ``key`` against the other processes."""
    descriptor = _lock_descriptor()
    if descriptor is None:
        yield
        return
    digest = hashlib.sha256(repr(key).encode("utf-8")).digest()
    offset = int.from_bytes(digest[:8], "big") >> (64 - OFFSET_BITS)
    _set_lock(descriptor, fcntl.F_WRLCK, offset)
    try:
        yield
    finally:
        _set_lock(descriptor, fcntl.F_UNLCK, offset)


def _set_lock(descriptor, lock_type, offset):
    """Take (F_WRLCK, waiting) or release (F_UNLCK) the byte at ``offset``."""
    fcntl.fcntl(descriptor, fcntl.F_OFD_SETLKW, FLOCK_STRUCT.pack(
        lock_type, os.SEEK_SET, offset, 1, 0))


def _lock_descriptor():
    """Return the descriptor of LOCK_FILE, or None when it cannot be used."""
    global _descriptor
    with _descriptor_lock:
        if _descriptor is None:
            _descriptor = _open_lock_file()
        return _descriptor or None


def _open_lock_file():
    folder = shared_folder.private_folder()
    if folder is None:
        return False
    path = os.path.join(folder, LOCK_FILE)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                       | os.O_CLOEXEC, 0o600)
    except OSError as error:
        shared_folder.warn_once("guest locks", "opening %s failed" % path,
                                error)
        return False
