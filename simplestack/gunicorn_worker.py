"""gunicorn's threaded worker, changed to accept a connection only while
one of its threads has no work.

gunicorn's gthread worker (27.0.1) accepts new connections while it has
fewer than ``worker_connections`` open (1000 by default), so under a burst
of new connections one worker can take more of them than it has threads.
Those wait for a thread of that worker while the threads of another
worker stay idle. Setting ``worker_connections`` to ``threads`` stops
that, but turns keep-alive off, and lets clients that connect and send
nothing stop a worker from accepting.

This worker keeps gunicorn's limit and adds one: it accepts while the
connections handed to its thread pool are fewer than ``threads``.
Connections waiting in keep-alive, and new ones that gunicorn deferred
because they sent nothing yet, wait in the worker's poller, not in a
thread, so they do not count. While a worker takes no connections, the
kernel keeps them in the listen queue for the other workers. Name it in
gunicorn's ``worker_class`` setting:
``simplestack.gunicorn_worker.ThreadWorker``.

gunicorn's worker closes a finished connection in its main loop and waits
there up to 2 s for the client's end of stream. Clients that take a
"Connection: close" response and keep their side open so stalled the
whole worker for 2 s each. This worker waits for that end of stream in
its poller instead.

The class overrides four methods of gunicorn's ``ThreadWorker`` and reads
four of its attributes. ``check_config`` and ``__init__`` raise
RuntimeError when the installed gunicorn lacks one of them.
"""

import selectors
import socket
import time
from functools import partial

import gunicorn
from gunicorn import util
from gunicorn.workers import gthread

#: Methods of gunicorn's ThreadWorker that this worker overrides.
OVERRIDDEN_METHODS = (
    "accept", "set_accept_enabled", "finish_request", "murder_keepalived")
#: Seconds that a connection closed after its response waits for the
#: client's end of stream, and the maximum request bytes it reads
#: meanwhile. Unread bytes would make the kernel reset the connection
#: before the client has read the response (RFC 9112 section 9.6). These
#: are the defaults of gunicorn 27.0.1's util.close_graceful.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 65536
LINGER_READ_BYTES = 4096
#: Attributes of a gunicorn ThreadWorker that this worker reads: the count
#: of its open connections, the ones waiting in keep-alive and in the
#: poller for their first bytes, and its worker_connections.
READ_ATTRIBUTES = (
    "nr_conns", "keepalived_conns", "pending_conns", "worker_connections")


def missing_gunicorn_parts(worker_class):
    """Return the names of the methods of ``worker_class`` (gunicorn's
    ThreadWorker) that this worker needs and does not find.

    Besides the overridden methods, the worker's ``run`` loop must call
    ``set_accept_enabled`` on each turn, which re-enables accepting once a
    thread is free. A ``run`` whose code does not name it is reported.
    """
    missing = [name for name in OVERRIDDEN_METHODS
               if not callable(getattr(worker_class, name, None))]
    run = getattr(worker_class, "run", None)
    if "set_accept_enabled" not in getattr(
            getattr(run, "__code__", None), "co_names", ()):
        missing.append("run calling set_accept_enabled")
    return missing


def raise_unsupported(missing):
    raise RuntimeError(
        "simplestack.gunicorn_worker.ThreadWorker needs gunicorn's "
        "ThreadWorker of gunicorn 27.0.1 (setup.py pins it); gunicorn %s "
        "lacks: %s" % (gunicorn.__version__, ", ".join(missing)))


class ThreadWorker(gthread.ThreadWorker):
    """gthread worker that accepts a connection only while a thread of its
    pool has no work, and while it has fewer than worker_connections open.

    NOTE: a new connection that sends nothing keeps a thread waiting for
    up to gunicorn's DEFAULT_WORKER_DATA_TIMEOUT (5 s) before the worker's
    poller takes it over, so `threads` such clients stop a worker from
    accepting for that long. And the check sees only the moment of accept:
    a worker that serves each request before the next connection comes can
    take every connection of a keep-alive client such as wrk while the
    other worker is not scheduled, and keeps them as long as the client.
    """

    @classmethod
    def check_config(cls, cfg, log):
        # gunicorn's master calls this once at start, before any worker.
        missing = missing_gunicorn_parts(gthread.ThreadWorker)
        if missing:
            raise_unsupported(missing)
        super().check_config(cfg, log)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        missing = [name for name in READ_ATTRIBUTES
                   if not hasattr(self, name)]
        if missing:
            raise_unsupported(missing)
        # Socket -> [deadline, bytes read] of the connections that wait in
        # the poller for their client's end of stream.
        self.lingering_sockets = {}

    def busy_connections(self):
        """Return the number of connections handed to the thread pool: in
        a thread, queued for one, or done there and not yet taken back by
        the main loop."""
        return (self.nr_conns - len(self.keepalived_conns)
                - len(self.pending_conns))

    def can_take_connection(self):
        """Return whether a new connection would get a thread at once."""
        return (self.busy_connections() < self.cfg.threads
                and self.nr_conns < self.worker_connections)

    def set_accept_enabled(self, enabled):
        # gunicorn's run loop calls this with True on each turn while
        # fewer than worker_connections are open and the listeners are off.
        super().set_accept_enabled(enabled and self.can_take_connection())

    def accept(self, listener):
        # A listener event can come in the same poll as a kept-alive
        # connection that took the last free thread, so check again.
        if self.can_take_connection():
            super().accept(listener)
        if not self.can_take_connection():
            super().set_accept_enabled(False)

    def finish_request(self, conn, fs):
        # Runs in the main loop. gunicorn's own close of a finished
        # connection waits there for the client (util.close_graceful).
        # NOTE: TLS connections (certfile set) still close that way.
        if (self.cfg.is_ssl or fs.cancelled() or fs.exception() is not None
                or fs.result()):
            super().finish_request(conn, fs)
            return
        self.nr_conns -= 1
        self.close_after_linger(conn.sock)

    def close_after_linger(self, sock):
        """Send the end of stream on ``sock`` and close it once the client
        has closed its side, or after LINGER_SECONDS, without blocking.

        A socket that the request's thread already closed (gunicorn does
        so when a response fails after its headers) is left as it is.
        """
        if sock.fileno() == -1:
            return
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            util.close(sock)
            return
        self.lingering_sockets[sock] = [time.monotonic() + LINGER_SECONDS, 0]
        self.poller.register(sock, selectors.EVENT_READ,
                             partial(self.read_lingering, sock))

    def read_lingering(self, sock, _fileobj):
        state = self.lingering_sockets[sock]
        while state[1] < LINGER_MAX_BYTES:
            try:
                data = sock.recv(LINGER_READ_BYTES)
            except BlockingIOError:
                return
            except OSError:
                break
            if not data:
                break
            state[1] += len(data)
        self.close_lingering(sock)

    def close_lingering(self, sock):
        del self.lingering_sockets[sock]
        try:
            self.poller.unregister(sock)
        except (KeyError, ValueError):
            pass
        util.close(sock)

    def murder_keepalived(self, force=False):
        # gunicorn's loop calls this on every turn and, with force=True,
        # once before the worker exits.
        super().murder_keepalived(force)
        now = time.monotonic()
        expired = [sock for sock, (deadline, _)
                   in self.lingering_sockets.items()
                   if force or deadline <= now]
        for sock in expired:
            self.close_lingering(sock)
