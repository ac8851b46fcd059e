"""Whole guest lifecycles over HTTP, on real QEMU and LXC through libvirtd.

The service runs under pserve (waitress) on loopback with testing.ini, and
the test talks to it with http.client, so image streams really stream.
``virt-admin`` lists libvirtd's clients by process id, which proves that
the service closed every connection it opened, failing requests included.

These tests run for each of ``qemu`` and ``lxc`` that
SIMPLESTACK_TEST_BACKENDS lists (``scripts/test`` lists both).
"""

import hashlib
import http.client
import json
import os
import time

import pytest

from tests import backends
from tests.conftest import make_token
from tests.libvirt_fixtures import (
    iso_volume, libvirtd_client_ids, open_connection, temporary_network,
    temporary_pool)

REAL_BACKENDS = [name for name in backends.required_backends()
                 if name in ("qemu", "lxc")]

pytestmark = pytest.mark.skipif(
    not REAL_BACKENDS,
    reason="SIMPLESTACK_TEST_BACKENDS lists neither qemu nor lxc")


class Client:
    """A small HTTP client for the server, with the hypervisor token."""

    def __init__(self, server, prefix):
        self.server = server
        self.prefix = prefix

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.server.port, timeout=120)
        all_headers = {"x-simplestack-hypervisor-token": make_token()}
        all_headers.update(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        connection.request(method, self.prefix + path, body=body,
                           headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        connection.close()
        parsed = json.loads(data) if data and response.getheader(
            "Content-Type", "").startswith("application/json") else data
        return response, parsed

    def ok(self, method, path, body=None, status=200):
        response, data = self.request(method, path, body)
        assert response.status == status, (method, path, data)
        return data

    def download(self, path, target):
        """Stream GET ``path`` into ``target``; return (response, sha256)."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.server.port, timeout=120)
        connection.request("GET", self.prefix + path, headers={
            "x-simplestack-hypervisor-token": make_token()})
        response = connection.getresponse()
        digest = hashlib.sha256()
        with open(target, "wb") as output:
            while True:
                chunk = response.read(256 * 1024)
                if not chunk:
                    break
                digest.update(chunk)
                output.write(chunk)
        connection.close()
        return response, digest.hexdigest()

    def upload(self, path, source, content_type):
        """POST the file ``source`` as a stream with its Content-Length."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.server.port, timeout=120)
        with open(source, "rb") as body:
            connection.request("POST", self.prefix + path, body=body, headers={
                "x-simplestack-hypervisor-token": make_token(),
                "Content-Type": content_type,
                "Content-Length": str(os.path.getsize(source))})
            response = connection.getresponse()
            data = json.loads(response.read())
        connection.close()
        return response, data


def wait_for_no_clients(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    clients = libvirtd_client_ids(pid)
    while clients and time.monotonic() < deadline:
        time.sleep(0.2)
        clients = libvirtd_client_ids(pid)
    return clients


@pytest.fixture(scope="module")
def qemu_resources():
    connection = open_connection("qemu")
    with temporary_pool(connection) as pool, \
            temporary_pool(connection, "isos") as isos, \
            temporary_network(connection) as network, \
            iso_volume(connection, isos) as iso_name:
        yield {"pool": pool, "network": network, "iso": iso_name}
    connection.close()


@pytest.mark.skipif("qemu" not in REAL_BACKENDS,
                    reason="SIMPLESTACK_TEST_BACKENDS does not list qemu")
def test_qemu_lifecycle_over_http(server, qemu_resources, tmp_path):
    client = Client(server, "/qemu/localhost")
    pool_id = qemu_resources["pool"].UUIDString()
    network = qemu_resources["network"].name()
    created = []

    try:
        # Create: a 1 GiB qcow2 disk in the test pool and an empty CD drive.
        response, guest = client.request("POST", "/guests", {
            "name": backends.unique_name("api"), "cpus": 1, "memory": 64,
            "hdd": 1, "storage_id": pool_id})
        assert response.status == 201, guest
        created.append(guest["id"])
        assert response.getheader("Location") == \
            "/qemu/localhost/guests/" + guest["id"]
        assert guest["hdd"] == 1
        assert guest["state"] == "STOPPED"
        guest_path = "/guests/" + guest["id"]

        # Power: every response carries the state read back.
        for action, state in [("start", "STARTED"), ("pause", "PAUSED"),
                              ("resume", "STARTED")]:
            answer = client.ok("PUT", guest_path + "/power",
                               {"state": action})
            assert answer["state"] == state
        assert client.ok("PUT", guest_path + "/reboot",
                         {"force": True})["state"] == "STARTED"
        assert client.ok("PUT", guest_path + "/power",
                         {"state": "force_stop"})["state"] == "STOPPED"
        response, conflict = client.request("PUT", guest_path + "/power",
                                            {"state": "pause"})
        assert response.status == 409
        assert "STOPPED" in conflict["message"]

        # A second disk and a NIC, then both removed.
        disk = client.ok("POST", guest_path + "/disks",
                         {"size": 1, "storage_id": pool_id}, status=201)
        assert len(client.ok("GET", guest_path + "/disks")) == 2
        assert client.ok("GET", guest_path)["hdd"] == 2
        grown = client.ok("PUT", guest_path + "/disks/" + disk["id"],
                          {"size": 2})
        assert grown["size"] == 2
        response, shrink = client.request(
            "PUT", guest_path + "/disks/" + disk["id"], {"size": 1})
        assert response.status == 400, shrink
        nic = client.ok("POST", guest_path + "/network_interfaces",
                        {"network": network}, status=201)
        assert nic["network"] == network
        assert nic["id"] == nic["mac"]
        assert client.ok("GET", guest_path + "/network_interfaces/"
                         + nic["mac"].upper()) == nic
        client.ok("DELETE", guest_path + "/network_interfaces/" + nic["id"],
                  status=204)
        client.ok("DELETE", guest_path + "/disks/" + disk["id"], status=204)
        assert client.ok("GET", guest_path)["hdd"] == 1

        # The ISO: mounted, read back, ejected.
        media_path = guest_path + "/media_device"
        assert client.ok("GET", media_path) == {"name": None}
        assert client.ok("PUT", media_path,
                         {"name": qemu_resources["iso"]}) == {
            "name": qemu_resources["iso"]}
        assert client.ok("GET", media_path)["name"] == qemu_resources["iso"]
        assert client.ok("PUT", media_path, {"name": None}) == {"name": None}

        # Snapshot, change, revert.
        snapshot = client.ok("POST", guest_path + "/snapshots",
                             {"name": "clean"}, status=201)
        client.ok("PUT", guest_path, {"memory": 96})
        reverted = client.ok("PUT", guest_path + "/snapshots/"
                             + snapshot["id"] + "/revert", {})
        assert reverted["memory"] == 64
        client.ok("DELETE", guest_path + "/snapshots/" + snapshot["id"],
                  status=204)

        # Clone.
        response, clone = client.request("POST", guest_path + "/clone", {
            "name": backends.unique_name("clone")})
        assert response.status == 201, clone
        created.append(clone["id"])
        assert clone["hdd"] == 1
        assert clone["id"] != guest["id"]

        # Export streams the disk image; import it back as a new guest.
        exported = str(tmp_path / "export.img")
        response, digest = client.download(guest_path + "/export", exported)
        assert response.status == 200
        assert response.getheader("Content-Type") in (
            "application/x-qemu-disk", "application/octet-stream")
        # HEAD sends the headers that GET sends of the image.
        headed, _body = client.request("HEAD", guest_path + "/export")
        assert headed.status == 200
        for name in ("Content-Type", "Content-Disposition",
                     "Content-Length"):
            assert headed.getheader(name) == response.getheader(name), name
        with open(exported, "rb") as image:
            assert image.read(4) == b"QFI\xfb"
        response, imported = client.upload(
            "/storages/%s/guests?name=%s" % (
                pool_id, backends.unique_name("import")),
            exported, "application/json")
        assert response.status == 201, imported
        created.append(imported["id"])
        reexported = str(tmp_path / "reexport.img")
        _response, second_digest = client.download(
            "/guests/%s/export" % imported["id"], reexported)
        assert second_digest == digest

        # Delete: the guest and its volumes are gone.
        volumes_before = {volume.name() for volume in
                          qemu_resources["pool"].listAllVolumes(0)}
        client.ok("DELETE", guest_path, status=204)
        created.remove(guest["id"])
        response, _body = client.request("GET", guest_path)
        assert response.status == 404
        qemu_resources["pool"].refresh(0)
        volumes_after = {volume.name() for volume in
                         qemu_resources["pool"].listAllVolumes(0)}
        assert len(volumes_after) == len(volumes_before) - 1
    finally:
        for guest_id in created:
            client.request("PUT", "/guests/%s/power" % guest_id,
                           {"state": "force_stop"})
            client.request("DELETE", "/guests/" + guest_id)

    # Every connection of the server process is closed, the failing
    # requests (400, 404) and the streams included.
    assert wait_for_no_clients(server.process.pid) == []


@pytest.mark.skipif("lxc" not in REAL_BACKENDS,
                    reason="SIMPLESTACK_TEST_BACKENDS does not list lxc")
def test_lxc_lifecycle_over_http(server):
    client = Client(server, "/lxc/localhost")
    response, guest = client.request("POST", "/guests", {
        "name": backends.unique_name("ct"), "memory": 64})
    assert response.status == 201, guest
    guest_path = "/guests/" + guest["id"]
    try:
        for action, state in [("start", "STARTED"), ("pause", "PAUSED"),
                              ("resume", "STARTED"),
                              ("force_stop", "STOPPED")]:
            assert client.ok("PUT", guest_path + "/power",
                             {"state": action})["state"] == state

        # What LXC cannot do returns 501 and names the cause.
        response, body = client.request("POST", guest_path + "/snapshots",
                                        {"name": "x"})
        assert response.status == 501
        assert body["error"] == "FeatureNotImplemented"
        assert "LXC" in body["message"]

        assert client.ok("POST", guest_path + "/tags", {"name": "web"},
                         status=201) == ["web"]
    finally:
        client.request("PUT", guest_path + "/power", {"state": "force_stop"})
        client.request("DELETE", guest_path)

    response, _body = client.request("GET", guest_path)
    assert response.status == 404
    assert wait_for_no_clients(server.process.pid) == []
