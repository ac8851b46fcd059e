"""Unusual path segments and query strings: each must get a JSON 4xx, not a 500.

Dot segments are resolved by Pyramid's traversal, so ``/guests/..`` reaches
a view with the host context instead of a guest. Ids with a NUL byte or a
braced UUID reach libvirt, which rejects them with errors the adapter does
not map.
"""

import pytest

from tests.api.adapters import RecordingAdapter
from tests.attacks.conftest import GUESTS, HOST, assert_error


@pytest.mark.parametrize("path", [
    GUESTS + "/.",
    GUESTS + "/..",
    HOST + "/storages/..",
    HOST + "/networks/..",
    HOST + "/hosts/.",
    "/test/.",
    "/test/..",
])
def test_dot_segment_id_is_not_500(api, path):
    assert_error(api.get(path, status="*"), (400, 404))


@pytest.mark.parametrize("child", ["disks/.", "tags/.", "snapshots/."])
def test_dot_segment_below_guest_is_not_500(api, guest, child):
    path = "%s/%s/%s" % (GUESTS, guest["id"], child)
    assert_error(api.get(path, status="*"), (400, 404))


def test_dot_host_segment_opens_no_other_host(api):
    # "/tracked/./guests" names no host, but traversal drops the "." and
    # reads "guests" as the host, which the host pattern never checked.
    # On kvm, qemu or hyperv the service would connect to a host called
    # "guests" with the caller's credentials.
    RecordingAdapter.instances.clear()

    response = api.get("/tracked/./guests", status="*")

    hosts = [adapter.host for adapter in RecordingAdapter.instances]
    assert hosts == []
    assert_error(response, (400, 404))


@pytest.mark.parametrize("path", [
    GUESTS + "/%00",
    HOST + "/storages/%00",
    HOST + "/networks/%00",
])
def test_nul_byte_id_is_client_error(api, path):
    assert_error(api.get(path, status="*"), (400, 404))


def test_nul_byte_snapshot_id_is_client_error(api, guest):
    path = "%s/%s/snapshots/%%00" % (GUESTS, guest["id"])
    assert_error(api.get(path, status="*"), (400, 404))


def test_non_utf8_path_is_json_error(api):
    # The request tween itself fails on request.path here, so the WSGI
    # server sends a plain-text 500 with no request id or log line.
    response = api.get(GUESTS + "/%ff", status="*")
    assert_error(response, (400, 404))


@pytest.mark.parametrize("query", ["limit=%ff", "fields=%ff", "marker=%ff"])
def test_non_utf8_query_is_400(api, query):
    response = api.get(GUESTS + "?" + query, status="*")
    assert_error(response, 400, "InvalidArguments")


@pytest.mark.parametrize("collection", ["guests", "storages", "networks"])
@pytest.mark.parametrize("form", [
    "{00000000-0000-0000-0000-000000000000}",
    "urn:uuid:00000000-0000-0000-0000-000000000000",
])
def test_unusual_uuid_form_is_404(api, collection, form):
    # Python's uuid.UUID accepts these forms, libvirt rejects them with
    # VIR_ERR_INVALID_ARG, and the adapter returns 502 HypervisorError.
    response = api.get("%s/%s/%s" % (HOST, collection, form), status="*")
    assert_error(response, 404, "EntityNotFound")


def test_snapshot_id_accepts_upper_case(api, guest):
    snapshots = "%s/%s/snapshots" % (GUESTS, guest["id"])
    snapshot = api.post_json(snapshots, {"name": "upper"}).json

    response = api.get("%s/%s" % (snapshots, snapshot["id"].upper()),
                       status="*")

    assert response.status_int == 200, response.text
    assert response.json["id"] == snapshot["id"]
