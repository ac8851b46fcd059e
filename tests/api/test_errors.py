"""Every failure returns the JSON error shape with the right status."""

import base64

import pytest

from tests.conftest import CANARY_PASSWORD

GUESTS = "/test/default/guests"


def assert_error(response, status, name):
    assert response.status_int == status
    assert response.content_type == "application/json"
    body = response.json
    assert body["error"] == name
    assert isinstance(body["message"], str) and body["message"]
    assert "Traceback" not in response.text
    assert CANARY_PASSWORD not in response.text
    return body


def test_unknown_hypervisor_type_is_404(api):
    body = assert_error(api.get("/vmwarez/h/guests", status="*"), 404,
                        "EntityNotFound")
    assert "vmwarez" in body["message"]


def test_unknown_type_never_imports_a_module(api):
    response = api.get("/os/h/guests", status="*")
    assert_error(response, 404, "EntityNotFound")
    response = api.get("/simplestack.adapters.libvirt/h/guests", status="*")
    assert_error(response, 404, "EntityNotFound")


def test_unknown_collection_is_404(api):
    body = assert_error(api.get("/test/default/volumes", status="*"), 404,
                        "EntityNotFound")
    assert "volumes" in body["message"]


def test_unknown_path_below_guest_is_404(api, guest):
    path = "%s/%s/gadgets" % (GUESTS, guest["id"])
    assert_error(api.get(path, status="*"), 404, "EntityNotFound")


def test_wrong_method_is_405_with_allow(api):
    response = api.delete(GUESTS, status="*")
    assert_error(response, 405, "MethodNotAllowed")
    allowed = {method.strip() for method in
               response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed


def test_invalid_json_is_400(api):
    response = api.post(GUESTS, "{not json", status="*",
                        content_type="application/json")
    body = assert_error(response, 400, "InvalidArguments")
    assert body["details"][0]["location"] == "body"


def test_json_array_body_is_400(api):
    response = api.post_json(GUESTS, ["name"], status="*")
    assert_error(response, 400, "InvalidArguments")


def test_schema_errors_name_the_field(api):
    response = api.post_json(GUESTS, {"name": "x", "cpus": "two"},
                             status="*")
    body = assert_error(response, 400, "InvalidArguments")
    assert [detail["name"] for detail in body["details"]] == ["cpus"]


def test_unknown_fields_are_named(api):
    response = api.post_json(GUESTS, {"name": "x", "colour": "red"},
                             status="*")
    body = assert_error(response, 400, "InvalidArguments")
    assert "unknown field(s) colour" in body["message"]
    assert "{" not in body["message"]


@pytest.mark.parametrize("payload", [
    {},                                   # name missing
    {"name": ""},
    {"name": "a\nb"},
    {"name": "x", "memory": 0},
    {"name": "x", "memory": -512},
    {"name": "x", "cpus": True},
    {"name": "x", "hdd": 1.5},
    {"name": "x", "paravirtualized": "yes"},
    {"name": "x", "unknown_field": 1},
])
def test_invalid_guest_payloads_are_400(api, payload):
    before = api.get(GUESTS).json
    response = api.post_json(GUESTS, payload, status="*")
    assert_error(response, 400, "InvalidArguments")
    assert api.get(GUESTS).json == before


@pytest.mark.parametrize("name", ["line\u2028break", "next\x85line",
                                  "nul\x00byte", "tab\tname"])
def test_control_characters_in_names_are_400(api, name):
    response = api.post_json(GUESTS, {"name": name}, status="*")
    assert_error(response, 400, "InvalidArguments")


def test_missing_token_wins_over_invalid_body(anonymous):
    response = anonymous.post_json(GUESTS, {"cpus": "many"}, status="*")
    assert_error(response, 401, "Unauthorized")


def test_repeated_import_name_is_400(api):
    response = api.post(GUESTS + "?name=a&name=b", b"QFI\xfb" + b"\0" * 60,
                        status="*", content_type="application/octet-stream")
    assert_error(response, 400, "InvalidArguments")


def test_unknown_power_state_is_400(api, guest):
    path = "%s/%s/power" % (GUESTS, guest["id"])
    response = api.put_json(path, {"state": "hibernate"}, status="*")
    body = assert_error(response, 400, "InvalidArguments")
    assert body["details"][0]["name"] == "state"
    assert api.get("%s/%s" % (GUESTS, guest["id"])).json["state"] \
        == "STOPPED"


def test_oversized_json_body_is_413(api):
    payload = '{"name": "%s"}' % ("x" * (2 * 1024 * 1024))
    response = api.post(GUESTS, payload, status="*",
                        content_type="application/json")
    assert_error(response, 413, "RequestTooLarge")


@pytest.mark.parametrize("token, reason", [
    (None, "missing"),
    ("", "missing"),
    ("not base64!", "base64"),
    (base64.b64encode(b"no-colon-here").decode(), "colon"),
    (base64.b64encode(b"user:\xff\xfe").decode(), "UTF-8"),
    (base64.b64encode(b"user:password").decode()[:-1], "base64"),
    ("dXNlcjpw\nYXNzd29yZA==", "base64"),
    ("dXNlcjpwYXNzd29yZA", "base64"),  # "user:password" without padding
])
def test_bad_tokens_are_401(anonymous, token, reason):
    headers = {}
    if token is not None:
        headers["x-simplestack-hypervisor-token"] = token
    response = anonymous.get(GUESTS, headers=headers, status="*")
    body = assert_error(response, 401, "Unauthorized")
    assert reason in body["message"]


def test_token_with_colons_and_non_ascii_is_accepted(anonymous):
    token = base64.b64encode(
        "admin:pa:ss:wörd".encode("utf-8")).decode("ascii")
    response = anonymous.get(
        GUESTS, headers={"x-simplestack-hypervisor-token": token})
    assert response.status_int == 200


def test_internal_error_is_500_without_details(api, caplog):
    response = api.get("/broken/default/guests", status="*")
    body = assert_error(response, 500, "InternalError")
    assert "secret internal detail" not in response.text
    assert set(body) == {"error", "message"}
    # The traceback goes to the log, with the request id of the response.
    request_id = response.headers["X-Request-ID"]
    logged = [record for record in caplog.records
              if request_id in record.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_bad_host_in_url_is_400(api):
    response = api.get("/test/bad_host!/guests", status="*")
    assert_error(response, 400, "InvalidArguments")
    response = api.get("/test/host:99999/guests", status="*")
    assert_error(response, 400, "InvalidArguments")


def test_unknown_test_driver_host_is_404(api):
    response = api.get("/test/elsewhere/guests", status="*")
    assert_error(response, 404, "EntityNotFound")


def test_hyperv_is_501_naming_the_cause(api):
    response = api.get("/hyperv/127.0.0.1/guests", status="*")
    body = assert_error(response, 501, "FeatureNotImplemented")
    assert "hyperv" in body["message"].lower()


def test_request_id_is_echoed(api):
    response = api.get(GUESTS, headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    response = api.get(GUESTS, headers={"X-Request-ID": "bad id\r\n"})
    assert response.headers["X-Request-ID"] != "bad id"
