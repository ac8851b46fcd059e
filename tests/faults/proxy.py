"""A loopback TCP proxy that can pass, hang, cut or refuse connections.

It forwards raw bytes, so TLS runs end to end between the service and the
simulator behind it, and the simulator's certificate for 127.0.0.1 still
verifies. Modes, switched at any time with ``set_mode``:

- ``pass``: forward both ways;
- ``hang``: accept new connections but never read from or write to them;
- ``cut``: forward, but close both sides of a connection once it has
  carried ``cut_after`` bytes in either direction (a stream dropped in the
  middle);
- ``stall``: forward, but once a connection has carried ``cut_after``
  bytes in either direction, stop forwarding in that direction and keep
  both sockets open until ``drop_connections`` or ``close`` (a stream that
  hangs midway);
- ``refuse``: close the listening socket, so new connections are refused,
  until another mode opens it again on the same port.

Connections already forwarding keep the mode they started with, except
that ``cut`` limits apply to every connection opened while it is set.
"""

import socket
import threading

BUFFER_SIZE = 64 * 1024


class FaultProxy:
    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.cut_after = 0
        self.lock = threading.Lock()
        self.sockets = set()
        self.cuts = 0
        self.released = threading.Event()
        self.listener = None
        self.port = None
        self._open_listener()

    def _open_listener(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port or 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def set_mode(self, mode, cut_after=0):
        if mode not in ("pass", "hang", "cut", "stall", "refuse"):
            raise ValueError("invalid mode %r" % mode)
        with self.lock:
            self.mode = mode
            self.cut_after = cut_after
            listener = self.listener
            if mode == "refuse" and listener is not None:
                self.listener = None
        if mode == "refuse" and listener is not None:
            # close() alone leaves the socket listening while another
            # thread is blocked in accept(); shutdown() wakes that thread.
            _close(listener)
        elif mode != "refuse" and listener is None:
            self._open_listener()

    def drop_connections(self):
        """Close every connection in progress, stalled ones included."""
        with self.lock:
            released, self.released = self.released, threading.Event()
            sockets = list(self.sockets)
            self.sockets.clear()
        released.set()
        for sock in sockets:
            _close(sock)

    def close(self):
        self.set_mode("refuse")
        self.drop_connections()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self.lock:
                mode, cut_after = self.mode, self.cut_after
                self.sockets.add(client)
            if mode == "hang":
                continue
            threading.Thread(target=self._forward, args=(client, mode, cut_after),
                             daemon=True).start()

    def _forward(self, client, mode, cut_after):
        try:
            upstream = socket.create_connection(self.upstream, 5)
            upstream.settimeout(None)
        except OSError:
            self._drop(client)
            return
        with self.lock:
            self.sockets.add(upstream)
        limit = cut_after if mode in ("cut", "stall") else None
        pair = (client, upstream)
        with self.lock:
            released = self.released
        arguments = (limit, pair, mode, released)
        threading.Thread(target=self._pump, args=(client, upstream) + arguments,
                         daemon=True).start()
        self._pump(upstream, client, *arguments)

    def _pump(self, source, target, limit, pair, mode, released):
        carried = 0
        try:
            while True:
                data = source.recv(BUFFER_SIZE)
                if not data:
                    break
                if limit is not None and carried + len(data) >= limit:
                    target.sendall(data[:max(0, limit - carried)])
                    with self.lock:
                        self.cuts += 1
                    if mode == "stall":
                        released.wait()
                    break
                target.sendall(data)
                carried += len(data)
        except OSError:
            pass
        for sock in pair:
            self._drop(sock)

    def _drop(self, sock):
        with self.lock:
            self.sockets.discard(sock)
        _close(sock)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
