"""Deadlines for reading a whole request body from a client socket.

gunicorn's socket timeout (simplestack.client_timeout) bounds each read
from the client, so a client that sends a JSON body one byte at a time,
just within that timeout, kept its thread for as long as it liked. A
deadline here bounds the whole read: one thread per process waits for
the earliest deadline and then shuts down the reading side of that
socket. A read blocked on it then returns at once with what came, and the
caller sees that the deadline passed.
"""

import contextlib
import heapq
import itertools
import socket
import threading
import time


class Watch:
    """One socket read with a deadline; ``expired`` is set when the
    deadline passed before the read ended."""

    __slots__ = ("deadline", "number", "sock", "ended", "expired")

    def __init__(self, deadline, number, sock):
        self.deadline = deadline
        self.number = number
        self.sock = sock
        self.ended = False
        self.expired = False

    def __lt__(self, other):
        return (self.deadline, self.number) < (other.deadline, other.number)


class Watchdog:
    """The watches of one process, and the thread that ends them."""

    def __init__(self):
        self._condition = threading.Condition()
        self._watches = []
        self._numbers = itertools.count()
        self._thread = None

    def start(self, sock, seconds):
        """Return a Watch that shuts down the reading side of ``sock`` in
        ``seconds`` unless ``end`` is called first."""
        with self._condition:
            watch = Watch(time.monotonic() + seconds, next(self._numbers),
                          sock)
            heapq.heappush(self._watches, watch)
            if self._thread is None:
                # Started on first use, so that each gunicorn worker
                # process gets its own thread after the fork.
                self._thread = threading.Thread(
                    target=self._run, name="simplestack-read-deadlines",
                    daemon=True)
                self._thread.start()
            elif self._watches[0] is watch:
                self._condition.notify()
        return watch

    def end(self, watch):
        with self._condition:
            watch.ended = True
            watch.sock = None

    def _run(self):
        with self._condition:
            while True:
                while self._watches and self._watches[0].ended:
                    heapq.heappop(self._watches)
                if not self._watches:
                    self._condition.wait()
                    continue
                watch = self._watches[0]
                remaining = watch.deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                heapq.heappop(self._watches)
                watch.expired = True
                try:
                    watch.sock.shutdown(socket.SHUT_RD)
                except OSError:
                    # The client or the worker closed the socket already.
                    pass
                watch.sock = None


_watchdog = Watchdog()


@contextlib.contextmanager
def read_deadline(sock, seconds):
    """Bound the reads from ``sock`` within the block to ``seconds`` in
    all. Yield the Watch, whose ``expired`` is True when they were cut."""
    watch = _watchdog.start(sock, seconds)
    try:
        yield watch
    finally:
        _watchdog.end(watch)
