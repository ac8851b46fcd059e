"""Host forms in the URL against an allow-list of a few entries.

Loopback listeners record every connection that the service opens, so a
host form that slipped past the list shows up as a recorded connection, not
just as a status other than 403.
"""

import socket
import threading
import time

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import errors, main
from simplestack.access import HostAllowList, check_redirect
from simplestack.adapters.xen.transport import master_host
from tests.attacks.conftest import assert_error
from tests.conftest import make_token
from tests.server import TESTING_INI

NETWORK_TYPES = ("xen", "vmware", "kvm")


class RecordingListener:
    """A TCP listener that accepts and closes connections, recording the
    peer of each one."""

    def __init__(self, family, address, port=0):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.peers = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                connection, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer)
            connection.close()

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def listeners():
    """Listeners on 127.0.0.2 and ::1 on one port: addresses outside every
    list that these tests configure."""
    ipv4 = RecordingListener(socket.AF_INET, "127.0.0.2")
    ipv6 = RecordingListener(socket.AF_INET6, "::1", ipv4.port)
    yield ipv4, ipv6
    ipv4.close()
    ipv6.close()


def service(allowed_hosts):
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    for type_name in NETWORK_TYPES:
        prefix = "simplestack.hypervisor.%s." % type_name
        settings[prefix + "allowed_hosts"] = allowed_hosts
        settings[prefix + "connect_timeout"] = "1"
    return TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token("root", "pw")})


def connections(listeners, expected=None):
    """Return the connections recorded so far.

    The kernel completes a connection before the listener thread accepts
    it, so the count is read after a pause, or, with ``expected``, once it
    reaches at least that value (within 5 s).
    """
    deadline = time.monotonic() + (5 if expected is not None else 0.1)
    while True:
        count = sum(len(listener.peers) for listener in listeners)
        if expected is not None and count >= expected or \
                time.monotonic() >= deadline:
            return count
        time.sleep(0.02)


def assert_rejected_unconnected(app, listeners, path, status, name):
    """Check that GET ``path`` gets the error ``status`` and ``name`` and
    that the service opened no connection."""
    before = connections(listeners)

    response = app.get(path, expect_errors=True)

    assert_error(response, status, name)
    assert connections(listeners) == before


# Forms that name 127.0.0.2 or ::1, neither of which is on the list
# "127.0.0.1 localhost".
OTHER_LOOPBACK_FORMS = [
    "127.0.0.2", "127.2", "2130706434", "0x7f000002", "0177.0.0.2",
    "127.000.000.002", "127.0.0.2.", "[127.0.0.2]", "[::ffff:127.0.0.2]",
    "[::ffff:7f00:2]", "[::1]", "[0::1]", "[0000:0000::0001]",
    "127%2e0.0.2", "127.0.0.2%2E", "localhost.", "LOCALHOST.",
    "127.0.0.01", "0.0.0.0", "0", "[::]",
]


@pytest.mark.parametrize("type_name", NETWORK_TYPES)
@pytest.mark.parametrize("form", OTHER_LOOPBACK_FORMS)
def test_other_loopback_form_is_403(listeners, type_name, form):
    app = service("127.0.0.1 localhost")
    path = "/%s/%s:%d/guests" % (type_name, form, listeners[0].port)

    assert_rejected_unconnected(app, listeners, path, 403, "HostNotAllowed")


@pytest.mark.parametrize("form", ["127.0.0.1@127.0.0.2", "127.0.0.1%00",
                                  "127.0.0.1%0a", "[::1%25lo]",
                                  "127.0.0.1:0", "127.0.0.1:65536",
                                  "127.0.0.1:123456", "a" * 300])
def test_malformed_host_is_400(listeners, form):
    app = service("127.0.0.1 localhost")
    path = "/xen/%s/guests" % form

    assert_rejected_unconnected(app, listeners, path, 400, "InvalidArguments")


@pytest.mark.parametrize("type_name", NETWORK_TYPES)
@pytest.mark.parametrize("form", ["[::ffff:127.0.0.2]", "[::ffff:7f00:2]"])
def test_ipv4_mapped_address_outside_ipv6_list(listeners, type_name, form):
    # The list allows every IPv6 host and one IPv4 network, but the mapped
    # form of 127.0.0.2 reaches an IPv4 host outside that network.
    app = service("::/0 10.0.0.0/8")
    path = "/%s/%s:%d/guests" % (type_name, form, listeners[0].port)

    assert_rejected_unconnected(app, listeners, path, 403, "HostNotAllowed")


@pytest.mark.parametrize("form", ["[::]", "0.0.0.0", "[::ffff:0.0.0.0]"])
def test_unspecified_address_is_403(listeners, form):
    # 0.0.0.0 and :: connect to this machine, whatever network lists them.
    app = service("0.0.0.0/0 ::/0")
    path = "/xen/%s:%d/guests" % (form, listeners[0].port)

    assert_rejected_unconnected(app, listeners, path, 403, "HostNotAllowed")


def test_ipv4_mapped_entry_is_invalid():
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.hypervisor.xen.allowed_hosts"] = "::ffff:127.0.0.2"

    with pytest.raises(ValueError) as raised:
        main({}, **settings)

    assert "simplestack.hypervisor.xen.allowed_hosts" in str(raised.value)
    assert "127.0.0.2 instead" in str(raised.value)


# Master addresses that a Xen pool member could name in HOST_IS_SLAVE. The
# XAPI simulator accepts only plain loopback masters in its fault rules, so
# these go through the adapter's master_host and the service's check
# directly.
REDIRECT_FORMS = [
    "127.0.0.5", "127.5", "0x7f000005", "2130706437", "0177.0.0.5",
    "127.0.0.5.", "::ffff:127.0.0.5", "[::ffff:127.0.0.5]", "::1",
    "[0::1]:443", "0.0.0.0", "::", "localhost.", "127.0.0.1@127.0.0.5",
    "127.0.0.5#127.0.0.1", "127.0.0.5/127.0.0.1",
]


@pytest.mark.parametrize("master", REDIRECT_FORMS)
def test_redirect_outside_list_is_403(master):
    config = {"allowed_hosts": HostAllowList.parse(
        "xen", "allowed_hosts", "127.0.0.1 localhost")}
    target = master_host("127.0.0.1:8443", master)

    with pytest.raises(errors.HostNotAllowed):
        check_redirect(config, "127.0.0.1:8443", target)
