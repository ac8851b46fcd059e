"""Xen guests that change between the two calls of a guest list (XAPI
simulator).

The list reads the VMs with VM.get_all_records_where, then every VBD,
VDI, guest metrics and host record with event.from. A guest destroyed
between the two calls was listed with the VM record of the first call
and none of its devices: hdd 0, tools_up_to_date and ip null, a record
that the guest never had, while GET /guests/{id} returned 404.
"""

import threading
import time

import pytest
import XenAPI

from tests.attacks import stack
from tests.xen_fixtures import CATransport

#: Maximum seconds that event.from waits before it runs. The test ends the
#: wait as soon as it has changed the pool.
WINDOW_SECONDS = 10
ORIGINATOR = "sstest-round7"


@pytest.fixture(scope="module")
def simulator():
    running = stack.start_xapi(vms=2)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(tmp_path_factory, simulator):
    folder = str(tmp_path_factory.mktemp("round7-xen-list"))
    # testing.ini trusts the development CA that signs the simulator's
    # certificate.
    server = stack.start_server(folder)
    api = stack.Client("%s/xen/%s" % (server.url, simulator.netloc),
                       stack.canary_token("root"))
    yield api
    api.close()
    server.stop()
    assert not stack.leaks_canary(server.read_log())


@pytest.fixture
def xapi(simulator):
    session = XenAPI.Session(simulator.url,
                             transport=CATransport(simulator.ca_bundle))
    session.xenapi.login_with_password("root", simulator.password, "1.0",
                                       ORIGINATOR)
    yield session.xenapi
    simulator.clear_faults()
    session.xenapi.session.logout()


def seeded_guest(xapi):
    """Return the ref of the simulator's second seeded guest, which is
    halted, so that VM.clone can copy it."""
    refs = [ref for ref, vm in xapi.VM.get_all_records().items()
            if vm["name_label"] == "sim-vm-002"]
    assert len(refs) == 1, refs
    return refs[0]


def list_while(simulator, client, change):
    """GET the guest list and run ``change`` between its two XAPI calls.

    event.from hangs until ``change`` has run, so the VMs are read before
    the change and everything else after it. Returns the response.
    """
    simulator.set_fault("event.from", "hang", seconds=WINDOW_SECONDS,
                        times=1)
    calls = simulator.stats()["calls"].get("event.from", 0)
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(response=client.get("/guests")))
    thread.start()
    try:
        deadline = time.monotonic() + WINDOW_SECONDS
        while simulator.stats()["calls"].get("event.from", 0) == calls:
            assert time.monotonic() < deadline, "event.from never came"
            time.sleep(0.05)
        change()
    finally:
        simulator.clear_faults()
        thread.join(stack.CLIENT_TIMEOUT)
    return result["response"]


def test_guest_destroyed_between_calls(simulator, client, xapi):
    clone = xapi.VM.clone(seeded_guest(xapi), "sstest-r7-destroyed")
    guest_id = xapi.VM.get_uuid(clone)
    before = client.get("/guests/" + guest_id).json()
    assert before["hdd"] > 0

    # VM.destroy removes the VBDs too, as XAPI does; the VDIs stay.
    vdis = [xapi.VBD.get_VDI(vbd) for vbd in xapi.VM.get_VBDs(clone)]
    vdis = [vdi for vdi in vdis if vdi != "OpaqueRef:NULL"]
    response = list_while(simulator, client,
                          lambda: xapi.VM.destroy(clone))
    for vdi in vdis:
        xapi.VDI.destroy(vdi)

    assert response.status_code == 200
    listed = {guest["id"]: guest for guest in response.json()}
    # Absent, as after the destroy, or as it was before it.
    assert listed.get(guest_id, before) == before
    assert client.get("/guests/" + guest_id).status_code == 404


def test_disk_removed_between_calls(simulator, client, xapi):
    clone = xapi.VM.clone(seeded_guest(xapi), "sstest-r7-disk")
    guest_id = xapi.VM.get_uuid(clone)
    vbds = xapi.VM.get_VBDs(clone)
    try:
        response = list_while(simulator, client, lambda: [
            xapi.VBD.destroy(vbd) for vbd in vbds])

        assert response.status_code == 200
        listed = {guest["id"]: guest for guest in response.json()}
        # The guest still exists, so the list shows it as it is now.
        after = client.get("/guests/" + guest_id).json()
        assert after["hdd"] == 0
        assert listed[guest_id] == after
    finally:
        xapi.VM.destroy(clone)


def test_list_calls_leave_no_session(simulator, client, xapi):
    response = list_while(simulator, client, lambda: None)

    assert response.status_code == 200
    sessions = simulator.stats()["sessions"]
    assert sessions.get("simplestack", 0) == 0, sessions
