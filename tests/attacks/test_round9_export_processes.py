"""Changes of a QEMU guest, through another service process, while its disk
is being exported.

Changes of a guest get 409 while an export of its disk streams, so that a
started guest cannot write to the image halfway through. The mark of an
export lived in the memory of the process that served it. production.ini
runs 2 gunicorn workers, so a start that reached the other worker started
the guest during the export. Here two pserve processes stand for two
workers: the export goes to one, the changes to the other.
"""

import os

import pytest

from simplestack.adapters.libvirt import export_marks
from tests import backends
from tests.attacks import stack
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    HttpClient, guest_cleanup, http_client, qemu_connection, qemu_pool,
    requires_qemu)
from tests.attacks.test_round2_images import import_path
from tests.conftest import CANARY_PASSWORD, make_token
from tests.server import Server

pytestmark = requires_qemu

#: Large enough that the export is still streaming when the changes come.
IMAGE_BYTES = 48 * 1024 * 1024

#: Seconds the server may take to notice a closed export connection.
CLOSE_TIMEOUT = 10


@pytest.fixture(scope="module")
def other_server(tmp_path_factory):
    """A second pserve process of testing.ini, beside ``server``."""
    running = Server(str(tmp_path_factory.mktemp("other") / "pserve.log"))
    running.start()
    yield running
    running.stop()
    assert CANARY_PASSWORD not in running.read_log()


@pytest.fixture
def other_client(other_server):
    return HttpClient(other_server)


def start_export(http_client, guest_id):
    """Start an export of the guest and return (the open connection, the
    response, the length of the first MiB read of it)."""
    connection = http_client.connect()
    connection.request("GET", "%s/guests/%s/export" % (
        http_client.prefix, guest_id),
        headers={"x-simplestack-hypervisor-token": make_token()})
    export = connection.getresponse()
    return connection, export, len(export.read(1024 * 1024))


def test_other_process_change_during_export_is_409(
        http_client, other_client, qemu_pool,  # noqa: F811
        guest_cleanup):  # noqa: F811
    status, guest = http_client.upload(
        import_path(qemu_pool, backends.unique_name("r9-export")),
        os.urandom(IMAGE_BYTES))
    assert status == 201, guest
    guest_cleanup.append(guest["id"])
    path = "/guests/" + guest["id"]

    connection, export, first_length = start_export(http_client,
                                                     guest["id"])
    assert export.status == 200
    assert first_length == 1024 * 1024
    try:
        started, start_body, _ = other_client.request(
            "PUT", path + "/power", {"state": "start"})
        resized, resize_body, _ = other_client.request(
            "PUT", path, {"memory": 128})
        # Exports run side by side, in any process.
        second_connection, second, _length = start_export(other_client,
                                                          guest["id"])
        second_connection.close()
        record = other_client.ok("GET", path)
    finally:
        connection.close()

    assert started == 409, start_body
    assert start_body["error"] == "InvalidState"
    assert "export" in start_body["message"]
    assert resized == 409, resize_body
    assert record["state"] == "STOPPED"
    assert record["memory"] == guest["memory"]
    assert second.status == 200

    # The mark ends with the export, in every process.
    def start_status():
        status, _body, _ = other_client.request(
            "PUT", path + "/power", {"state": "start"})
        return status

    assert stack.wait_for(start_status, 200, CLOSE_TIMEOUT) == 200


def test_deleted_guest_leaves_no_marks(http_client, qemu_pool,  # noqa: F811
                                       guest_cleanup):  # noqa: F811
    # Each changed or exported guest has lock files in MARKS_DIR. A host
    # whose guests come and go would keep the files of the deleted ones.
    status, guest = http_client.upload(
        import_path(qemu_pool, backends.unique_name("r9-marks")),
        os.urandom(1024 * 1024))
    assert status == 201, guest
    guest_cleanup.append(guest["id"])
    path = "/guests/" + guest["id"]
    http_client.ok("PUT", path, {"memory": 128})
    marks = [os.path.join(export_marks.MARKS_DIR, "%s.%s" % (guest["id"],
                                                             kind))
             for kind in ("change", "export")]
    assert all(os.path.exists(mark) for mark in marks)

    deleted, body, _ = http_client.request("DELETE", path)

    assert deleted == 204, body
    assert [mark for mark in marks if os.path.exists(mark)] == []
