"""Image streams: a per-process limit on those in progress, and the
reading ahead of exports.

A WSGI worker thread serves an export until its client has read the last
byte, and a client that stops reading holds the thread. Without a limit,
a few stalled clients would hold every thread and the service would stop
answering anything.
"""

import atexit
import ctypes
import logging
import os
import queue
import threading

from simplestack import errors, logs

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30

#: glibc's mallopt() parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Blocks of at least this size come from mmap() and go back to the kernel
#: when freed. It stays above the largest buffer of a streamed request
#: body: gunicorn 27.0.1 holds up to about 2 MiB at once per read.
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
#: Free memory above this size at the top of a heap goes back to the kernel:
#: twice the mmap threshold, the ratio glibc's own adjustment keeps.
TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES
#: Maximum number of malloc arenas of a process; glibc's default is 8 per
#: core. Each arena keeps up to TRIM_THRESHOLD_BYTES of free memory at its
#: top, which malloc_trim does not give back. The reading threads of
#: concurrent exports spread their chunks over many arenas, so a worker
#: kept up to about 8 MiB more per arena after a burst of exports.
ARENA_MAX = 2
#: Environment variables through which an operator sets these values; when
#: one is set, the service leaves them all alone.
MALLOC_ENVIRONMENT = ("GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_",
                      "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX")


def set_malloc_thresholds():
    """Set glibc's mmap and trim thresholds to fixed values and cap its
    arenas at ARENA_MAX; return True when all three were set.

    glibc raises its mmap threshold to the size of the largest block freed
    so far, and trims a heap whose free top grows past twice that size. An
    image stream passes through buffers of about 1 MiB of varying sizes
    (gunicorn's request body, http.client's responses), and under the
    moving thresholds many of them came from fresh pages. On a VM of 2
    cores with glibc 2.36, a thread that read 1 GiB through gunicorn's
    request body took 400000 to 860000 page faults and 1.2 to 2.2 s of CPU.
    With these thresholds it took at most 1400 faults and 0.4 to 0.5 s.
    tests/test_malloc_thresholds.py counts the faults of such a read.
    Does nothing on another C library or when MALLOC_ENVIRONMENT is set.
    """
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        libc_version = None
    if not libc_version or not libc_version.startswith("glibc"):
        return False
    if any(name in os.environ for name in MALLOC_ENVIRONMENT):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    done = (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
            and mallopt(M_ARENA_MAX, ARENA_MAX) == 1)
    if not done:
        logger.warning("setting glibc's malloc thresholds for image "
                       "streams failed")
    return done


class StreamSlots:
    """A counting semaphore for image streams that never blocks.

    Creating it also sets the process's malloc thresholds for streams
    (set_malloc_thresholds).
    """

    def __init__(self, limit):
        set_malloc_thresholds()
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    def acquire(self):
        """Take a slot, or raise ServiceUnavailable when none is free."""
        if not self._semaphore.acquire(blocking=False):
            raise errors.ServiceUnavailable(
                "%d image streams are already in progress, the limit "
                "(simplestack.max_concurrent_streams); try again later"
                % self.limit,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return _Slot(self._semaphore)


class _Slot:
    """One taken slot; ``release`` is idempotent."""

    def __init__(self, semaphore):
        self._semaphore = semaphore

    def release(self):
        semaphore, self._semaphore = self._semaphore, None
        if semaphore is not None:
            semaphore.release()


def stream_slots(request):
    return request.registry.simplestack_stream_slots


#: How many chunks of an export ReadAhead may hold beyond the one the
#: server is sending. Adapters yield chunks of at most 1 MiB.
READ_AHEAD_CHUNKS = 4
#: How long ReadAhead.close waits for its thread to leave the adapter's
#: iterator, in seconds. Past that, the thread closes the stream itself
#: when it leaves.
READ_AHEAD_JOIN_SECONDS = 10.0

_CHUNK, _END, _FAILED = "chunk", "end", "failed"

# Reading threads that outlived ReadAhead.close's wait and still have a
# stream to close. Daemon threads die at process exit, so the process waits
# for these, or their hypervisor sessions would stay open.
_closing_threads = set()
_closing_threads_lock = threading.Lock()
_exit_join_registered = False


def _add_closing_thread(thread):
    global _exit_join_registered
    with _closing_threads_lock:
        _closing_threads.add(thread)
        if not _exit_join_registered:
            # atexit runs the last handler registered first. Registered
            # only now, this one runs before weakref.finalize's, which
            # would report the stream's adapter as never closed.
            atexit.register(_join_closing_threads)
            _exit_join_registered = True


def _join_closing_threads():
    with _closing_threads_lock:
        threads = list(_closing_threads)
    if threads:
        logger.info("waiting for %d export reading threads to close their "
                    "streams before the process exits", len(threads))
    # NOTE: this wait has no limit of its own. The Xen and vSphere read
    # timeouts bound a thread's hypervisor call, but a libvirt stream read
    # has no timeout here, so gunicorn's graceful_timeout is the last bound.
    for thread in threads:
        thread.join()


class ReadAhead:
    """Iterate an export's chunks in a thread of its own, ahead of the
    client.

    While a WSGI thread writes a chunk to the client, it reads nothing
    from the hypervisor, so a hypervisor that can queue little waits.
    libvirtd's socket buffer (208 KiB by default on Linux) is smaller than
    one 256 KiB stream message. This thread goes on reading meanwhile, at
    most ``depth`` chunks ahead, which bounds the memory an export holds.
    The iterator's errors reach the consumer in order, after the chunks
    read before them.

    ``request_id`` goes to the thread's log lines. Close the stream that
    the iterator reads only through ``close(then=...)``: the thread leaves
    the iterator and closes it itself, because only the thread that runs a
    generator can close it, and ``then`` runs once the thread has left.
    """

    def __init__(self, chunks, request_id=None, depth=READ_AHEAD_CHUNKS):
        self._chunks = iter(chunks)
        self._request_id = request_id
        self._queue = queue.Queue(depth)
        self._stopping = threading.Event()
        self._ended = False
        # Guards _left and _then: whichever of close and the thread comes
        # second runs ``then``.
        self._lock = threading.Lock()
        self._left = False
        self._then = None
        self._thread = threading.Thread(
            target=self._run, name="simplestack-read-ahead", daemon=True)
        self._thread.start()

    def _run(self):
        logs.set_stream_request_id(self._request_id)
        try:
            for chunk in self._chunks:
                if not self._put(_CHUNK, chunk):
                    return
            self._put(_END, None)
        except BaseException as error:
            self._put(_FAILED, error)
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    logger.exception("closing an export's chunks failed")
            with self._lock:
                self._left = True
                then, self._then = self._then, None
            if then is not None:
                try:
                    self._run_then(then)
                finally:
                    with _closing_threads_lock:
                        _closing_threads.discard(self._thread)

    def _put(self, kind, value):
        if self._stopping.is_set():
            return False
        self._queue.put((kind, value))
        return True

    def __iter__(self):
        return self

    def __next__(self):
        if self._ended:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == _CHUNK:
            return value
        self._ended = True
        if kind == _FAILED:
            raise value
        raise StopIteration

    def close(self, then=None):
        """Stop the thread, and run ``then`` once it has left the iterator.

        Waits READ_AHEAD_JOIN_SECONDS for the thread. A thread still inside
        a hypervisor call by then runs ``then`` itself when the call
        returns, so the stream and its session are never closed under it.
        """
        self._ended = True
        self._stopping.set()
        # A put blocked on a full queue returns once a slot is free, and
        # the thread then checks the stop before its next put.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(READ_AHEAD_JOIN_SECONDS)
        with self._lock:
            left = self._left
            if not left and then is not None:
                self._then = then
                _add_closing_thread(self._thread)
        if left:
            if then is not None:
                then()
            return
        logger.warning("an export's reading thread still waits for the "
                       "hypervisor after %.0f s; it closes the stream when "
                       "the hypervisor returns", READ_AHEAD_JOIN_SECONDS)

    @staticmethod
    def _run_then(then):
        try:
            then()
        except Exception:
            logger.exception("closing an export's stream failed")
