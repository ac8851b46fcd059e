"""Hypervisors that refuse, hang or drop a stream, seen through the service.

The service runs under pserve with the short timeouts of tests/attacks/
stack.py. The XAPI and vSphere simulators sit behind a FaultProxy (see
proxy.py), which refuses, hangs or cuts connections at the TCP level. The
XAPI simulator also hangs single calls through its /simulator/faults rules.
Every request must end within its timeout plus 0.5 s, with 502 for an
unreachable hypervisor and 504 for a hung one, in the JSON error shape,
and the next request must succeed. The last test fills every server thread
with hung requests, then checks that as many parallel requests succeed.
"""

import concurrent.futures
import time

import pytest
import requests

from tests.attacks import stack
from tests.backends import unique_name
from tests.faults.proxy import FaultProxy
from tests.server import free_port
from tests.conftest import CANARY_PASSWORD
from tests.simulators.fixtures import XapiSimulator
from tests.vmware.test_images import make_ova

#: Bound on a request that hits a hung or refused hypervisor, in seconds:
#: the longest timeout of the generated INI plus 0.5 s.
BOUND = max(stack.CONNECT_TIMEOUT, stack.READ_TIMEOUT) + 0.5

#: waitress threads of testing.ini, so requests that can run at once.
SERVER_THREADS = 8

#: Bytes a cut connection carries before the proxy drops it: more than any
#: XML-RPC or SOAP exchange of these tests, less than the images.
CUT_AFTER = 512 * 1024

#: Bytes a stalled connection carries in one direction before it stops:
#: past the TLS handshake, inside the first XML-RPC or SOAP exchange.
STALL_AFTER = 6000
#: Bytes after which a stall lets the vSphere login through: on the vCenter
#: model the stall then hits the list's own calls (the request log counted 5).
STALL_AFTER_LOGIN = 12000

MIB = 1024 * 1024


class Backend:
    """A simulator behind a proxy, and the service's path prefix for it."""

    def __init__(self, hypervisor, simulator, proxy, server):
        self.simulator = simulator
        self.proxy = proxy
        self.prefix = "/%s/127.0.0.1:%d" % (hypervisor, proxy.port)
        self.client = stack.Client(server.url, stack.canary_token(simulator.username))

    def timed(self, method, path, **kwargs):
        """Send a request; return (response, seconds it took)."""
        started = time.monotonic()
        response = self.client.request(method, self.prefix + path, **kwargs)
        return response, time.monotonic() - started

    def guest_names(self):
        response = self.client.get(self.prefix + "/guests")
        assert response.status_code == 200, response.text
        return sorted(guest["name"] for guest in response.json())


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("faults"))
    xapi = stack.start_xapi()
    vcsim = stack.start_vcsim("vpx", folder)
    server = stack.start_server(folder)
    proxies = [FaultProxy(int(xapi.netloc.rsplit(":", 1)[1])), FaultProxy(vcsim.port)]
    try:
        found = {
            "xen": Backend("xen", xapi, proxies[0], server),
            "vmware": Backend("vmware", vcsim, proxies[1], server),
        }
        for backend in found.values():
            backend.guest_names()
            backend.client.close()
        time.sleep(0.5)
        server.descriptors = stack.open_descriptors(server.process.pid)
        yield server, found
    finally:
        for proxy in proxies:
            proxy.close()
        server.stop()
        xapi.stop()
        vcsim.stop()
    assert not stack.leaks_canary(server.read_log())


@pytest.fixture
def backends(running):
    """The backends, with their proxies passing again after the test."""
    server, found = running
    yield found
    for backend in found.values():
        backend.proxy.set_mode("pass")
    found["xen"].simulator.clear_faults()


def open_xapi_sessions(simulator):
    return simulator.stats()["sessions"].get("simplestack", 0)


def open_vsphere_sessions(simulator):
    """Return the sessions on the vSphere simulator besides the counting one."""
    with simulator.session() as service:
        return len(service.RetrieveContent().sessionManager.sessionList) - 1


def list_in_parallel(backend, count):
    """Send ``count`` GET /guests at once; return (response, seconds) pairs."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: backend.timed("GET", "/guests"), range(count)))


def assert_error_within(response, seconds, status, name):
    assert response.status_code == status, response.text
    assert response.json()["error"] == name
    assert seconds <= BOUND, "took %.2f s" % seconds


def assert_recovers(backend):
    response, seconds = backend.timed("GET", "/guests")
    assert response.status_code == 200, response.text
    assert seconds < BOUND


def test_stopped_xapi_is_unreachable(running):
    server, _ = running
    port = free_port()
    listen = ("--listen", "127.0.0.1:%d" % port)
    simulator = XapiSimulator("--vms", "1", "--password", CANARY_PASSWORD, *listen).start()
    client = stack.Client(server.url, stack.canary_token(simulator.username))
    path = "/xen/127.0.0.1:%d/guests" % port
    try:
        assert client.get(path).status_code == 200
        simulator.stop()

        started = time.monotonic()
        response = client.get(path)
        assert_error_within(response, time.monotonic() - started, 502,
                            "HypervisorUnreachable")

        simulator = XapiSimulator("--vms", "1", "--password", CANARY_PASSWORD,
                                  *listen).start()
        assert client.get(path).status_code == 200
        assert open_xapi_sessions(simulator) == 0
    finally:
        simulator.stop()


@pytest.mark.parametrize("hypervisor", ["xen", "vmware"])
@pytest.mark.parametrize("mode, status, name", [
    ("refuse", 502, "HypervisorUnreachable"),
    ("hang", 504, "HypervisorTimeout"),
    # Stalls after the TLS handshake, inside the first calls.
    ("stall", 504, "HypervisorTimeout"),
])
def test_connection_fault_status(backends, hypervisor, mode, status, name):
    backend = backends[hypervisor]
    cuts = backend.proxy.cuts
    backend.proxy.set_mode(mode, STALL_AFTER)

    response, seconds = backend.timed("GET", "/guests")

    assert_error_within(response, seconds, status, name)
    assert (backend.proxy.cuts > cuts) == (mode == "stall")
    backend.proxy.set_mode("pass")
    backend.proxy.drop_connections()
    assert_recovers(backend)


@pytest.mark.parametrize("method", ["event.from", "VM.get_record"])
def test_hung_xapi_call_is_504(backends, method):
    backend = backends["xen"]
    sessions = open_xapi_sessions(backend.simulator)
    guest_id = backend.client.get(backend.prefix + "/guests").json()[0]["id"]
    backend.simulator.set_fault(method, "hang", seconds=30)

    path = "/guests" if method == "event.from" else "/guests/" + guest_id
    response, seconds = backend.timed("GET", path)

    assert_error_within(response, seconds, 504, "HypervisorTimeout")
    backend.simulator.clear_faults()
    assert_recovers(backend)
    assert open_xapi_sessions(backend.simulator) == sessions


def test_hung_xapi_login_is_504(backends):
    backend = backends["xen"]
    sessions = open_xapi_sessions(backend.simulator)
    backend.simulator.set_fault("session.login_with_password", "hang", seconds=30)

    response, seconds = backend.timed("GET", "/guests")

    assert_error_within(response, seconds, 504, "HypervisorTimeout")
    backend.simulator.clear_faults()
    assert_recovers(backend)
    # The hung login itself completes when the fault is cleared, after the
    # service gave up on it, so XAPI keeps that one session until it
    # expires. No client can log out a session whose id it never received.
    assert open_xapi_sessions(backend.simulator) <= sessions + 1


def test_xen_export_cut_midway(backends):
    backend = backends["xen"]
    sessions = open_xapi_sessions(backend.simulator)
    name = unique_name("export")
    guest = backend.client.post(backend.prefix + "/guests",
                                {"name": name, "hdd": 2, "cpus": 1}).json()
    try:
        backend.proxy.set_mode("cut", CUT_AFTER)
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            backend.client.get(backend.prefix + "/guests/%s/export" % guest["id"])
        assert time.monotonic() - started < BOUND
        assert backend.proxy.cuts >= 1

        backend.proxy.set_mode("pass")
        exported = backend.client.get(backend.prefix + "/guests/%s/export" % guest["id"])
        assert exported.status_code == 200
        assert len(exported.content) > CUT_AFTER
    finally:
        backend.proxy.set_mode("pass")
        backend.client.delete(backend.prefix + "/guests/" + guest["id"])
    assert open_xapi_sessions(backend.simulator) == sessions


@pytest.fixture
def padded_xva(backends):
    """Yield an XVA export of a new Xen guest followed by 16 MiB of zeros.

    The zeros make the upload outlast the socket buffers, so the service
    is still sending when the connection breaks, as with any image of
    realistic size. The source guest is deleted afterwards.
    """
    backend = backends["xen"]
    guest = backend.client.post(backend.prefix + "/guests", {
        "name": unique_name("source"), "hdd": 2, "cpus": 1}).json()
    path = backend.prefix + "/guests/" + guest["id"]
    try:
        yield backend.client.get(path + "/export").content + b"\0" * (16 * MIB)
    finally:
        backend.client.delete(path)


def test_xen_export_stalled_midway(backends):
    backend = backends["xen"]
    sessions = open_xapi_sessions(backend.simulator)
    guest = backend.client.post(backend.prefix + "/guests", {
        "name": unique_name("export"), "hdd": 2, "cpus": 1}).json()
    path = backend.prefix + "/guests/%s/export" % guest["id"]
    try:
        backend.proxy.set_mode("stall", CUT_AFTER)
        started = time.monotonic()
        response = backend.client.get(path)
        # The stall comes within the export's first 1 MiB chunk, which the
        # service reads before it sends the headers, so the response is a
        # JSON error.
        assert response.status_code == 504, response.text
        assert response.json()["error"] == "HypervisorTimeout"
        # The stall starts within a second; the read timeout ends it.
        assert time.monotonic() - started < BOUND + 1
        backend.proxy.set_mode("pass")
        assert backend.client.get(path).status_code == 200
    finally:
        backend.proxy.set_mode("pass")
        backend.client.delete(backend.prefix + "/guests/" + guest["id"])
    assert open_xapi_sessions(backend.simulator) == sessions


def test_xen_import_stalled_midway(backends, padded_xva):
    backend = backends["xen"]
    sessions = open_xapi_sessions(backend.simulator)
    before = backend.guest_names()

    backend.proxy.set_mode("stall", CUT_AFTER)
    response, seconds = backend.timed(
        "POST", "/guests?name=" + unique_name("imported"), data=padded_xva,
        headers={"Content-Type": "application/octet-stream"})
    backend.proxy.set_mode("pass")

    assert response.status_code == 504, response.text
    assert response.json()["error"] == "HypervisorTimeout"
    assert seconds < BOUND + 1
    # The stalled upload keeps XAPI's import running, and its VM exists while
    # it runs. Once the connection goes, XAPI fails the import and removes it.
    backend.proxy.drop_connections()
    assert stack.wait_for(backend.guest_names, before) == before
    assert open_xapi_sessions(backend.simulator) == sessions


@pytest.mark.parametrize("mode", ["cut", "pass"])
def test_xen_import_dropped_midway(backends, padded_xva, mode):
    """With "cut", the connection drops inside the archive. With "pass",
    XAPI reads the whole archive, creates the VM and closes the upload
    while the service still sends the zeros. Either way the caller gets
    502, so no VM may stay."""
    backend = backends["xen"]
    sessions = open_xapi_sessions(backend.simulator)
    before = backend.guest_names()

    backend.proxy.set_mode(mode, CUT_AFTER)
    response, seconds = backend.timed(
        "POST", "/guests?name=" + unique_name("imported"), data=padded_xva,
        headers={"Content-Type": "application/octet-stream"})
    backend.proxy.set_mode("pass")

    assert response.status_code == 502, response.text
    # The TLS handshake succeeded long before the connection dropped.
    assert "handshake" not in response.json()["message"]
    assert seconds < BOUND
    assert backend.guest_names() == before
    assert open_xapi_sessions(backend.simulator) == sessions


@pytest.mark.parametrize("mode, status", [("cut", 502), ("stall", 504)])
def test_vmware_import_broken_midway(backends, mode, status):
    backend = backends["vmware"]
    image = make_ova(unique_name("ova"), disk=b"KDMV" + b"\0" * (8 * MIB - 4))
    before = backend.guest_names()
    sessions = open_vsphere_sessions(backend.simulator)

    backend.proxy.set_mode(mode, CUT_AFTER)
    response, seconds = backend.timed(
        "POST", "/guests?name=" + unique_name("imported"), data=image,
        headers={"Content-Type": "application/octet-stream"})
    backend.proxy.set_mode("pass")
    backend.proxy.drop_connections()

    assert response.status_code == status, response.text
    assert seconds < BOUND + 1
    assert stack.wait_for(backend.guest_names, before) == before
    assert stack.wait_for(lambda: open_vsphere_sessions(backend.simulator),
                          sessions) == sessions


@pytest.mark.parametrize("hypervisor", ["xen", "vmware"])
def test_no_worker_stays_stuck(backends, hypervisor):
    backend = backends[hypervisor]
    backend.proxy.set_mode("hang")
    for response, seconds in list_in_parallel(backend, SERVER_THREADS):
        assert response.status_code == 504, response.text
        # Every server thread was busy, so the last requests queued
        # behind the first for up to one more bound.
        assert seconds < 2 * BOUND

    backend.proxy.set_mode("pass")
    for response, seconds in list_in_parallel(backend, SERVER_THREADS):
        assert response.status_code == 200, response.text
        assert seconds < BOUND


def test_descriptors_back_after_faults(running):
    """Runs last: every socket the faults above left to time out is closed."""
    server, found = running
    for backend in found.values():
        backend.proxy.drop_connections()
        backend.client.close()

    descriptors = stack.wait_for(lambda: stack.open_descriptors(server.process.pid),
                                 server.descriptors)

    assert descriptors == server.descriptors


def test_vmware_stall_after_login_logs_out(backends):
    """The list call after the login stalls: the caller gets 504 and the
    session is still logged out, over a new connection.

    A stall inside the login itself (STALL_AFTER bytes) can leave a
    session, because the simulator sends the session cookie only with the
    login's answer, which never arrives."""
    backend = backends["vmware"]
    sessions = open_vsphere_sessions(backend.simulator)
    backend.proxy.set_mode("stall", STALL_AFTER_LOGIN)
    response, seconds = backend.timed("GET", "/guests")
    backend.proxy.set_mode("pass")
    backend.proxy.drop_connections()

    assert response.status_code == 504, response.text
    assert seconds < BOUND
    assert open_vsphere_sessions(backend.simulator) == sessions
