"""Clients that stop sending an image upload or reading an export, against
production.ini's gunicorn.

gunicorn's threaded workers read a request body and write a response
without a timeout, so without simplestack.client_timeout such a request
kept its thread and its XAPI session until the client went away.
"""

import hashlib
import io
import json
import os
import socket
import tarfile
import time
import urllib.error
import urllib.request

import pytest

from tests.attacks import stack
from tests.operations.servers import (
    ProductionServer, derive_production_ini, http_get)

CLIENT_TIMEOUT = 3

#: MiB of random data blocks added to the exported guest's disk, so that the
#: export is far larger than what the socket buffers can take
#: (net.ipv4.tcp_wmem's maximum is 4 MiB in Linux's default settings).
ADDED_MEBIBYTES = 32


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
        answer = sock.recv(65536)

    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    # The rest of the body never comes, so the connection cannot be reused.
    assert b"\r\nConnection: close\r\n" in answer, answer[:200]
    assert b'"RequestTimeout"' in answer
    status, _, body = http_get(production.url + "/healthz")
    assert status == 200, body


def service_request(production, simulator, method, path, body=None,
                    content_type=None):
    """Send a request to the Xen pool's path; return (status, body)."""
    headers = {stack.TOKEN_HEADER: stack.canary_token("root")}
    if content_type is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(
        "%s/xen/%s%s" % (production.url, simulator.netloc, path),
        data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def with_data_blocks(xva, mebibytes):
    """Return the XVA ``xva`` with ``mebibytes`` random 1 MiB blocks added
    to its first disk, each with its SHA-1 checksum member."""
    source = tarfile.open(fileobj=io.BytesIO(xva))
    output = io.BytesIO()
    target = tarfile.open(fileobj=output, mode="w")
    for member in source.getmembers():
        data = source.extractfile(member).read()
        if member.name.endswith("/00000000"):
            disk = member.name.split("/")[0]
            for index in range(1, mebibytes + 1):
                block = os.urandom(1 << 20)
                checksum = hashlib.sha1(block).hexdigest().encode("ascii")
                for name, content in (
                        ("%s/%08d" % (disk, index), block),
                        ("%s/%08d.checksum" % (disk, index), checksum)):
                    info = tarfile.TarInfo(name)
                    info.size = len(content)
                    target.addfile(info, io.BytesIO(content))
        target.addfile(member, io.BytesIO(data))
    target.close()
    return output.getvalue()


@pytest.fixture(scope="module")
def large_guest(simulator, production):
    """A guest whose export is over ADDED_MEBIBYTES MiB."""
    status, body = service_request(
        production, simulator, "POST", "/guests",
        json.dumps({"name": "round3-small", "hdd": 1}).encode("utf-8"),
        "application/json")
    assert status == 201, body
    small = json.loads(body)
    status, xva = service_request(
        production, simulator, "GET", "/guests/%s/export" % small["id"])
    assert status == 200
    status, body = service_request(
        production, simulator, "POST", "/guests?name=round3-large",
        with_data_blocks(xva, ADDED_MEBIBYTES), "application/x-xva")
    assert status == 201, body
    return json.loads(body)


def test_stalled_export_frees_session(simulator, production, large_guest):
    request = (
        b"GET /xen/" + simulator.netloc.encode("ascii") + b"/guests/"
        + large_guest["id"].encode("ascii") + b"/export HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n" + stack.TOKEN_HEADER.encode("ascii") + b": "
        + stack.canary_token("root").encode("ascii") + b"\r\n\r\n")

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # A small receive buffer, set before connecting, keeps the window
        # small, so the service's writes block soon.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(stack.CLIENT_TIMEOUT)
        sock.connect(("127.0.0.1", production.port))
        sock.sendall(request)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert wait_for_sessions(simulator, 1, 10)

        # The client stops reading and keeps its connection open.
        assert wait_for_sessions(simulator, 0, CLIENT_TIMEOUT + 20), \
            "the stalled export still holds its XAPI session"

    status, _, body = http_get(production.url + "/healthz")
    assert status == 200, body
