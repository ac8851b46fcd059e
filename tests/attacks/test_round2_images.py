"""Image imports and exports on real QEMU, over HTTP.

An import stores the uploaded bytes as a volume without reading the qcow2
header beyond its virtual size, and an export streams a whole volume
through one waitress worker thread. These tests attack both.
"""

import shutil
import socket
import struct
import subprocess
import time

import pytest

from tests import backends
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    QEMU, guest_cleanup, http_client, pool_volume_names, qemu_connection,
    qemu_pool, random_bytes, requires_qemu, wait_for_no_clients)
from tests.conftest import make_token

pytestmark = requires_qemu

# A qcow2 header (version 3, 64 KiB clusters) with the virtual size at
# bytes 24-31. The service reads only the magic and the size before it
# requests a volume of that size from libvirt.
EXABYTE = 1 << 60

# waitress 3.0 serves with 4 worker threads unless the INI file sets
# `threads`, which testing.ini does not. More stalled downloads than that
# occupy every worker.
STALLED_EXPORTS = 8

# Large enough that an unread export fills waitress's 16 MiB output buffer
# and the socket buffers, so the worker thread blocks on the write.
STALL_IMAGE_BYTES = 48 * 1024 * 1024


def qcow2_header(virtual_size):
    header = bytearray(512)
    header[0:4] = b"QFI\xfb"
    header[4:8] = struct.pack(">I", 3)
    header[20:24] = struct.pack(">I", 16)
    header[24:32] = struct.pack(">Q", virtual_size)
    return bytes(header)


def import_path(pool, name):
    return "/storages/%s/guests?name=%s" % (pool.UUIDString(), name)


@pytest.mark.skipif(shutil.which("qemu-img") is None,
                    reason="qemu-img is not installed")
def test_import_backing_file_leaks_no_host_file(
        http_client, qemu_pool, guest_cleanup, tmp_path):
    # A qcow2 image may name a backing file anywhere on the host. Cloning
    # the imported guest copies the disk with qemu-img convert, run by
    # libvirtd as root, which reads the backing file into the clone, and
    # the clone's export then sends the host file to the caller.
    marker = b"sstest-host-secret-" + random_bytes(8).hex().encode()
    secret = tmp_path / "host-secret.raw"
    secret.write_bytes(marker.ljust(1024 * 1024, b"\0"))
    secret.chmod(0o600)
    image = tmp_path / "backed.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw",
                    "-b", str(secret), str(image), "1M"], check=True)

    status, imported = http_client.upload(
        import_path(qemu_pool, backends.unique_name("atk")),
        image.read_bytes(), "application/x-qemu-disk")

    if status != 201:
        # Rejecting images with a backing file closes the hole.
        assert status == 400, imported
        return
    guest_cleanup.append(imported["id"])
    clone = http_client.ok("POST", "/guests/%s/clone" % imported["id"],
                           {"name": backends.unique_name("atk")}, status=201)
    guest_cleanup.append(clone["id"])
    status, exported, _response = http_client.request(
        "GET", "/guests/%s/export" % clone["id"])
    assert status == 200
    leaked = marker in exported
    assert not leaked, "the clone's export contains the host file %s" % secret


def test_import_exabyte_virtual_size_is_400(http_client, qemu_pool):
    # qemu-img refuses a 1 EiB qcow2 volume, and the service returns that
    # as 502 HypervisorError, although the caller's image is at fault.
    volumes_before = pool_volume_names(qemu_pool)
    name = backends.unique_name("atk")

    status, body = http_client.upload(import_path(qemu_pool, name),
                                      qcow2_header(EXABYTE),
                                      "application/x-qemu-disk")

    assert status == 400, body
    assert body["error"] == "InvalidArguments"
    assert pool_volume_names(qemu_pool) == volumes_before
    assert http_client.request("GET", "/guests/" + name)[0] == 404


def test_import_over_one_gib_reaches_service(server, qemu_pool):
    # waitress rejects a body over its max_request_body_size (1 GiB by
    # default) with a plain-text 413 before the request reaches the service. README:
    # image streams are not limited, and every error is JSON.
    path = QEMU + import_path(qemu_pool, backends.unique_name("atk"))
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "x-simplestack-hypervisor-token: %s\r\n"
            "Content-Type: application/x-qemu-disk\r\n"
            "Content-Length: %d\r\n\r\n"
            % (path, make_token(), 2 * 1024 ** 3))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head.encode("ascii") + qcow2_header(1024 ** 3))
        sock.settimeout(5)
        try:
            answer = sock.recv(4096)
        except socket.timeout:
            answer = b""  # still reading the body: accepted

    assert b" 413 " not in answer.split(b"\r\n", 1)[0], answer


def test_export_non_latin1_name_is_200(http_client, qemu_pool,
                                       guest_cleanup):
    # The export's Content-Disposition carries the guest name, and
    # waitress encodes headers as Latin-1, so a name with "€" ends in
    # waitress's plain-text 500 while the request log records 200.
    guest = http_client.create_guest(
        guest_cleanup, name=backends.unique_name("atk-\u20ac"), hdd=1,
        storage_id=qemu_pool.UUIDString())

    status, body, response = http_client.request(
        "GET", "/guests/%s/export" % guest["id"])

    assert status == 200, body[:200]
    assert body[:4] == b"QFI\xfb"
    assert response.getheader("Content-Disposition")


def test_stalled_exports_leave_service_responsive(
        server, http_client, qemu_pool, guest_cleanup):
    # Each export runs in a waitress worker thread, which blocks once the
    # client stops reading. Clients that start exports and never read
    # hold every worker, and the service stops responding to any request.
    status, guest = http_client.upload(
        import_path(qemu_pool, backends.unique_name("atk")),
        random_bytes(STALL_IMAGE_BYTES))
    assert status == 201, guest
    guest_cleanup.append(guest["id"])
    request = ("GET %s/guests/%s/export HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "x-simplestack-hypervisor-token: %s\r\n\r\n"
               % (QEMU, guest["id"], make_token())).encode("ascii")

    sockets = []
    try:
        for _ in range(STALLED_EXPORTS):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(request)
            sockets.append(sock)
        time.sleep(3)

        try:
            status = http_client.request("GET", "/guests/" + guest["id"],
                                         timeout=10)[0]
        except socket.timeout:
            status = None
    finally:
        for sock in sockets:
            sock.close()

    assert status == 200
    assert wait_for_no_clients(server.process.pid, timeout=20) == []


def backed_volume(pool, backing_file):
    """Create a qcow2 volume in ``pool`` whose backing file is ``backing_file``."""
    return pool.createXML(
        "<volume><name>%s.qcow2</name><capacity>1048576</capacity>"
        "<target><format type='qcow2'/></target>"
        "<backingStore><path>%s</path><format type='raw'/></backingStore>"
        "</volume>" % (backends.unique_name("backed"), backing_file), 0)


@pytest.fixture
def host_secret(tmp_path):
    secret = tmp_path / "host-secret.raw"
    secret.write_bytes(b"sstest-host-secret".ljust(1024 * 1024, b"\0"))
    secret.chmod(0o600)
    return secret


@pytest.mark.parametrize("reference", ["name", "path"])
def test_template_with_backing_file_is_400(http_client, qemu_pool,
                                           host_secret, reference):
    # Creating a guest from a template copies the template with qemu-img
    # convert, which would read the backing file into the new disk.
    backed = backed_volume(qemu_pool, host_secret)
    try:
        volumes_before = pool_volume_names(qemu_pool)
        name = backends.unique_name("atk")

        status, body, _response = http_client.request("POST", "/guests", {
            "name": name, "memory": 64,
            "template": backed.name() if reference == "name"
            else backed.path(),
            "storage_id": qemu_pool.UUIDString()})

        assert status == 400, body
        assert body["error"] == "InvalidArguments"
        assert "backing file" in body["message"]
        assert pool_volume_names(qemu_pool) == volumes_before
        assert http_client.request("GET", "/guests/" + name)[0] == 404
    finally:
        backed.delete(0)


def test_clone_of_disk_with_backing_file_is_400(
        http_client, qemu_connection, qemu_pool, host_secret, guest_cleanup):
    backed = backed_volume(qemu_pool, host_secret)
    domain = qemu_connection.defineXML(backends.qemu_domain_xml(
        backends.unique_name("atk"), backed.path()))
    guest_cleanup.append(domain.UUIDString())
    volumes_before = pool_volume_names(qemu_pool)
    name = backends.unique_name("atk")

    status, body, _response = http_client.request(
        "POST", "/guests/%s/clone" % domain.UUIDString(), {"name": name})

    assert status == 400, body
    assert body["error"] == "InvalidArguments"
    assert "backing file" in body["message"]
    assert pool_volume_names(qemu_pool) == volumes_before
    assert http_client.request("GET", "/guests/" + name)[0] == 404


@pytest.mark.skipif(shutil.which("qemu-img") is None,
                    reason="qemu-img is not installed")
def test_import_external_data_file_is_400(http_client, qemu_pool, tmp_path,
                                          host_secret):
    # A qcow2 image can keep its clusters in an external data file that
    # its header names, which QEMU and qemu-img then open.
    image = tmp_path / "external.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                    "data_file=%s,data_file_raw=on" % host_secret,
                    str(image), "1M"], check=True)
    volumes_before = pool_volume_names(qemu_pool)
    name = backends.unique_name("atk")

    status, body = http_client.upload(import_path(qemu_pool, name),
                                      image.read_bytes(),
                                      "application/x-qemu-disk")

    assert status == 400, body
    assert "external data file" in body["message"]
    assert pool_volume_names(qemu_pool) == volumes_before
