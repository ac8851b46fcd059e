"""Every endpoint of the OpenAPI document, called once on the test driver.

The table below must name each (method, path) of the document, so a new
endpoint without a test here fails ``test_table_covers_document``. Each
call checks the exact status on libvirt's test driver, which cannot change
devices or stream volumes: those endpoints return 501 there.
"""

import base64
import io
import json

import pytest
from webob import Request

from tests.api.conftest import unique_name

HOST = "/test/default"
QCOW2_HEADER = b"QFI\xfb" + b"\0" * 508

# (method, path template) -> (JSON body or raw bytes, expected status).
# {guest}, {snapshot}, {network}, {storage} and {host_id} are filled in
# from real objects; the disk and NIC ids name devices the guest lacks.
CALLS = {
    ("get", "/{hypervisor}/{host}"): (None, 200),
    ("get", "/{hypervisor}/{host}/hosts"): (None, 200),
    ("get", "/{hypervisor}/{host}/hosts/{host_id}"): (None, 200),
    ("get", "/{hypervisor}/{host}/storages"): (None, 200),
    ("get", "/{hypervisor}/{host}/storages/{storage_id}"): (None, 200),
    ("post", "/{hypervisor}/{host}/storages/{storage_id}/guests"):
        (QCOW2_HEADER, 501),
    ("get", "/{hypervisor}/{host}/networks"): (None, 200),
    ("post", "/{hypervisor}/{host}/networks"): ({"name": "NEW"}, 201),
    ("get", "/{hypervisor}/{host}/networks/{network_id}"): (None, 200),
    ("get", "/{hypervisor}/{host}/guests"): (None, 200),
    ("post", "/{hypervisor}/{host}/guests"): ({"name": "NEW"}, 201),
    ("get", "/{hypervisor}/{host}/guests/{guest_id}"): (None, 200),
    ("put", "/{hypervisor}/{host}/guests/{guest_id}"): ({"cpus": 2}, 200),
    ("put", "/{hypervisor}/{host}/guests/{guest_id}/power"):
        ({"state": "start"}, 200),
    ("put", "/{hypervisor}/{host}/guests/{guest_id}/reboot"):
        ({"force": True}, 200),
    ("post", "/{hypervisor}/{host}/guests/{guest_id}/clone"):
        ({"name": "NEW"}, 409),  # the guest is running by then
    ("get", "/{hypervisor}/{host}/guests/{guest_id}/export"): (None, 501),
    ("get", "/{hypervisor}/{host}/guests/{guest_id}/disks"): (None, 200),
    ("post", "/{hypervisor}/{host}/guests/{guest_id}/disks"):
        ({"size": 1}, 501),
    ("get", "/{hypervisor}/{host}/guests/{guest_id}/disks/{disk_id}"):
        (None, 404),
    ("put", "/{hypervisor}/{host}/guests/{guest_id}/disks/{disk_id}"):
        ({"size": 2}, 404),
    ("delete", "/{hypervisor}/{host}/guests/{guest_id}/disks/{disk_id}"):
        (None, 501),
    ("get", "/{hypervisor}/{host}/guests/{guest_id}/media_device"):
        (None, 200),
    ("put", "/{hypervisor}/{host}/guests/{guest_id}/media_device"):
        ({"name": None}, 501),
    ("get", "/{hypervisor}/{host}/guests/{guest_id}/network_interfaces"):
        (None, 200),
    ("post", "/{hypervisor}/{host}/guests/{guest_id}/network_interfaces"):
        ({"network": "default"}, 501),
    ("get",
     "/{hypervisor}/{host}/guests/{guest_id}/network_interfaces/{mac}"):
        (None, 404),
    ("put",
     "/{hypervisor}/{host}/guests/{guest_id}/network_interfaces/{mac}"):
        ({"active": False}, 404),
    ("delete",
     "/{hypervisor}/{host}/guests/{guest_id}/network_interfaces/{mac}"):
        (None, 501),
    ("get", "/{hypervisor}/{host}/guests/{guest_id}/snapshots"): (None, 200),
    ("post", "/{hypervisor}/{host}/guests/{guest_id}/snapshots"):
        ({"name": "extra"}, 201),
    ("get",
     "/{hypervisor}/{host}/guests/{guest_id}/snapshots/{snapshot_id}"):
        (None, 200),
    ("put",
     "/{hypervisor}/{host}/guests/{guest_id}/snapshots/{snapshot_id}/revert"):
        ({}, 200),
    ("delete",
     "/{hypervisor}/{host}/guests/{guest_id}/snapshots/{snapshot_id}"):
        (None, 204),
    ("get", "/{hypervisor}/{host}/guests/{guest_id}/tags"): (None, 200),
    ("post", "/{hypervisor}/{host}/guests/{guest_id}/tags"):
        ({"name": "web"}, 201),
    ("get", "/{hypervisor}/{host}/guests/{guest_id}/tags/{tag}"):
        (None, 200),
    ("delete", "/{hypervisor}/{host}/guests/{guest_id}/tags/{tag}"):
        (None, 204),
    ("delete", "/{hypervisor}/{host}/guests/{guest_id}"): (None, 204),
}


def test_table_covers_document(anonymous):
    document = anonymous.get("/openapi.json").json
    documented = {(method, path)
                  for path, item in document["paths"].items()
                  for method in item
                  if path.startswith("/{hypervisor}")}
    assert documented == set(CALLS)


@pytest.fixture
def objects(api):
    """A guest with a snapshot and a tag, and the ids of the host's things."""
    guest = api.post_json(HOST + "/guests", {"name": unique_name()}).json
    base = HOST + "/guests/" + guest["id"]
    snapshot = api.post_json(base + "/snapshots", {"name": "s"}).json
    api.post_json(base + "/tags", {"name": "web"})
    values = {
        "hypervisor": "test", "host": "default",
        "guest_id": guest["id"], "snapshot_id": snapshot["id"],
        "tag": "web", "disk_id": "7", "mac": "52:54:00:00:00:99",
        "host_id": api.get(HOST + "/hosts").json[0]["id"],
        "storage_id": api.get(HOST + "/storages").json[0]["id"],
        "network_id": api.get(HOST + "/networks").json[0]["id"],
    }
    created = {"guests": [guest["id"]], "networks": []}
    yield values, created
    for guest_id in created["guests"]:
        api.put_json(HOST + "/guests/%s/power" % guest_id,
                     {"state": "force_stop"}, status="*")
        api.delete(HOST + "/guests/" + guest_id, status="*")


def test_every_endpoint_answers(api, objects):
    values, created = objects
    for (method, template), (body, expected) in CALLS.items():
        path = template.format(**values)
        if isinstance(body, dict) and body.get("name") == "NEW":
            body = dict(body, name=unique_name())
        if isinstance(body, bytes):
            response = api.request(path, method="POST", body=body,
                                   headers={"Content-Type":
                                            "application/octet-stream"},
                                   expect_errors=True)
        elif body is None:
            response = getattr(api, method)(path, status="*")
        else:
            response = getattr(api, method + "_json")(path, body, status="*")

        assert response.status_int == expected, (method, path,
                                                 response.text)
        if expected == 204:
            assert response.body == b""
        else:
            assert response.content_type == "application/json", path
            json.loads(response.text)
        if expected == 201:
            assert response.headers["Location"].startswith(HOST + "/")
            if "guests" in path and path.endswith("/guests"):
                created["guests"].append(response.json["id"])


def test_upload_without_length_is_411(wsgi_app):
    token = base64.b64encode(b"u:p").decode()
    request = Request.blank(HOST + "/guests", method="POST", headers={
        "x-simplestack-hypervisor-token": token,
        "Content-Type": "application/octet-stream"})
    request.environ["wsgi.input"] = io.BytesIO(QCOW2_HEADER)
    request.environ.pop("CONTENT_LENGTH", None)
    response = request.get_response(wsgi_app)
    assert response.status_int == 411
    assert response.json["error"] == "LengthRequired"


def test_refused_connection_is_502(api):
    # Port 1 on loopback: nothing listens, so the TCP connect is refused.
    response = api.get("/tcp/127.0.0.1:1/guests", status="*")
    assert response.status_int == 502
    assert response.json["error"] == "HypervisorUnreachable"
    assert "refused" in response.json["message"]


def test_missing_tls_files_are_502(api):
    # The TLS transport fails before it connects when the client has no
    # CA certificate; the message names the missing file.
    response = api.get("/kvm/127.0.0.1:1/guests", status="*")
    assert response.status_int == 502
    assert response.json["error"] == "HypervisorUnreachable"
