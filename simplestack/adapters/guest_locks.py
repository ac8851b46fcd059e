"""Locks that serialize the changes of one guest, or the uses of one guest
name, across the service processes of the machine.

Adding a device reads the guest's devices, picks a free slot or notes the
devices that exist, and writes. Two concurrent adds on one guest
would pick the same slot, or each take the other's device for its own, so
each add holds the guest's lock from the first read to the last. Where the
hypervisor allows several guests with one name, a request holds the lock
of the name from the check that it is free to the creation.

production.ini runs several gunicorn workers, so a lock is an RLock in the
process and a POSIX record lock (fcntl(2) F_SETLKW, through fcntl.lockf)
on one byte of LOCK_FILE in shared_folder.SHARED_DIR, at an offset taken
from the key's SHA-256 digest. The kernel releases record locks when their
process exits, however it exits.

NOTE: the locks cover the processes of one machine and user with the same
temporary folder. A service process elsewhere, or another client of the
hypervisor, can still change a guest at the same time.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import weakref

from simplestack.adapters import shared_folder

logger = logging.getLogger(__name__)

#: The file of the record locks, in shared_folder.SHARED_DIR.
LOCK_FILE = "guest-locks"

#: Keys map to offsets below 2 ** OFFSET_BITS, within Linux's off_t.
OFFSET_BITS = 62

# Key -> RLock. An entry lives while a request holds or waits for its lock,
# so the map does not grow with every guest ever changed.
_locks = weakref.WeakValueDictionary()
_locks_lock = threading.Lock()
# Key -> depth of the holder's nested guest_lock calls. Only the thread that
# holds the key's RLock reads or writes the key's entry.
_depths = {}
# The descriptor of LOCK_FILE, opened once: closing any descriptor of the
# file would release every record lock of the process on it. None before
# the first use, False when the file cannot be used.
_descriptor = None
_descriptor_lock = threading.Lock()


def _forget_held_locks():
    # A child process of a holder does not hold the record locks, so it
    # must not take the holder's RLocks and depths for its own.
    global _locks, _locks_lock, _depths, _descriptor_lock
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
    """Hold the record lock of ``key`` against the other processes."""
    descriptor = _lock_descriptor()
    if descriptor is None:
        yield
        return
    digest = hashlib.sha256(repr(key).encode("utf-8")).digest()
    offset = int.from_bytes(digest[:8], "big") >> (64 - OFFSET_BITS)
    # NOTE: fcntl(2) fails with EDEADLK when two processes would wait for
    # each other's record locks, and the request then fails with a 500.
    fcntl.lockf(descriptor, fcntl.LOCK_EX, 1, offset)
    try:
        yield
    finally:
        fcntl.lockf(descriptor, fcntl.LOCK_UN, 1, offset)


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
