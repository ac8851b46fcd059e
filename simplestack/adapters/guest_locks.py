"""Locks that serialize the device changes of one guest within this process.

Adding a device reads the guest's devices, picks a free slot or notes the
devices that exist, and writes. Two concurrent adds on one guest
would pick the same slot, or each take the other's device for its own, so
each add holds the guest's lock from the first read to the last.

NOTE: the locks live in this process only. Two service processes, or
another client of the hypervisor, can still change a guest at the same
time.
"""

import contextlib
import threading
import weakref

# Key -> RLock. An entry lives while a request holds or waits for its lock,
# so the map does not grow with every guest ever changed.
_locks = weakref.WeakValueDictionary()
_locks_lock = threading.Lock()


@contextlib.contextmanager
def guest_lock(*key):
    """Hold the lock of the guest that ``key`` names, such as (type name,
    host, guest id); parts that are strings are compared case-insensitively."""
    key = tuple(part.lower() if isinstance(part, str) else part
                for part in key)
    with _locks_lock:
        lock = _locks.get(key)
        if lock is None:
            lock = threading.RLock()
            _locks[key] = lock
    with lock:
        yield
