"""The whole service on Xen: every endpoint, sessions, images, secrets."""

import io
import logging
import tarfile

import pytest
from webob import Request
from webtest import TestApp

from tests import backends
from tests.conftest import CANARY_PASSWORD, make_token
from tests.simulators.fixtures import XapiSimulator

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
ETH1 = "Pool-wide network associated with eth1"

# Every documented endpoint, in the order it is called, with its body
# ("NEW" names a new object) and the status it returns on the simulator.
# {placeholders} are filled in from the objects below.
CALLS = [
    ("get", "", None, 200),
    ("get", "/hosts", None, 200),
    ("get", "/hosts/{host_id}", None, 200),
    ("get", "/storages", None, 200),
    ("get", "/storages/{storage_id}", None, 200),
    ("post", "/storages/{storage_id}/guests", "XVA", 201),
    ("get", "/networks", None, 200),
    ("post", "/networks", {"name": "NEW"}, 201),
    ("get", "/networks/{network_id}", None, 200),
    ("get", "/guests", None, 200),
    ("post", "/guests", {"name": "NEW", "hdd": 1}, 201),
    ("get", "/guests/{guest_id}", None, 200),
    ("put", "/guests/{guest_id}", {"cpus": 2, "memory": 128}, 200),
    ("post", "/guests/{guest_id}/clone", {"name": "NEW"}, 201),
    ("get", "/guests/{guest_id}/export", None, 200),
    ("get", "/guests/{guest_id}/disks", None, 200),
    ("post", "/guests/{guest_id}/disks", {"size": 1}, 201),
    ("get", "/guests/{guest_id}/disks/{disk_id}", None, 200),
    ("put", "/guests/{guest_id}/disks/{disk_id}", {"size": 2}, 200),
    ("get", "/guests/{guest_id}/media_device", None, 200),
    ("put", "/guests/{guest_id}/media_device", {"name": None}, 200),
    ("get", "/guests/{guest_id}/network_interfaces", None, 200),
    ("post", "/guests/{guest_id}/network_interfaces", {"network": ETH1},
     201),
    ("get", "/guests/{guest_id}/network_interfaces/{mac}", None, 200),
    ("put", "/guests/{guest_id}/network_interfaces/{mac}",
     {"locking_mode": "locked", "ratelimit": 81920}, 200),
    ("delete", "/guests/{guest_id}/network_interfaces/{mac}", None, 204),
    ("delete", "/guests/{guest_id}/disks/{disk_id}", None, 204),
    ("get", "/guests/{guest_id}/snapshots", None, 200),
    ("post", "/guests/{guest_id}/snapshots", {"name": "extra"}, 201),
    ("get", "/guests/{guest_id}/snapshots/{snapshot_id}", None, 200),
    ("put", "/guests/{guest_id}/snapshots/{snapshot_id}/revert", {}, 200),
    ("delete", "/guests/{guest_id}/snapshots/{snapshot_id}", None, 204),
    ("get", "/guests/{guest_id}/tags", None, 200),
    ("post", "/guests/{guest_id}/tags", {"name": "web"}, 201),
    ("get", "/guests/{guest_id}/tags/{tag}", None, 200),
    ("delete", "/guests/{guest_id}/tags/{tag}", None, 204),
    ("put", "/guests/{guest_id}/power", {"state": "start"}, 200),
    ("put", "/guests/{guest_id}/reboot", {"force": True}, 200),
    ("delete", "/guests/{guest_id}", None, 204),
]


def test_table_covers_document(xen_api):
    document = xen_api.get("/openapi.json").json
    documented = {(method, path)
                  for path, item in document["paths"].items()
                  for method in item
                  if path.startswith("/{hypervisor}")}

    called = {(method, "/{hypervisor}/{host}" + path)
              for method, path, _body, _status in CALLS}
    assert called == documented


@pytest.fixture
def objects(xen_api, xen_host, xen_kit):
    """A stopped guest with a NIC, a snapshot and a tag; an XVA image; the
    ids of a host, storage and network; all removed afterwards."""
    guest = xen_api.post_json(xen_host + "/guests", {
        "name": backends.unique_name("guest"), "hdd": 1,
        "network": ETH1}).json
    base = "%s/guests/%s" % (xen_host, guest["id"])
    snapshot = xen_api.post_json(base + "/snapshots", {"name": "s"}).json
    image = xen_api.get(base + "/export").body
    values = {
        "guest_id": guest["id"], "snapshot_id": snapshot["id"],
        "tag": "web", "disk_id": "1",
        "host_id": xen_api.get(xen_host + "/hosts").json[0]["id"],
        "storage_id": xen_kit.default_storage().id,
        "network_id": xen_api.get(xen_host + "/networks").json[0]["id"],
    }
    created = {"guests": [guest["id"]], "networks": []}
    yield values, image, created

    for guest_id in created["guests"]:
        xen_api.delete("%s/guests/%s" % (xen_host, guest_id), status="*")
    for name in created["networks"]:
        xen_kit.remove_network(name)


def test_every_endpoint_answers(xen_api, xen_host, objects):
    values, image, created = objects
    for method, template, body, expected in CALLS:
        path = xen_host + template.format(**values)
        if isinstance(body, dict) and body.get("name") == "NEW":
            body = dict(body, name=backends.unique_name("new"))
        if body == "XVA":
            response = xen_api.request(
                path, method="POST", body=image,
                headers={"Content-Type": "application/x-xva"},
                expect_errors=True)
        elif body is None:
            response = getattr(xen_api, method)(path, status="*")
        else:
            response = getattr(xen_api, method + "_json")(path, body,
                                                          status="*")

        assert response.status_int == expected, (method, path,
                                                 response.text)
        if expected == 201 and template.endswith("/guests"):
            created["guests"].append(response.json["id"])
        if expected == 201 and template.endswith("/clone"):
            created["guests"].append(response.json["id"])
        if expected == 201 and template == "/networks":
            created["networks"].append(response.json["name_label"])
        if template.endswith("/network_interfaces") and method == "post":
            values["mac"] = response.json["mac"]


# -- sessions -----------------------------------------------------------------

REQUESTS = 1000


def test_many_requests_leave_no_session(xen_api, xen_host, xapi_simulator):
    guest = xen_api.post_json(xen_host + "/guests", {
        "name": backends.unique_name("guest")}).json
    path = "%s/guests/%s" % (xen_host, guest["id"])
    xapi_simulator.reset_stats()

    statuses = []
    for number in range(REQUESTS):
        # Every third request fails, after its login: an unknown guest
        # (404) or a power action the guest's state forbids (409).
        if number % 3 == 1 and number // 3 % 2:
            response = xen_api.get("%s/guests/%s" % (xen_host, UNKNOWN_ID),
                                   status=404)
        elif number % 3 == 1:
            response = xen_api.put_json(path + "/power",
                                        {"state": "resume"}, status=409)
        elif number % 3 == 2:
            response = xen_api.get(path + "/tags")
        else:
            response = xen_api.get(path)
        statuses.append(response.status_int)

    stats = xapi_simulator.stats()
    xen_api.delete(path)
    failed = [status for status in statuses if status >= 400]
    assert len(failed) == REQUESTS // 3
    assert set(failed) == {404, 409}
    assert stats["logins"]["simplestack"] == REQUESTS
    assert stats["logouts"]["simplestack"] == REQUESTS
    assert stats["sessions"].get("simplestack", 0) == 0


def test_shared_guest_name_is_409(xen_api, xen_host, xen_kit):
    name = backends.unique_name("twin")
    first = xen_api.post_json(xen_host + "/guests", {"name": name}).json
    second = xen_api.post_json(xen_host + "/guests", {
        "name": name + "-2"}).json
    try:
        # The API keeps guest names unique, XAPI does not.
        xen_kit.rename_guest(second["id"], name)

        response = xen_api.get("%s/guests/%s" % (xen_host, name), status=409)

        assert response.json["error"] == "Conflict"
        assert response.json["message"] == (
            "2 guests are named %r; use the id instead" % name)
        first_path = "%s/guests/%s" % (xen_host, first["id"])
        assert xen_api.get(first_path).json["name"] == name
    finally:
        for record in (first, second):
            xen_api.delete("%s/guests/%s" % (xen_host, record["id"]))


def test_failed_login_leaves_no_session(xen_app, xen_host, xapi_simulator):
    client = TestApp(xen_app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            "root", CANARY_PASSWORD)})

    response = client.get(xen_host + "/guests", status=401)

    assert response.json["error"] == "HypervisorAuthenticationFailed"
    assert CANARY_PASSWORD not in response.text
    assert xapi_simulator.stats()["sessions"].get("simplestack", 0) == 0


# -- images -------------------------------------------------------------------

def test_export_and_import_through_api(xen_api, xen_host, xapi_simulator):
    guest = xen_api.post_json(xen_host + "/guests", {
        "name": backends.unique_name("guest"), "hdd": 2, "cpus": 2}).json
    path = "%s/guests/%s" % (xen_host, guest["id"])
    name = backends.unique_name("imported")
    try:
        exported = xen_api.get(path + "/export")
        assert exported.content_type == "application/x-xva"
        with tarfile.open(fileobj=io.BytesIO(exported.body)) as archive:
            assert archive.getnames()[0] == "ova.xml"

        response = xen_api.request(
            "%s/guests?name=%s" % (xen_host, name), method="POST",
            body=exported.body,
            headers={"Content-Type": "application/octet-stream"})
        imported = response.json
        assert response.status_int == 201
        assert response.headers["Location"] == "%s/guests/%s" % (
            xen_host, imported["id"])
        assert imported["name"] == name
        assert imported["hdd"] == 2
        assert imported["cpus"] == 2
        assert xen_api.get(response.headers["Location"]).json == imported
    finally:
        xen_api.delete(path)
        for record in xen_api.get(xen_host + "/guests").json:
            if record["name"] == name:
                xen_api.delete("%s/guests/%s" % (xen_host, record["id"]))
    assert xapi_simulator.stats()["sessions"].get("simplestack", 0) == 0


def test_abandoned_download_cancels_export(xen_app, xen_api, xen_host,
                                           xapi_simulator):
    guest = xen_api.post_json(xen_host + "/guests", {
        "name": backends.unique_name("guest"), "hdd": 2}).json
    path = "%s/guests/%s" % (xen_host, guest["id"])
    request = Request.blank(path + "/export", headers={
        "x-simplestack-hypervisor-token": make_token(
            xapi_simulator.username, xapi_simulator.password)})
    xapi_simulator.reset_stats()

    # A client that reads one chunk and hangs up, as a WSGI server sees it.
    body = xen_app(request.environ, lambda status, headers, info=None: None)
    assert next(iter(body))
    body.close()

    stats = xapi_simulator.stats()
    xen_api.delete(path)
    assert stats["calls"]["task.cancel"] == 1
    assert stats["calls"]["task.destroy"] == 1
    assert stats["sessions"].get("simplestack", 0) == 0


# -- secrets ------------------------------------------------------------------

@pytest.fixture(scope="module")
def canary_simulator():
    """A simulator whose password is the canary, so that a leak shows."""
    simulator = XapiSimulator("--password", CANARY_PASSWORD)
    simulator.password = CANARY_PASSWORD
    simulator.start()
    yield simulator
    simulator.stop()


def test_password_never_shown(xen_app, canary_simulator, caplog):
    caplog.set_level(logging.DEBUG)
    client = TestApp(xen_app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            "root", CANARY_PASSWORD)})
    host = "/xen/" + canary_simulator.netloc
    guest = client.post_json(host + "/guests", {
        "name": backends.unique_name("guest")}).json
    path = "%s/guests/%s" % (host, guest["id"])

    responses = [
        client.get(host + "/guests"),
        client.get(path + "/export"),
        client.get("%s/guests/%s" % (host, UNKNOWN_ID), status=404),
        client.put_json(path + "/power", {"state": "pause"}, status=409),
    ]
    canary_simulator.set_fault("VM.get_record", error=["INTERNAL_ERROR",
                                                       "x"], times=1)
    responses.append(client.get(path, status=502))
    responses.append(client.delete(path))

    for response in responses:
        assert CANARY_PASSWORD not in response.text
    assert CANARY_PASSWORD not in caplog.text
    assert canary_simulator.stats()["open_sessions"] == 0


def test_request_log_counts_login_and_logout(xen_api, xen_host, caplog):
    # Listing guests costs VM.get_all_records_where and event.from; the
    # session adds a login and a logout, and the summary line is written
    # after the logout.
    caplog.set_level(logging.INFO, logger="simplestack.requests")
    xen_api.get(xen_host + "/guests",
                headers={"X-Request-ID": "xen-call-count"})
    lines = [record.getMessage() for record in caplog.records
             if "request_id=xen-call-count" in record.getMessage()]
    assert len(lines) == 1
    assert "hypervisor_calls=4" in lines[0]
