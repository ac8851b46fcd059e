"""A per-process limit on image streams in progress.

A WSGI worker thread serves an export until its client has read the last
byte, and a client that stops reading holds the thread. Without a limit,
a few stalled clients would hold every thread and the service would stop
answering anything.
"""

import threading

from simplestack import errors

RETRY_AFTER_SECONDS = 30


class StreamSlots:
    """A counting semaphore for image streams that never blocks."""

    def __init__(self, limit):
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
