"""Changes of a QEMU guest while its disk is being exported.

An export needs a stopped guest so that the image is consistent, but only
its start checks the state. A start during the stream succeeded, and the
running guest could write to the disk that was still being read. Changes
now get 409 until the export's stream closes.
"""

import time

import os

from tests import backends
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    guest_cleanup, http_client, qemu_connection, qemu_pool, requires_qemu)
from tests.attacks.test_round2_images import import_path
from tests.conftest import make_token

pytestmark = requires_qemu

#: Large enough that the export is still streaming when the start comes.
IMAGE_BYTES = 48 * 1024 * 1024

#: Seconds the server may take to notice a closed export connection.
CLOSE_TIMEOUT = 10


def test_start_during_export_is_409(http_client, qemu_pool,  # noqa: F811
                                    guest_cleanup):  # noqa: F811
    status, guest = http_client.upload(
        import_path(qemu_pool, backends.unique_name("n4-export")),
        os.urandom(IMAGE_BYTES))
    assert status == 201, guest
    guest_cleanup.append(guest["id"])
    path = "/guests/" + guest["id"]
    connection = http_client.connect()
    try:
        connection.request("GET", http_client.prefix + path + "/export",
                           headers={"x-simplestack-hypervisor-token":
                                    make_token()})
        export = connection.getresponse()
        assert export.status == 200
        export.read(1024 * 1024)

        started, body, _response = http_client.request(
            "PUT", path + "/power", {"state": "start"})

        assert started == 409, body
        assert http_client.ok("GET", path)["state"] == "STOPPED"
    finally:
        connection.close()

    deadline = time.monotonic() + CLOSE_TIMEOUT
    started, body, _response = http_client.request(
        "PUT", path + "/power", {"state": "start"})
    while started == 409 and time.monotonic() < deadline:
        time.sleep(0.2)
        started, body, _response = http_client.request(
            "PUT", path + "/power", {"state": "start"})
    assert started == 200, body
