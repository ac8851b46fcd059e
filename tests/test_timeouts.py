"""Unreachable and hung hypervisor hosts end a request within its timeout.

Every host here is a real loopback socket: one that accepts connections
and never replies, one whose listen backlog is full so it never accepts,
and a port nobody listens on. The hung name server runs in a network
namespace of its own. A refused connection is a 502 HypervisorUnreachable,
anything that times out a 504 HypervisorTimeout, both within the timeout
plus 0.5 s.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
from webtest import TestApp

from simplestack import main
from simplestack.adapters import tls
from tests.api.conftest import ROOT, app_settings
from tests.conftest import CANARY_PASSWORD, make_token

TIMEOUT = 1.0
#: What a request may take beyond its timeout.
SLACK = 0.5


class SilentServer:
    """A loopback server that accepts every connection and never replies."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connections = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


class FullBacklogServer:
    """A loopback socket that listens but never accepts: its backlog is
    filled, so the kernel drops every further connection attempt."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.clients = []
        for _ in range(64):
            client = socket.socket()
            client.settimeout(0.3)
            try:
                client.connect(("127.0.0.1", self.port))
            except TimeoutError:
                client.close()
                return
            self.clients.append(client)
        raise RuntimeError("the backlog of port %d never filled" % self.port)

    def close(self):
        for client in self.clients:
            client.close()
        self.listener.close()


def refused_port(family=socket.AF_INET, address="127.0.0.1"):
    """Return a loopback port that nobody listens on."""
    with socket.socket(family) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.close()


@pytest.fixture
def full_backlog_server():
    server = FullBacklogServer()
    yield server
    server.close()


def make_api(**overrides):
    settings = app_settings(**{
        key: str(value) for key, value in overrides.items()})
    return TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


def timed_get(api, path, status):
    started = time.monotonic()
    response = api.get(path, status=status)
    return response, time.monotonic() - started


def assert_error(response, name):
    assert response.content_type == "application/json"
    assert response.json["error"] == name
    assert CANARY_PASSWORD not in response.text


SETTINGS = {
    "xen": {"simplestack.hypervisor.xen.ca_bundle": "",
            "simplestack.hypervisor.xen.connect_timeout": TIMEOUT,
            "simplestack.hypervisor.xen.read_timeout": TIMEOUT},
    "vmware": {"simplestack.hypervisor.vmware.ca_bundle": "",
               "simplestack.hypervisor.vmware.connect_timeout": TIMEOUT,
               "simplestack.hypervisor.vmware.read_timeout": TIMEOUT},
    # libvirt over qemu+tcp, the tcp type of the API tests.
    "tcp": {"simplestack.hypervisor.tcp.connect_timeout": TIMEOUT},
}
HYPERVISORS = sorted(SETTINGS)


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    """Send one request per type to a refused port first, so that the
    timed requests do not also pay for the SDKs' first-use loading
    (pyVmomi builds its types on first use)."""
    for hypervisor in HYPERVISORS:
        api = make_api(**SETTINGS[hypervisor])
        api.get("/%s/127.0.0.1:%d/guests" % (hypervisor, refused_port()),
                status=502)


def open_threads():
    return [thread for thread in threading.enumerate()
            if thread.name == "libvirt-open"]


def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("hypervisor", HYPERVISORS)
def test_silent_server_is_504(hypervisor):
    # Xen and VMware wait for the TLS handshake, libvirt for the reply to
    # its first call: both within the connect timeout.
    server = SilentServer()
    api = make_api(**SETTINGS[hypervisor])
    try:
        response, elapsed = timed_get(
            api, "/%s/127.0.0.1:%d/guests" % (hypervisor, server.port), 504)
    finally:
        server.close()

    assert_error(response, "HypervisorTimeout")
    assert "within 1.0 s" in response.json["message"]
    assert elapsed < TIMEOUT + SLACK
    # Once the server hangs up, an abandoned libvirt open ends too.
    assert wait_until(lambda: not open_threads(), 10)


@pytest.mark.parametrize("hypervisor", HYPERVISORS)
def test_full_backlog_is_504(hypervisor, full_backlog_server):
    api = make_api(**SETTINGS[hypervisor])

    response, elapsed = timed_get(api, "/%s/127.0.0.1:%d/guests" % (
        hypervisor, full_backlog_server.port), 504)

    assert_error(response, "HypervisorTimeout")
    assert "within 1.0 s" in response.json["message"]
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.parametrize("hypervisor", HYPERVISORS)
@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_refused_is_502(hypervisor, family):
    api = make_api(**SETTINGS[hypervisor])
    address = "127.0.0.1" if family == socket.AF_INET else "::1"
    url_host = "127.0.0.1" if family == socket.AF_INET else "[::1]"

    response, elapsed = timed_get(api, "/%s/%s:%d/guests" % (
        hypervisor, url_host, refused_port(family, address)), 502)

    assert_error(response, "HypervisorUnreachable")
    assert elapsed < TIMEOUT + SLACK


def test_xen_silent_reply_is_504(silent_server):
    # Over plain HTTP the connection opens, and the login call waits for a
    # reply until the read timeout.
    settings = dict(SETTINGS["xen"])
    settings["simplestack.hypervisor.xen.scheme"] = "http"
    settings["simplestack.hypervisor.xen.connect_timeout"] = 5
    api = make_api(**settings)

    response, elapsed = timed_get(
        api, "/xen/127.0.0.1:%d/guests" % silent_server.port, 504)

    assert_error(response, "HypervisorTimeout")
    assert "within 1.0 s" in response.json["message"]
    assert elapsed < TIMEOUT + SLACK


# -- name resolution ---------------------------------------------------------

def test_address_resolves_without_thread():
    before = threading.active_count()

    addresses = tls.resolve("127.0.0.1", 80, 0.001)

    assert addresses[0][4] == ("127.0.0.1", 80)
    assert threading.active_count() == before


def test_local_name_resolves():
    # localhost comes from /etc/hosts: no name server is asked.
    addresses = tls.resolve("localhost", 80, TIMEOUT)

    assert any(address[4][1] == 80 for address in addresses)


# Run inside the namespace: with "silent", a name server on 127.0.0.1:53
# that reads every query and never replies (otherwise none, so queries are
# refused at once), then one request for a name only it could resolve.
# Prints the status, the error body and the seconds it took.
HUNG_RESOLVER_SCRIPT = r"""
import json, socket, sys, time
from webtest import TestApp
from simplestack import main
from tests.api.conftest import app_settings
from tests.conftest import make_token

if sys.argv[3] == "silent":
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))

settings = app_settings(**json.loads(sys.argv[1]))
api = TestApp(main({}, **settings), extra_environ={
    "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})
started = time.monotonic()
response = api.get(sys.argv[2], status="*")
print(json.dumps({"status": response.status_int, "body": response.json,
                  "seconds": time.monotonic() - started}))
"""


@pytest.fixture
def hung_resolver_namespace():
    """A network namespace whose resolv.conf names a name server on its own
    loopback, where the test may start one; removed after the test."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 to make a network namespace")
    name = "sstest-resolve-%s" % uuid.uuid4().hex[:8]
    config_dir = os.path.join("/etc/netns", name)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        os.makedirs(config_dir)
        with open(os.path.join(config_dir, "resolv.conf"), "w") as conf:
            conf.write("nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set",
                        "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        shutil.rmtree(config_dir, ignore_errors=True)


HUNG_RESOLVER_SETTINGS = {
    "xen": {"ca_bundle": "", "resolve_timeout": "1.0",
            "connect_timeout": "5"},
    "vmware": {"ca_bundle": "", "resolve_timeout": "1.0",
               "connect_timeout": "5"},
    # libvirt resolves inside virConnectOpenAuth, which connect_timeout
    # bounds as a whole.
    "tcp": {"connect_timeout": "1.0"},
}
HUNG_RESOLVER_MESSAGES = {
    "xen": "did not resolve within 1.0 s",
    "vmware": "did not resolve within 1.0 s",
    "tcp": "did not complete the connection within 1.0 s",
}


def request_in_namespace(namespace, hypervisor, name_server):
    """Run HUNG_RESOLVER_SCRIPT in ``namespace`` and return its outcome."""
    settings = {"simplestack.hypervisor.%s.allowed_hosts" % hypervisor:
                "hung.example.org"}
    for key, value in HUNG_RESOLVER_SETTINGS[hypervisor].items():
        settings["simplestack.hypervisor.%s.%s" % (hypervisor, key)] = value
    finished = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable,
         "-c", HUNG_RESOLVER_SCRIPT, json.dumps(settings),
         "/%s/hung.example.org/guests" % hypervisor, name_server],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("hypervisor", HYPERVISORS)
def test_hung_resolver_is_504(hung_resolver_namespace, hypervisor):
    outcome = request_in_namespace(hung_resolver_namespace, hypervisor,
                                   "silent")

    assert outcome["status"] == 504
    assert outcome["body"]["error"] == "HypervisorTimeout"
    assert HUNG_RESOLVER_MESSAGES[hypervisor] in outcome["body"]["message"]
    assert outcome["seconds"] < TIMEOUT + SLACK


@pytest.mark.parametrize("hypervisor", HYPERVISORS)
def test_unresolvable_name_is_502(hung_resolver_namespace, hypervisor):
    outcome = request_in_namespace(hung_resolver_namespace, hypervisor,
                                   "absent")

    assert outcome["status"] == 502
    assert outcome["body"]["error"] == "HypervisorUnreachable"
    assert outcome["seconds"] < TIMEOUT + SLACK


def test_bounded_connect_without_timeout():
    # A connection made without a timeout resolves the name and keeps
    # blocking sockets, as socket.create_connection would.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    connection = http.client.HTTPConnection(
        "localhost", listener.getsockname()[1])
    connection._create_connection = tls.bounded_create_connection(TIMEOUT)
    try:
        connection.connect()
        assert connection.sock.getpeername()[0] == "127.0.0.1"
        assert connection.sock.gettimeout() is None
    finally:
        connection.close()
        listener.close()
