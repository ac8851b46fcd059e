"""Guests through the whole application, on libvirt's test driver."""

import pytest

from tests.api.conftest import unique_name

HOST = "/test/default"
GUESTS = HOST + "/guests"
GUEST_FIELDS = {"id", "name", "cpus", "memory", "hdd", "paravirtualized",
                "tools_up_to_date", "ip", "state", "host"}


def test_service_root_lists_types(anonymous):
    body = anonymous.get("/").json
    assert {"test", "kvm", "qemu", "lxc", "hyperv"} <= set(body["hypervisors"])
    assert body["version"]


def test_pool_record(api):
    pool = api.get(HOST).json
    assert set(pool) >= {"used_memory", "total_memory", "uuid", "master",
                         "software_info"}
    assert isinstance(pool["total_memory"], int)
    assert 0 <= pool["used_memory"] <= pool["total_memory"]
    assert "version" in pool["software_info"]


def test_list_has_full_records(api, guest):
    guests = api.get(GUESTS).json
    assert guests, "the test driver always has its default guest"
    for record in guests:
        assert set(record) == GUEST_FIELDS
        assert record["state"] in ("STARTED", "STOPPED", "PAUSED", "UNKNOWN")
    by_id = {record["id"]: record for record in guests}
    assert by_id[guest["id"]] == api.get(
        "%s/%s" % (GUESTS, guest["id"])).json


def test_list_is_ordered_by_id(api, guest):
    ids = [record["id"] for record in api.get(GUESTS).json]
    assert ids == sorted(ids)


def test_create_answers_201_with_relative_location(api):
    name = unique_name()
    response = api.post_json(GUESTS, {"name": name, "cpus": 2,
                                      "memory": 256})
    try:
        assert response.status_int == 201
        record = response.json
        assert record["name"] == name
        assert record["cpus"] == 2
        assert record["memory"] == 256
        assert record["state"] == "STOPPED"
        assert response.headers["Location"] == "%s/%s" % (GUESTS,
                                                           record["id"])
        assert api.get(response.headers["Location"]).json == record
    finally:
        api.delete("%s/%s" % (GUESTS, response.json["id"]), status="*")


def test_guest_id_is_lowercase_uuid_any_case_accepted(api, guest):
    assert guest["id"] == guest["id"].lower()
    assert len(guest["id"]) == 36
    upper = api.get("%s/%s" % (GUESTS, guest["id"].upper())).json
    assert upper["id"] == guest["id"]


def test_guest_path_takes_name(api, guest):
    by_name = "%s/%s" % (GUESTS, guest["name"])

    assert api.get(by_name).json == guest
    assert api.get(by_name + "/tags").json == []
    unknown = api.get("%s/%s-missing" % (GUESTS, guest["name"]), status=404)
    assert unknown.json["error"] == "EntityNotFound"


def test_update_name_memory_cpus(api, guest):
    path = "%s/%s" % (GUESTS, guest["id"])
    new_name = guest["name"] + "-renamed"
    record = api.put_json(path, {"name": new_name, "memory": 192,
                                 "cpus": 2}).json
    assert record["name"] == new_name
    assert record["memory"] == 192
    assert record["cpus"] == 2
    assert api.get(path).json == record


def test_empty_update_changes_nothing(api, guest):
    path = "%s/%s" % (GUESTS, guest["id"])
    assert api.put_json(path, {}).json == api.get(path).json


def test_power_cycle_reads_state_back(api, guest):
    path = "%s/%s/power" % (GUESTS, guest["id"])
    steps = [("start", "STARTED"), ("pause", "PAUSED"),
             ("resume", "STARTED"), ("force_stop", "STOPPED")]
    for action, state in steps:
        body = api.put_json(path, {"state": action}).json
        assert body == {"action": action, "message": "ok", "state": state}
        assert api.get("%s/%s" % (GUESTS, guest["id"])).json["state"] \
            == state


def test_invalid_transition_is_409_naming_state(api, guest):
    path = "%s/%s/power" % (GUESTS, guest["id"])
    response = api.put_json(path, {"state": "pause"}, status="*")
    assert response.status_int == 409
    assert response.json["error"] == "InvalidState"
    assert "STOPPED" in response.json["message"]


def test_reboot_running_guest(api, guest):
    api.put_json("%s/%s/power" % (GUESTS, guest["id"]), {"state": "start"})
    path = "%s/%s/reboot" % (GUESTS, guest["id"])
    body = api.put_json(path, {"force": True}).json
    assert body["action"] == "reboot"
    assert body["state"] == "STARTED"
    # The body is optional.
    response = api.put(path, "", content_type="application/json")
    assert response.json["action"] == "reboot"
    api.put_json("%s/%s/power" % (GUESTS, guest["id"]),
                 {"state": "force_stop"})


def test_delete_then_404(api):
    record = api.post_json(GUESTS, {"name": unique_name()}).json
    path = "%s/%s" % (GUESTS, record["id"])
    response = api.delete(path)
    assert response.status_int == 204
    assert response.body == b""
    assert api.get(path, status="*").status_int == 404
    assert api.delete(path, status="*").status_int == 404


def test_snapshots_create_revert_delete(api, guest):
    base = "%s/%s/snapshots" % (GUESTS, guest["id"])
    response = api.post_json(base, {"name": "before upgrade"})
    assert response.status_int == 201
    snapshot = response.json
    assert snapshot["name"] == "before upgrade"
    assert response.headers["Location"] == "%s/%s" % (base, snapshot["id"])
    assert api.get(base).json == [snapshot]
    assert api.get("%s/%s" % (base, snapshot["id"])).json == snapshot

    guest_path = "%s/%s" % (GUESTS, guest["id"])
    api.put_json(guest_path, {"name": guest["name"] + "-changed"})
    reverted = api.put_json("%s/%s/revert" % (base, snapshot["id"]),
                            {}).json
    assert reverted["id"] == guest["id"]

    unnamed = api.post_json(base, {}).json
    assert unnamed["name"]  # an ISO 8601 timestamp
    assert unnamed["name"][:2] == "20"

    assert api.delete("%s/%s" % (base, snapshot["id"])).status_int == 204
    assert api.get("%s/%s" % (base, snapshot["id"]),
                   status="*").status_int == 404


def test_tags_are_a_set(api, guest):
    base = "%s/%s/tags" % (GUESTS, guest["id"])
    assert api.get(base).json == []
    response = api.post_json(base, {"name": "web"})
    assert response.status_int == 201
    assert response.json == ["web"]
    assert response.headers["Location"] == base + "/web"
    assert api.post_json(base, {"name": "web"}).json == ["web"]
    assert api.post_json(base, {"name": "db"}).json == ["db", "web"]
    assert api.get(base + "/web").json == {"name": "web"}
    assert api.get(base + "/nope", status="*").status_int == 404
    assert api.delete(base + "/web").status_int == 204
    assert api.delete(base + "/web").status_int == 204
    assert api.get(base).json == ["db"]


def test_tag_name_with_slash_is_400(api, guest):
    base = "%s/%s/tags" % (GUESTS, guest["id"])
    response = api.post_json(base, {"name": "a/b"}, status="*")
    assert response.status_int == 400
    assert api.get(base).json == []


MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("suffix", [
    "/guests/" + MISSING,
    "/guests/" + MISSING + "/disks",
    "/guests/" + MISSING + "/network_interfaces",
    "/guests/" + MISSING + "/snapshots",
    "/guests/" + MISSING + "/tags",
    "/guests/" + MISSING + "/media_device",
    "/storages/" + MISSING,
    "/networks/" + MISSING,
    "/hosts/" + MISSING,
])
def test_unknown_ids_are_404(api, suffix):
    response = api.get(HOST + suffix, status="*")
    assert response.status_int == 404
    assert response.json["error"] == "EntityNotFound"


@pytest.mark.parametrize("kind", ["snapshots", "disks",
                                  "network_interfaces"])
def test_unknown_child_of_real_guest_is_404(api, guest, kind):
    item = "52:54:00:00:00:99" if kind == "network_interfaces" else MISSING
    if kind == "disks":
        item = "99"
    response = api.get("%s/%s/%s/%s" % (GUESTS, guest["id"], kind, item),
                       status="*")
    assert response.status_int == 404
    assert response.json["error"] == "EntityNotFound"


def test_hosts_storages_networks_records(api):
    hosts = api.get(HOST + "/hosts").json
    assert hosts and set(hosts[0]) == {"id", "name", "address"}
    assert api.get(HOST + "/hosts/" + hosts[0]["id"]).json == hosts[0]

    storages = api.get(HOST + "/storages").json
    assert storages
    for storage in storages:
        assert set(storage) == {"id", "name", "type", "used_space",
                                "allocated_space", "size"}
        assert all(isinstance(storage[key], int) for key in
                   ("used_space", "allocated_space", "size"))
    assert api.get(HOST + "/storages/" + storages[0]["id"]).json \
        == storages[0]

    networks = api.get(HOST + "/networks").json
    assert networks
    assert set(networks[0]) == {"id", "name_label", "name_description",
                                "bridge", "vlan", "other_config"}
    assert api.get(HOST + "/networks/" + networks[0]["id"]).json \
        == networks[0]


def test_create_isolated_network(api):
    name = unique_name("net")
    response = api.post_json(HOST + "/networks", {"name": name})
    assert response.status_int == 201
    network = response.json
    assert network["name_label"] == name
    assert response.headers["Location"] == "%s/networks/%s" % (
        HOST, network["id"])
    assert api.get(response.headers["Location"]).json == network
