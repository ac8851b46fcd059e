"""Failed or reverted requests on real QEMU: what they leave behind.

A rejected request should leave the guest as it was (README: a request
that fails validation changes nothing), and deleting a guest should leave
none of its volumes in the pool.
"""

import threading

from tests import backends
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    guest_cleanup, http_client, pool_volume_names, qemu_connection,
    qemu_pool, requires_qemu)

pytestmark = requires_qemu

# More vCPUs than QEMU's "pc" machine type takes (255), within the
# schema's maximum of 4096.
TOO_MANY_CPUS = 4096


def test_failed_cpu_change_keeps_old_name(http_client, guest_cleanup):
    # update_guest renames the domain first and redefines it with the new
    # cpus afterwards. When libvirt rejects the cpus, the rename stays.
    guest = http_client.create_guest(guest_cleanup)
    guest_path = "/guests/" + guest["id"]

    status, body, _response = http_client.request("PUT", guest_path, {
        "name": backends.unique_name("atk"), "cpus": TOO_MANY_CPUS})
    after = http_client.ok("GET", guest_path)

    assert status >= 400, body
    assert after["name"] == guest["name"]
    assert after["cpus"] == guest["cpus"]


def test_long_guest_name_is_400(http_client, qemu_pool):
    # The schema takes 255 characters, but libvirt stores the definition
    # as NAME.xml and the disk as NAME-disk0.qcow2, so a name of 250
    # characters fails with 502 "File name too long".
    volumes_before = pool_volume_names(qemu_pool)

    status, body, _response = http_client.request("POST", "/guests", {
        "name": backends.unique_name("atk").ljust(250, "x"), "memory": 64,
        "hdd": 1, "storage_id": qemu_pool.UUIDString()})

    assert status == 400, body
    assert body["error"] == "InvalidArguments"
    assert pool_volume_names(qemu_pool) == volumes_before


def test_revert_after_disk_delete_keeps_guest(http_client, qemu_pool,
                                              guest_cleanup):
    # The snapshot still lists the deleted disk. libvirt stops the guest
    # and loads the snapshot's definition before it finds the image
    # missing, so the revert fails with 502 and leaves the guest stopped,
    # with a disk whose image is gone, so it no longer starts.
    pool_id = qemu_pool.UUIDString()
    guest = http_client.create_guest(guest_cleanup, hdd=1, storage_id=pool_id)
    guest_path = "/guests/" + guest["id"]
    disk = http_client.ok("POST", guest_path + "/disks",
                          {"size": 1, "storage_id": pool_id}, status=201)
    http_client.ok("PUT", guest_path + "/power", {"state": "start"})
    snapshot = http_client.ok("POST", guest_path + "/snapshots",
                              {"name": "two disks"}, status=201)

    delete_status = http_client.request(
        "DELETE", "%s/disks/%s" % (guest_path, disk["id"]))[0]
    if delete_status != 204:
        # Refusing to delete a disk that a snapshot needs closes the hole.
        assert delete_status == 409
        return
    status, body, _response = http_client.request(
        "PUT", "%s/snapshots/%s/revert" % (guest_path, snapshot["id"]), {})
    after = http_client.ok("GET", guest_path)
    disks = http_client.ok("GET", guest_path + "/disks")

    assert status in (400, 409), body
    assert after["state"] == "STARTED"
    assert [item["id"] for item in disks] == ["0"]


def test_revert_then_delete_leaves_no_volume(http_client, qemu_pool,
                                             guest_cleanup):
    # A revert to a snapshot taken before a disk was added drops the disk
    # from the definition but keeps its volume. The guest's deletion then
    # misses that volume, and the next default disk name is taken (409).
    pool_id = qemu_pool.UUIDString()
    volumes_before = pool_volume_names(qemu_pool)
    guest = http_client.create_guest(guest_cleanup, hdd=1, storage_id=pool_id)
    guest_path = "/guests/" + guest["id"]
    snapshot = http_client.ok("POST", guest_path + "/snapshots",
                              {"name": "one disk"}, status=201)
    http_client.ok("POST", guest_path + "/disks",
                   {"size": 1, "storage_id": pool_id}, status=201)

    http_client.ok("PUT", "%s/snapshots/%s/revert" % (guest_path,
                                                     snapshot["id"]), {})
    status, body, _response = http_client.request(
        "POST", guest_path + "/disks", {"size": 1, "storage_id": pool_id})
    http_client.ok("DELETE", guest_path, status=204)

    assert status == 201, body
    assert pool_volume_names(qemu_pool) == volumes_before


def test_failed_growth_keeps_old_memory(http_client, qemu_pool,
                                        guest_cleanup):
    # update_guest redefined the memory before growing the disk, so a
    # growth libvirt rejected left the new memory in place.
    guest = http_client.create_guest(guest_cleanup, hdd=1,
                                     storage_id=qemu_pool.UUIDString())
    guest_path = "/guests/" + guest["id"]

    status, body, _response = http_client.request(
        "PUT", guest_path, {"memory": 128, "hdd": 1024 * 1024})
    after = http_client.ok("GET", guest_path)

    assert status == 400, body
    assert "free" in body["message"]
    assert after["memory"] == guest["memory"]
    assert after["hdd"] == guest["hdd"]


def test_snapshot_without_disk_is_501(http_client, guest_cleanup):
    guest = http_client.create_guest(guest_cleanup)

    status, body, _response = http_client.request(
        "POST", "/guests/%s/snapshots" % guest["id"], {"name": "none"})

    assert status == 501, body
    assert "no disk" in body["message"]


def test_parallel_deletes_of_running_guest(http_client, guest_cleanup):
    # The requests that lose the race must find the guest gone (404), not
    # fail to stop a guest another request already stopped (409).
    guest = http_client.create_guest(guest_cleanup)
    guest_path = "/guests/" + guest["id"]
    http_client.ok("PUT", guest_path + "/power", {"state": "start"})

    results = []
    threads = [threading.Thread(target=lambda: results.append(
        http_client.request("DELETE", guest_path)[0])) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(results) == [204, 404, 404]
