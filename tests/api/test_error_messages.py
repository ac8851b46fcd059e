"""Error messages about the request that failed: the message of the part
of a union field that matches the value's type, and request values cut to
errors.MAX_QUOTED_CHARACTERS.

A 100 KB path segment came back whole in the 404 body, and ``cpus: 0``
got "must be one of: 0 is less than minimum value 1 | must be an object,
got a number".
"""

import pytest
import requests

from simplestack import errors
from tests.api.test_errors import assert_error
from tests.conftest import CANARY_PASSWORD

HOST = "/test/default"
GUESTS = HOST + "/guests"
#: A request value far longer than an error message may quote.
LONG = 100000
#: The maximum characters of an error body that quotes one cut value: the
#: cut value and the message's own text.
SHORT_BODY = 2 * errors.MAX_QUOTED_CHARACTERS + 400


# -- union fields ------------------------------------------------------------

@pytest.mark.parametrize("body, name, description", [
    ({"cpus": 0}, "cpus", "0 is less than minimum value 1"),
    ({"memory": -1}, "memory", "-1 is less than minimum value 1"),
    ({"cpus": {"vcpus_max": 0}}, "cpus.vcpus_max",
     "0 is less than minimum value 1"),
    ({"memory": {"memory_target": "1"}}, "memory.memory_target",
     "must be an integer, got a string"),
    ({"cpus": {"vcpus": 2}}, "cpus",
     "unknown field(s) vcpus; known fields: vcpus_at_startup, vcpus_max"),
    ({"cpus": "2"}, "cpus", "must be an integer or an object, got a string"),
    ({"cpus": None}, "cpus", "must be an integer or an object, got null"),
    ({"cpus": True}, "cpus", "must be an integer or an object, got a boolean"),
    ({"paravirtualized": 1}, "paravirtualized",
     "must be true or false, or a string, got a number"),
    ({"paravirtualized": "x" * 4097}, "paravirtualized",
     "Longer than maximum length 4096"),
])
def test_union_field_error(api, guest, body, name, description):
    response = api.put_json("%s/%s" % (GUESTS, guest["id"]), body,
                            status="*")

    error = assert_error(response, 400, "InvalidArguments")
    assert error["details"] == [
        {"location": "body", "name": name, "description": description}]
    assert error["message"] == "invalid request: %s: %s" % (name, description)


def test_union_field_error_changes_nothing(api, guest):
    path = "%s/%s" % (GUESTS, guest["id"])

    api.put_json(path, {"cpus": 0, "name": "sstest-renamed"}, status=400)

    assert api.get(path).json == guest


# -- list limits ---------------------------------------------------------------

@pytest.mark.parametrize("limit, description", [
    ("-1", "-1 is less than minimum value 1"),
    ("-0", "-0 is less than minimum value 1"),
    ("0", "0 is less than minimum value 1"),
    ("1.5", "'1.5' is not a whole number"),
    ("x", "'x' is not a whole number"),
])
def test_limit_error(api, limit, description):
    response = api.get(GUESTS, {"limit": limit}, status="*")

    error = assert_error(response, 400, "InvalidArguments")
    assert error["details"][0]["description"] == description


def test_long_negative_limit_is_cut(api):
    response = api.get(GUESTS, {"limit": "-" + "9" * LONG}, status="*")

    error = assert_error(response, 400, "InvalidArguments")
    assert "is less than minimum value 1" in error["message"]
    assert "(%d characters in all)" % (LONG + 1) in error["message"]
    assert len(response.text) < 2 * SHORT_BODY


# -- long request values -----------------------------------------------------

def assert_cut(response, status, name, value):
    """Check that the error of ``response`` quotes ``value`` cut."""
    error = assert_error(response, status, name)
    assert len(response.text) < SHORT_BODY, response.text[:300]
    cut = value[:errors.MAX_QUOTED_CHARACTERS]
    assert cut in error["message"]
    assert value[:errors.MAX_QUOTED_CHARACTERS + 1] not in error["message"]
    assert "(%d characters in all)" % len(value) in error["message"]
    return error


def test_long_guest_id_is_cut(api):
    name = "a" * LONG

    response = api.get("%s/%s" % (GUESTS, name), status="*")

    error = assert_cut(response, 404, "EntityNotFound", name)
    assert error["message"].startswith("guest aaaa")
    assert error["message"].endswith(" not found")


def test_long_guest_id_below_guest_is_cut(api):
    name = "b" * LONG

    response = api.get("%s/%s/disks" % (GUESTS, name), status="*")

    assert_cut(response, 404, "EntityNotFound", name)


def test_long_collection_name_is_cut(api):
    name = "c" * LONG

    response = api.get("%s/%s" % (HOST, name), status="*")

    assert_cut(response, 404, "EntityNotFound", name)


def test_long_hypervisor_type_is_cut(api):
    name = "d" * LONG

    response = api.get("/%s/h/guests" % name, status="*")

    error = assert_cut(response, 404, "EntityNotFound", name)
    assert "configured types: " in error["message"]


def test_long_host_is_cut(api):
    host = "e" * LONG

    response = api.get("/test/%s/guests" % host, status="*")

    assert_cut(response, 400, "InvalidArguments", host)


def test_long_segment_with_control_character_is_cut(api):
    # The message quotes the segment with %r, so as "x\\x01yyy...".
    segment = "x\x01" + "y" * LONG

    response = api.get("%s/%s" % (GUESTS, "x%01" + "y" * LONG), status="*")

    assert_cut(response, 400, "InvalidArguments", repr(segment)[1:-1])


def test_long_method_is_cut(api):
    method = "M" * 200

    response = api.request(GUESTS, method=method, status="*")

    error = assert_cut(response, 405, "MethodNotAllowed", method)
    assert "GET" in response.headers["Allow"]
    assert error["message"].endswith("allowed: GET, HEAD, POST")


def test_path_of_many_segments_is_cut(api):
    path = GUESTS + "/" + "x/" * (LONG // 2)

    response = api.get(path, status="*")

    assert_error(response, 404, "EntityNotFound")
    assert len(response.text) < SHORT_BODY


def test_long_query_value_is_cut(api):
    limit = "z" * LONG

    response = api.get(GUESTS, {"limit": limit}, status="*")

    error = assert_cut(response, 400, "InvalidArguments", limit)
    assert limit[:errors.MAX_QUOTED_CHARACTERS] in \
        error["details"][0]["description"]
    assert "(%d characters in all)" % LONG in \
        error["details"][0]["description"]


def test_long_body_key_is_cut(api):
    key = "k" * LONG

    response = api.post_json(GUESTS, {"name": "sstest-x", key: 1},
                             status="*")

    error = assert_cut(response, 400, "InvalidArguments", key)
    assert "known fields: cpus" in error["message"]
    assert "sstest-x" not in [item["name"] for item in api.get(GUESTS).json]


def test_long_body_value_is_cut(api, guest):
    state = "s" * LONG

    response = api.put_json("%s/%s/power" % (GUESTS, guest["id"]),
                            {"state": state}, status="*")

    error = assert_cut(response, 400, "InvalidArguments", state)
    assert error["message"].endswith(
        "is not one of start, stop, force_stop, pause, resume")


@pytest.mark.parametrize("collection", ["tags", "snapshots", "disks",
                                        "network_interfaces"])
def test_long_child_id_is_cut(api, guest, collection):
    child = "t" * LONG

    response = api.get("%s/%s/%s/%s" % (GUESTS, guest["id"], collection,
                                        child), status="*")

    assert response.status_int in (400, 404), response.text[:300]
    assert len(response.text) < SHORT_BODY, response.text[:300]


def test_short_values_are_quoted_whole(api):
    name = "f" * errors.MAX_QUOTED_CHARACTERS

    response = api.get("%s/%s" % (GUESTS, name), status="*")

    error = assert_error(response, 404, "EntityNotFound")
    assert error["message"] == "guest %s not found" % name


def test_long_segment_under_waitress_is_cut(server, token):
    """pserve's waitress takes a request head of up to 256 KiB."""
    name = "g" * LONG

    response = requests.get(
        "%s%s/%s" % (server.url, GUESTS, name),
        headers={"x-simplestack-hypervisor-token": token}, timeout=30)

    assert response.status_code == 404
    assert len(response.content) < SHORT_BODY
    assert "(%d characters in all)" % LONG in response.json()["message"]
    assert CANARY_PASSWORD not in response.text


# -- the helpers -------------------------------------------------------------

def test_shorten_quoted_keeps_short_text():
    text = "x" * errors.MAX_QUOTED_CHARACTERS

    assert errors.shorten_quoted(text) == text


def test_shorten_quoted_values_cuts_longest_first():
    path = "/test/default/guests/" + "a" * 300
    message = "no resource at %s (guest %s)" % (path, "a" * 300)

    shortened = errors.shorten_quoted_values(message, [path, "a" * 300])

    assert shortened == "no resource at %s (guest %s)" % (
        errors.shorten_quoted(path), errors.shorten_quoted("a" * 300))


def test_shorten_quoted_values_bounds_message():
    message = "x " * errors.MAX_MESSAGE_CHARACTERS

    shortened = errors.shorten_quoted_values(message, [])

    assert len(shortened) < errors.MAX_MESSAGE_CHARACTERS + 50
    assert shortened.endswith(
        "(%d characters in all)" % (2 * errors.MAX_MESSAGE_CHARACTERS))
