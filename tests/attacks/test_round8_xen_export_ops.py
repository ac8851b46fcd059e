"""Changes of a Xen guest while its export streams, in-process against the
XAPI simulator.

An export lists "export" in the VM's current_operations until its last
byte is sent. XAPI rejects a conflicting operation (start, destroy, ...)
with OTHER_OPERATION_IN_PROGRESS, after waiting server-side for the
export to end. The service checks current_operations first, so a power
change or a delete during an export returns 409 at once. A rename
(VM.set_name_label) is a field write and no XAPI operation, so it stays
allowed.
"""

import io
import tarfile
import threading
import time

import pytest
import XenAPI
from webob import Request

from tests import backends
from tests.attacks.test_round3_stalled_client import with_data_blocks
from tests.conftest import make_token
from tests.simulators.xapi.vm import CONFLICT_WAIT
from tests.xen.conftest import (  # noqa: F401 (pytest fixtures)
    xapi_simulator, xen_api, xen_app, xen_host)
from tests.xen_fixtures import xapi_session

#: MiB of data blocks in the exported guest's disk: far more than the
#: socket buffers and the service's read-ahead take together, so the
#: simulator's export is still writing while the test sends its changes.
DATA_MEBIBYTES = 32


@pytest.fixture
def large_guest(xen_api, xen_host):
    """A halted guest whose export is over DATA_MEBIBYTES MiB."""
    small = xen_api.post_json(xen_host + "/guests", {
        "name": backends.unique_name("export-small"), "hdd": 1}).json
    small_path = "%s/guests/%s" % (xen_host, small["id"])
    xva = xen_api.get(small_path + "/export").body
    xen_api.delete(small_path)
    response = xen_api.request(
        "%s/guests?name=%s" % (xen_host, backends.unique_name("export-large")),
        method="POST", body=with_data_blocks(xva, DATA_MEBIBYTES),
        headers={"Content-Type": "application/x-xva"})
    assert response.status_int == 201
    path = "%s/guests/%s" % (xen_host, response.json["id"])
    yield path
    xen_api.delete(path, status="*")


def start_export(xen_app, simulator, path):
    """Start an export of ``path`` and read its first chunk; return the
    response body, which the caller closes, and that chunk."""
    request = Request.blank(path + "/export", headers={
        "x-simplestack-hypervisor-token": make_token(
            simulator.username, simulator.password)})
    body = xen_app(request.environ,
                   lambda status, headers, info=None: None)
    first = next(iter(body))
    assert first
    return body, first


def vm_record(simulator, guest_path):
    uuid = guest_path.rsplit("/", 1)[1]
    with xapi_session(simulator) as xenapi:
        return xenapi.VM.get_record(xenapi.VM.get_by_uuid(uuid))


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@pytest.mark.parametrize("change", ["start", "delete"])
def test_change_during_export_conflicts(xen_app, xen_api, xapi_simulator,
                                        large_guest, change):
    body, _first = start_export(xen_app, xapi_simulator, large_guest)
    try:
        running = vm_record(xapi_simulator, large_guest)["current_operations"]
        assert "export" in running.values()
        if change == "start":
            response, seconds = timed(lambda: xen_api.put_json(
                large_guest + "/power", {"state": "start"}, status="*"))
        else:
            response, seconds = timed(lambda: xen_api.delete(
                large_guest, status="*"))
        record = vm_record(xapi_simulator, large_guest)
    finally:
        body.close()

    assert response.status_int == 409, response.text
    assert response.json["error"] == "InvalidState"
    assert "export" in response.json["message"]
    assert seconds < CONFLICT_WAIT / 2
    assert record["power_state"] == "Halted"
    assert xen_api.get(large_guest).json["state"] == "STOPPED"


def test_delete_during_slow_export_conflicts(xen_app, xen_api, xapi_simulator,
                                            large_guest):
    # A client that reads the whole export slowly: the export ends within
    # XAPI's wait, so without the service's check the DELETE waited for it
    # and then removed the guest.
    xapi_simulator.reset_stats()
    body, first = start_export(xen_app, xapi_simulator, large_guest)
    received = [first]

    def read_slowly():
        for chunk in body:
            received.append(chunk)
            time.sleep(0.05)
        body.close()

    reader = threading.Thread(target=read_slowly)
    reader.start()
    try:
        response = xen_api.delete(large_guest, status="*")
    finally:
        reader.join(60)

    assert not reader.is_alive(), "the export never ended"
    assert response.status_int == 409, response.text
    assert xen_api.get(large_guest).json["state"] == "STOPPED"
    with tarfile.open(fileobj=io.BytesIO(b"".join(received))) as archive:
        names = archive.getnames()
    assert names[0] == "ova.xml"
    assert len([name for name in names if name.endswith(".checksum")]) > \
        DATA_MEBIBYTES
    stats = xapi_simulator.stats()
    assert stats["calls"].get("task.create", 0) == \
        stats["calls"].get("task.destroy", 0)
    assert stats["calls"].get("task.cancel", 0) == 0
    assert stats["sessions"].get("simplestack", 0) == 0


def test_rename_during_export_allowed(xen_app, xen_api, xapi_simulator,
                                      large_guest):
    name = backends.unique_name("renamed")
    body, _first = start_export(xen_app, xapi_simulator, large_guest)
    try:
        response = xen_api.put_json(large_guest, {"name": name}, status="*")
    finally:
        body.close()

    assert response.status_int == 200, response.text
    assert xen_api.get(large_guest).json["name"] == name


def test_export_leaves_nothing_behind(xen_app, xen_api, xapi_simulator,
                                      large_guest):
    xapi_simulator.reset_stats()
    body, _first = start_export(xen_app, xapi_simulator, large_guest)
    try:
        xen_api.put_json(large_guest + "/power", {"state": "start"},
                         status=409)
        xen_api.delete(large_guest, status=409)
    finally:
        body.close()

    stats = xapi_simulator.stats()
    assert stats["calls"].get("task.create", 0) == \
        stats["calls"].get("task.destroy", 0)
    assert stats["sessions"].get("simplestack", 0) == 0
    deadline = time.monotonic() + 10
    while vm_record(xapi_simulator, large_guest)["current_operations"]:
        assert time.monotonic() < deadline, "the export never ended"
        time.sleep(0.1)
    xen_api.put_json(large_guest + "/power", {"state": "start"}, status=200)


def test_simulator_waits_then_rejects(xen_app, xapi_simulator, large_guest):
    # What the service relies on: during an export the simulator lists it in
    # current_operations, drops conflicting operations from
    # allowed_operations, lets a field write through, and fails a
    # conflicting call only after waiting CONFLICT_WAIT for the export.
    uuid = large_guest.rsplit("/", 1)[1]
    body, _first = start_export(xen_app, xapi_simulator, large_guest)
    try:
        with xapi_session(xapi_simulator) as xenapi:
            ref = xenapi.VM.get_by_uuid(uuid)
            record = xenapi.VM.get_record(ref)
            xenapi.VM.set_name_label(ref, record["name_label"])
            started = time.monotonic()
            with pytest.raises(XenAPI.Failure) as raised:
                xenapi.VM.start(ref, False, False)
            seconds = time.monotonic() - started
    finally:
        body.close()

    assert list(record["current_operations"].values()) == ["export"]
    assert "start" not in record["allowed_operations"]
    assert "destroy" not in record["allowed_operations"]
    assert "export" in record["allowed_operations"]
    assert raised.value.details[:4] == [
        "OTHER_OPERATION_IN_PROGRESS", "VM", ref, "export"]
    assert seconds >= CONFLICT_WAIT - 0.5
