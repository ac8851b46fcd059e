"""HTTP fixtures for the second round of attack tests, on real QEMU.

The service runs under pserve (waitress) with testing.ini, as in
tests/test_server_libvirtd.py, so image streams, slow clients and
concurrent requests behave as in production. Import the fixtures into a
test module to use them::

    from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
        http_client, qemu_network, qemu_pool, server)

Every guest, pool and network is named with the ``sstest-`` prefix, so
``scripts/libvirtd clean`` removes what a crashed run leaves behind.
"""

import contextlib
import http.client
import json
import os
import time

import pytest

from tests import backends
from tests.conftest import CANARY_PASSWORD, make_token
from tests.libvirt_fixtures import (
    libvirtd_client_ids, open_connection, temporary_network, temporary_pool)

QEMU = "/qemu/localhost"

requires_qemu = pytest.mark.skipif(
    "qemu" not in backends.required_backends(),
    reason="SIMPLESTACK_TEST_BACKENDS does not list qemu")


class HttpClient:
    """JSON requests to the server, each with the hypervisor token."""

    def __init__(self, server, prefix=QEMU):
        self.server = server
        self.prefix = prefix

    def connect(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.server.port,
                                          timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=120):
        """Send one request; return (status, parsed JSON or raw bytes, headers)."""
        all_headers = {"x-simplestack-hypervisor-token": make_token()}
        if isinstance(body, dict):
            body = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        connection = self.connect(timeout)
        try:
            connection.request(method, self.prefix + path, body=body,
                               headers=all_headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        assert CANARY_PASSWORD.encode("utf-8") not in data
        content_type = response.getheader("Content-Type", "")
        if data and content_type.startswith("application/json"):
            data = json.loads(data)
        return response.status, data, response

    def ok(self, method, path, body=None, status=200):
        answer_status, data, _response = self.request(method, path, body)
        assert answer_status == status, (method, path, data)
        return data

    def upload(self, path, data, content_type="application/octet-stream"):
        """POST ``data`` as an image stream; return (status, parsed body)."""
        answer_status, body, _response = self.request(
            "POST", path, body=data,
            headers={"Content-Type": content_type,
                     "Content-Length": str(len(data))})
        return answer_status, body

    def create_guest(self, cleanup, **spec):
        """Create a guest and register it for deletion after the test."""
        spec.setdefault("name", backends.unique_name("atk"))
        spec.setdefault("memory", 64)
        guest = self.ok("POST", "/guests", spec, status=201)
        cleanup.append(guest["id"])
        return guest


@pytest.fixture
def http_client(server):
    return HttpClient(server)


@pytest.fixture
def guest_cleanup(http_client):
    """Ids of guests to force off and delete after the test."""
    guest_ids = []
    yield guest_ids
    for guest_id in guest_ids:
        with contextlib.suppress(OSError):
            http_client.request("PUT", "/guests/%s/power" % guest_id,
                                {"state": "force_stop"})
            http_client.request("DELETE", "/guests/" + guest_id)


@pytest.fixture(scope="module")
def qemu_connection():
    connection = open_connection("qemu")
    yield connection
    with contextlib.suppress(Exception):
        connection.close()


@pytest.fixture(scope="module")
def qemu_pool(qemu_connection):
    with temporary_pool(qemu_connection) as pool:
        yield pool


@pytest.fixture(scope="module")
def qemu_network(qemu_connection):
    with temporary_network(qemu_connection) as network:
        yield network


def pool_volume_names(pool):
    pool.refresh(0)
    return sorted(volume.name() for volume in pool.listAllVolumes(0))


def wait_for_no_clients(pid, timeout=10.0):
    """Poll libvirtd until process ``pid`` has no client left; return the ids left."""
    deadline = time.monotonic() + timeout
    clients = libvirtd_client_ids(pid)
    while clients and time.monotonic() < deadline:
        time.sleep(0.2)
        clients = libvirtd_client_ids(pid)
    return clients


def random_bytes(size):
    return os.urandom(size)
