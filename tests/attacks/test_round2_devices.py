"""Disks, network interfaces and the media device: wrong ids, odd names, races.

The network checks run on the test driver too. The others need QEMU,
because the test driver cannot attach devices.
"""

import threading

import pytest

from tests import backends
from tests.api.conftest import unique_name
from tests.attacks.conftest import GUESTS, HOST
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    guest_cleanup, http_client, pool_volume_names, qemu_connection,
    qemu_network, qemu_pool, requires_qemu)

# Concurrent requests per race test: enough to collide on one free
# target letter or USB port, few enough for a 64 MiB TCG guest.
CONCURRENT_REQUESTS = 4

# Rounds of a race test whose collision depends on timing.
RACE_ROUNDS = 10


def run_concurrently(calls):
    """Run each zero-argument call in its own thread; return their results."""
    results = [None] * len(calls)

    def run(index, call):
        results[index] = call()

    threads = [threading.Thread(target=run, args=(index, call))
               for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_guest_network_by_id_is_stored_by_name(api):
    # The adapter finds the network by its UUID, the id of GET /networks,
    # then writes that UUID into <source network=...>, where libvirt
    # expects a name. The NIC names a network that does not exist.
    network = api.get(HOST + "/networks").json[0]
    response = api.post_json(GUESTS, {"name": unique_name(),
                                      "network": network["id"]},
                             status="*")
    if response.status_int != 201:
        assert response.status_int == 400, response.text
        return
    guest_path = "%s/%s" % (GUESTS, response.json["id"])
    try:
        nics = api.get(guest_path + "/network_interfaces").json

        assert [nic["network"] for nic in nics] == [network["name_label"]]
    finally:
        api.delete(guest_path, status="*")


@requires_qemu
def test_nic_network_by_id_keeps_guest_startable(
        http_client, qemu_network, guest_cleanup):
    guest = http_client.create_guest(guest_cleanup)
    guest_path = "/guests/" + guest["id"]

    status, nic, _response = http_client.request(
        "POST", guest_path + "/network_interfaces",
        {"network": qemu_network.UUIDString()})
    if status != 201:
        assert status == 400, nic
        return
    status, answer, _response = http_client.request(
        "PUT", guest_path + "/power", {"state": "start"})

    assert nic["network"] == qemu_network.name()
    assert status == 200, answer
    assert answer["state"] == "STARTED"


@requires_qemu
@pytest.mark.parametrize("name", [".", ".."])
def test_dot_disk_name_is_400(http_client, qemu_pool, guest_cleanup, name):
    # A volume named "." or ".." is the pool folder or its parent. libvirt
    # rejects it with VIR_ERR_OPERATION_INVALID, which the adapter reports
    # as 409 InvalidState, an error about the guest's state.
    guest = http_client.create_guest(guest_cleanup)

    status, body, _response = http_client.request(
        "POST", "/guests/%s/disks" % guest["id"],
        {"size": 1, "name": name, "storage_id": qemu_pool.UUIDString()})

    assert status == 400, body
    assert body["error"] == "InvalidArguments"


@requires_qemu
def test_media_rejects_other_guest_disk(http_client, qemu_pool,
                                        guest_cleanup):
    # The media name is looked up among all volumes of all pools, so the
    # writable disk of another guest goes into the CD drive: this guest can
    # read it, and while the owner runs, this guest cannot start.
    owner = http_client.create_guest(guest_cleanup, hdd=1,
                                     storage_id=qemu_pool.UUIDString())
    reader = http_client.create_guest(guest_cleanup)
    owner_disk = http_client.ok("GET", "/guests/%s/disks" % owner["id"])[0]

    status, body, _response = http_client.request(
        "PUT", "/guests/%s/media_device" % reader["id"],
        {"name": owner_disk["name"]})
    media = http_client.ok("GET", "/guests/%s/media_device" % reader["id"])

    assert status in (400, 409), body
    assert media == {"name": None}


@requires_qemu
@pytest.mark.parametrize("state", ["stop", "start"])
def test_concurrent_disk_adds_all_succeed(http_client, qemu_pool,
                                          guest_cleanup, state):
    # create_disk picks the first free target letter from the XML without
    # a lock, so concurrent adds take the same letter. The other requests
    # fail with 409 Conflict or 502 HypervisorError, because the default
    # volume name comes from that letter and collides too.
    guest = http_client.create_guest(guest_cleanup, hdd=1,
                                     storage_id=qemu_pool.UUIDString())
    guest_path = "/guests/" + guest["id"]
    if state == "start":
        http_client.ok("PUT", guest_path + "/power", {"state": "start"})
    volumes_before = pool_volume_names(qemu_pool)

    def add_disk():
        return http_client.request("POST", guest_path + "/disks", {
            "size": 1, "storage_id": qemu_pool.UUIDString()})[:2]

    results = run_concurrently([add_disk] * CONCURRENT_REQUESTS)
    disks = http_client.ok("GET", guest_path + "/disks")

    assert [status for status, _body in results] == \
        [201] * CONCURRENT_REQUESTS, results
    assert len(disks) == 1 + CONCURRENT_REQUESTS
    assert len(pool_volume_names(qemu_pool)) == \
        len(volumes_before) + CONCURRENT_REQUESTS


@requires_qemu
def test_concurrent_nic_adds_all_succeed(http_client, qemu_network,
                                         guest_cleanup):
    # create_nic picks the first free USB port without a lock, so all but
    # one running hot-plug fail with 502 "usb port 1 ... in use".
    guest = http_client.create_guest(guest_cleanup)
    guest_path = "/guests/" + guest["id"]
    http_client.ok("PUT", guest_path + "/power", {"state": "start"})

    def add_nic():
        return http_client.request("POST", guest_path + "/network_interfaces",
                                   {"network": qemu_network.name()})[:2]

    results = run_concurrently([add_nic] * CONCURRENT_REQUESTS)
    nics = http_client.ok("GET", guest_path + "/network_interfaces")

    assert [status for status, _body in results] == \
        [201] * CONCURRENT_REQUESTS, results
    assert len(nics) == CONCURRENT_REQUESTS


@requires_qemu
def test_concurrent_imports_of_one_name_conflict(http_client, qemu_pool):
    # Every import but one must fail with 409 Conflict. The ones that pass
    # the name checks together fail later in libvirt with
    # VIR_ERR_STORAGE_VOL_EXIST, which the adapter returns as 502. Not every
    # round hits the race, so the test runs several.
    image = b"\0" * (1024 * 1024)
    statuses = []
    for _round in range(RACE_ROUNDS):
        name = backends.unique_name("atk")
        path = "/storages/%s/guests?name=%s" % (qemu_pool.UUIDString(), name)

        results = run_concurrently(
            [lambda: http_client.upload(path, image)] * CONCURRENT_REQUESTS)
        for status, body in results:
            if status == 201:
                http_client.request("DELETE", "/guests/" + body["id"])
        statuses.append(sorted(status for status, _body in results))

    expected = [201] + [409] * (CONCURRENT_REQUESTS - 1)
    assert statuses == [expected] * RACE_ROUNDS


@pytest.fixture
def inactive_network(qemu_connection):
    """A defined network that was never started."""
    network = qemu_connection.networkDefineXML(
        "<network><name>%s</name></network>" % backends.unique_name("net"))
    yield network
    network.undefine()


def test_unknown_network_id_is_404(api):
    name = unique_name()

    response = api.post_json(GUESTS, {
        "name": name, "network": "00000000-0000-4000-8000-000000000000"},
        status="*")

    assert response.status_int == 404, response.text
    assert api.get(GUESTS + "/" + name, status="*").status_int == 404


@requires_qemu
def test_nic_update_network_by_id(http_client, qemu_network, guest_cleanup):
    guest = http_client.create_guest(guest_cleanup,
                                     network=qemu_network.name())
    nic = http_client.ok("GET", "/guests/%s/network_interfaces"
                         % guest["id"])[0]

    updated = http_client.ok("PUT", "/guests/%s/network_interfaces/%s" % (
        guest["id"], nic["id"]), {"network": qemu_network.UUIDString()})

    assert updated["network"] == qemu_network.name()


@requires_qemu
def test_nic_on_inactive_network_is_409(http_client, inactive_network,
                                        guest_cleanup):
    # libvirt reports the inactive network as VIR_ERR_OPERATION_INVALID,
    # which the adapter reported as the guest's state (InvalidState).
    guest = http_client.create_guest(guest_cleanup)
    guest_path = "/guests/" + guest["id"]
    http_client.ok("PUT", guest_path + "/power", {"state": "start"})

    status, body, _response = http_client.request(
        "POST", guest_path + "/network_interfaces",
        {"network": inactive_network.UUIDString()})
    nics = http_client.ok("GET", guest_path + "/network_interfaces")

    assert status == 409, body
    assert body["error"] == "Conflict"
    assert "inactive" in body["message"]
    assert nics == []


@requires_qemu
def test_start_on_inactive_network_is_409(http_client, inactive_network,
                                          guest_cleanup):
    guest = http_client.create_guest(guest_cleanup,
                                     network=inactive_network.name())

    status, body, _response = http_client.request(
        "PUT", "/guests/%s/power" % guest["id"], {"state": "start"})

    assert status == 409, body
    assert body["error"] == "Conflict"
    assert inactive_network.name() in body["message"]
    assert http_client.ok("GET", "/guests/" + guest["id"])["state"] == \
        "STOPPED"


def test_cpus_over_driver_max_is_400(api):
    # The test driver takes at most 32 vCPUs (virConnectGetMaxVcpus).
    name = unique_name()

    response = api.post_json(GUESTS, {"name": name, "cpus": 33},
                             status="*")

    assert response.status_int == 400, response.text
    assert "at most 32" in response.json["message"]
    assert api.get(GUESTS + "/" + name, status="*").status_int == 404


@requires_qemu
def test_same_mac_on_two_guests_is_409(http_client, qemu_network,
                                       guest_cleanup):
    first = http_client.create_guest(guest_cleanup)
    second = http_client.create_guest(guest_cleanup)
    mac = "52:54:00:5a:5b:5c"
    http_client.ok("POST", "/guests/%s/network_interfaces" % first["id"],
                   {"network": qemu_network.name(), "mac": mac}, status=201)

    status, body, _response = http_client.request(
        "POST", "/guests/%s/network_interfaces" % second["id"],
        {"network": qemu_network.name(), "mac": mac})
    nics = http_client.ok("GET", "/guests/%s/network_interfaces"
                          % second["id"])

    assert status == 409, body
    assert body["error"] == "Conflict"
    assert first["name"] in body["message"]
    assert nics == []


@requires_qemu
def test_media_rejects_qcow2_volume(http_client, qemu_pool, guest_cleanup):
    # The CD-ROM drive reads its image as raw data, so a qcow2 volume
    # would show the guest its metadata.
    volume = qemu_pool.createXML(
        "<volume><name>%s.qcow2</name><capacity>1048576</capacity>"
        "<target><format type='qcow2'/></target></volume>"
        % backends.unique_name("cd"), 0)
    try:
        guest = http_client.create_guest(guest_cleanup)

        status, body, _response = http_client.request(
            "PUT", "/guests/%s/media_device" % guest["id"],
            {"name": volume.name()})
        media = http_client.ok("GET", "/guests/%s/media_device"
                               % guest["id"])

        assert status == 400, body
        assert "qcow2" in body["message"]
        assert media == {"name": None}
    finally:
        volume.delete(0)


@requires_qemu
def test_disk_name_avoids_leftover_volume(http_client, qemu_pool,
                                          guest_cleanup):
    # A volume left in the pool under the default name of the next disk
    # made the add fail with 409.
    guest = http_client.create_guest(guest_cleanup, hdd=1,
                                     storage_id=qemu_pool.UUIDString())
    leftover = qemu_pool.createXML(
        "<volume><name>%s-disk2.qcow2</name><capacity>1048576</capacity>"
        "<target><format type='qcow2'/></target></volume>"
        % guest["name"], 0)
    try:
        disk = http_client.ok("POST", "/guests/%s/disks" % guest["id"], {
            "size": 1, "storage_id": qemu_pool.UUIDString()}, status=201)

        assert disk["number"] == 2
        assert disk["name"] == "%s-disk2-1.qcow2" % guest["name"]
    finally:
        leftover.delete(0)
