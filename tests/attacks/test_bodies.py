"""Request bodies that pass the schemas but break later, or get the wrong error.

Every case here should be 400 InvalidArguments (or 409 Conflict for a
duplicate name, as the README's errors table lists), and a rejected request
must leave the guest as it was.
"""

import json

import pytest

from tests.api.conftest import unique_name
from tests.attacks.conftest import GUESTS, HOST, assert_error

# A lone UTF-16 surrogate: valid JSON, but no UTF-8 encoding exists, so
# libvirt's binding raises UnicodeEncodeError.
LONE_SURROGATE = "\\ud800"


def post_raw_json(api, path, text, method="post"):
    return getattr(api, method)(path, text.encode("utf-8"), status="*",
                                content_type="application/json")


def test_lone_surrogate_in_guest_name_is_400(api):
    text = '{"name": "sstest-%s"}' % LONE_SURROGATE
    assert_error(post_raw_json(api, GUESTS, text), 400, "InvalidArguments")


@pytest.mark.parametrize("child", ["tags", "snapshots", "clone"])
def test_lone_surrogate_below_guest_is_400(api, guest, child):
    path = "%s/%s/%s" % (GUESTS, guest["id"], child)
    text = '{"name": "sstest-%s"}' % LONE_SURROGATE
    assert_error(post_raw_json(api, path, text), 400, "InvalidArguments")


def test_lone_surrogate_in_rename_is_400(api, guest):
    path = "%s/%s" % (GUESTS, guest["id"])
    text = '{"name": "sstest-%s"}' % LONE_SURROGATE
    response = post_raw_json(api, path, text, method="put")
    assert_error(response, 400, "InvalidArguments")


@pytest.mark.parametrize("field", ["name", "description"])
def test_lone_surrogate_in_network_is_400(api, field):
    body = {"name": unique_name("net")}
    body[field] = "sstest-SURROGATE"
    text = json.dumps(body).replace("SURROGATE", LONE_SURROGATE)
    response = post_raw_json(api, HOST + "/networks", text)
    assert_error(response, 400, "InvalidArguments")


def test_deeply_nested_json_is_400(api):
    # The body is 200 kB, far below the 1 MiB limit, and json.loads raises
    # RecursionError on it.
    depth = 100000
    text = '{"name": "sstest-deep", "cpus": %s%s}' % ("[" * depth,
                                                       "]" * depth)
    assert_error(post_raw_json(api, GUESTS, text), 400, "InvalidArguments")


@pytest.mark.parametrize("memory", [{"memory_target": 256}, {}])
def test_memory_map_update_is_not_500(api, guest, memory):
    # The schema accepts Xen's memory map, but the libvirt adapter
    # multiplies it by 1024 and raises TypeError.
    path = "%s/%s" % (GUESTS, guest["id"])
    response = api.put_json(path, {"memory": memory}, status="*")
    assert_error(response, (400, 501))


def test_slash_in_guest_name_is_400(api):
    name = unique_name() + "/x"
    response = api.post_json(GUESTS, {"name": name}, status="*")
    assert_error(response, 400, "InvalidArguments")


def test_slash_in_rename_is_400(api, guest):
    path = "%s/%s" % (GUESTS, guest["id"])
    response = api.put_json(path, {"name": unique_name() + "/x"},
                            status="*")
    assert_error(response, 400, "InvalidArguments")


def test_slash_in_clone_name_is_400(api, guest):
    path = "%s/%s/clone" % (GUESTS, guest["id"])
    response = api.post_json(path, {"name": unique_name() + "/x"},
                             status="*")
    assert_error(response, 400, "InvalidArguments")


def test_slash_in_network_name_is_400(api):
    response = api.post_json(HOST + "/networks",
                             {"name": unique_name("net") + "/x"}, status="*")
    assert_error(response, 400, "InvalidArguments")


def test_failed_rename_changes_nothing(api, guest):
    # libvirt rejects the name only in rename(), after memory and cpus
    # were already written.
    path = "%s/%s" % (GUESTS, guest["id"])
    changes = {"memory": guest["memory"] * 2, "cpus": guest["cpus"] + 1,
               "name": unique_name() + "/x"}

    response = api.put_json(path, changes, status="*")
    after = api.get(path).json

    assert response.status_int >= 400, response.text
    assert after["memory"] == guest["memory"]
    assert after["cpus"] == guest["cpus"]


def test_duplicate_guest_name_is_409(api, guest):
    response = api.post_json(GUESTS, {"name": guest["name"]}, status="*")
    assert_error(response, 409, "Conflict")


def test_clone_to_taken_name_is_409(api, guest):
    path = "%s/%s/clone" % (GUESTS, guest["id"])
    response = api.post_json(path, {"name": guest["name"]}, status="*")
    assert_error(response, 409, "Conflict")
