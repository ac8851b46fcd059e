"""A libvirt connection that opens after its connect timeout is closed.

The local libvirtd stands in for a slow remote host: its unix socket is
reached through a proxy that holds every new connection for a while
before it forwards a byte. Runs when SIMPLESTACK_TEST_BACKENDS lists qemu
(``scripts/test`` does).
"""

import logging
import os
import socket
import threading
import time

import pytest

from simplestack import errors
from simplestack.adapters.libvirt import LibvirtAdapter
from tests import backends
from tests.libvirt_fixtures import TEST_CREDENTIALS, libvirtd_client_ids
from tests.test_timeouts import open_threads, wait_until

LIBVIRT_SOCKET = "/var/run/libvirt/libvirt-sock"

needs_qemu = pytest.mark.skipif(
    "qemu" not in backends.required_backends(),
    reason="SIMPLESTACK_TEST_BACKENDS does not list qemu")


class DelayingProxy:
    """A unix socket that forwards each connection to ``upstream`` after
    ``delay`` seconds."""

    def __init__(self, path, upstream, delay):
        self.path = path
        self.upstream = upstream
        self.delay = delay
        self.sockets = []
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            threading.Thread(target=self._forward, args=(client,),
                             daemon=True).start()

    def _forward(self, client):
        time.sleep(self.delay)
        server = socket.socket(socket.AF_UNIX)
        server.connect(self.upstream)
        self.sockets.append(server)
        threading.Thread(target=self._pump, args=(server, client),
                         daemon=True).start()
        self._pump(client, server)

    @staticmethod
    def _pump(source, target):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            try:
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self):
        self.listener.close()
        for sock in self.sockets:
            sock.close()
        os.unlink(self.path)


@needs_qemu
def test_late_connection_closed(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="simplestack.adapters.libvirt")
    proxy = DelayingProxy(str(tmp_path / "libvirt.sock"), LIBVIRT_SOCKET,
                          delay=2.0)
    config = LibvirtAdapter.parse_settings("slow", {
        "driver": "qemu",
        # Not a name in local_hosts, so the adapter takes the remote path.
        "uri_template": "qemu+unix:///system?socket=%s&sstest-host={host}"
                        % proxy.path,
        "connect_timeout": "1",
    })
    adapter = LibvirtAdapter("slow", "sstest-slow", TEST_CREDENTIALS, config)
    clients_before = len(libvirtd_client_ids())
    try:
        started = time.monotonic()
        with pytest.raises(errors.HypervisorTimeout) as raised:
            adapter.open()
        elapsed = time.monotonic() - started

        assert "within 1.0 s" in raised.value.message
        assert elapsed < 1.5
        # The open goes on in its thread, succeeds after the delay, and
        # the connection is closed at once.
        assert wait_until(lambda: not open_threads(), 10)
        assert any("opened after its 1.0 s connect timeout"
                   in record.getMessage() for record in caplog.records)
        assert wait_until(
            lambda: len(libvirtd_client_ids()) == clients_before, 10)
    finally:
        proxy.close()
