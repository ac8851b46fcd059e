"""A client that stops sending an image upload, against production.ini's
gunicorn.

gunicorn's threaded workers read a request body without a timeout, so
without simplestack.client_timeout such a request kept its thread and its
XAPI session until the client went away.
"""

import os
import socket
import tarfile
import time

import pytest

from tests.attacks import stack
from tests.operations.servers import (
    ProductionServer, derive_production_ini, http_get)

CLIENT_TIMEOUT = 3


@pytest.fixture(scope="module")
def simulator():
    running = stack.start_xapi(vms=1)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def production(tmp_path_factory, simulator):
    folder = str(tmp_path_factory.mktemp("round3-stalled"))
    ini_path = derive_production_ini(os.path.join(folder, "production.ini"), {
        "simplestack.hypervisor.xen.allowed_hosts": "127.0.0.0/8",
        "simplestack.hypervisor.xen.ca_bundle": simulator.ca_bundle,
        "simplestack.client_timeout": str(CLIENT_TIMEOUT),
    })
    server = ProductionServer(os.path.join(folder, "production.log"),
                              ini_path)
    server.start()
    yield server
    server.stop()
    assert not stack.leaks_canary(server.read_log())


def open_sessions(simulator):
    return simulator.stats()["sessions"].get("simplestack", 0)


def wait_for_sessions(simulator, expected, timeout):
    deadline = time.monotonic() + timeout
    while open_sessions(simulator) != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_stalled_upload_frees_session(simulator, production):
    member = tarfile.TarInfo("ova.xml")
    member.size = 5000
    # The start of an XVA: the header of its first member and a little of
    # its content, out of the 100 MB that Content-Length announces.
    head = member.tobuf(format=tarfile.USTAR_FORMAT) + b"<" * 100
    request = (
        b"POST /xen/" + simulator.netloc.encode("ascii")
        + b"/guests?name=stalled HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-xva\r\nContent-Length: 100000000\r\n"
        + stack.TOKEN_HEADER.encode("ascii") + b": "
        + stack.canary_token("root").encode("ascii") + b"\r\n\r\n" + head)

    with socket.create_connection(("127.0.0.1", production.port),
                                  stack.CLIENT_TIMEOUT) as sock:
        sock.sendall(request)
        assert wait_for_sessions(simulator, 1, 10), \
            "the upload never opened its XAPI session"
        started = time.monotonic()

        # The client keeps its connection open and sends nothing more.
        assert wait_for_sessions(simulator, 0, CLIENT_TIMEOUT + 10), \
            "the stalled upload still holds its XAPI session"
        assert time.monotonic() - started >= CLIENT_TIMEOUT - 1

    status, _, body = http_get(production.url + "/healthz")
    assert status == 200, body
