"""HEAD and OPTIONS on every route, on the test driver, Xen and vSphere.

Cornice serves HEAD with the GET view. For an export that started the
hypervisor's export (an XAPI export task and its HTTP transfer, a vSphere
ExportVm call) only for the server to drop the body.
"""

import pytest

from tests.attacks import round4, stack
from tests.attacks.round4 import backends  # noqa: F401 (fixture)


def first_id(client, path):
    response = client.get(path + "?fields=id&limit=1")
    assert response.status_code == 200, response.text
    assert response.json(), "%s is empty" % path
    return response.json()[0]["id"]


def head(client, path):
    """Send HEAD, whose error responses have no JSON body to check."""
    response = client.session.head(client.base_url + path,
                                   timeout=stack.CLIENT_TIMEOUT)
    assert not stack.leaks_canary(str(response.headers))
    return response


def get_routes(client, base):
    """Return a path of each route that has GET, with ids that exist."""
    guest = "%s/guests/%s" % (base, first_id(client, base + "/guests"))
    routes = [
        base, base + "/hosts", base + "/storages", base + "/networks",
        base + "/guests", guest, guest + "/disks", guest + "/media_device",
        guest + "/network_interfaces", guest + "/snapshots", guest + "/tags",
        "%s/hosts/%s" % (base, first_id(client, base + "/hosts")),
        "%s/storages/%s" % (base, first_id(client, base + "/storages")),
        "%s/networks/%s" % (base, first_id(client, base + "/networks")),
    ]
    for collection in ("disks", "network_interfaces"):
        listed = client.get("%s/%s" % (guest, collection)).json()
        if isinstance(listed, list) and listed:
            routes.append("%s/%s/%s" % (guest, collection, listed[0]["id"]))
    return routes


@pytest.mark.parametrize("backend", round4.BACKENDS)
def test_head_matches_get(backends, backend):
    client = backends.client(backend)
    for path in get_routes(client, backends.base(backend)):
        got = client.get(path)
        headed = head(client, path)

        assert headed.status_code == got.status_code, path
        assert headed.content == b"", path
        assert headed.headers.get("Content-Type") == \
            got.headers.get("Content-Type"), path


@pytest.mark.parametrize("backend", round4.BACKENDS)
def test_options_lists_allowed_methods(backends, backend):
    client = backends.client(backend)
    for path in get_routes(client, backends.base(backend)):
        response = client.request("OPTIONS", path)

        assert response.status_code == 405, path
        assert response.json()["error"] == "MethodNotAllowed"
        allowed = response.headers["Allow"].split(", ")
        assert "GET" in allowed, path
        assert "HEAD" in allowed, path


def stopped_guest_id(client, path):
    """Return the id of a STOPPED guest of ``path``, the only state for
    which HEAD of an export returns 200."""
    response = client.get(path + "?fields=id,state")
    assert response.status_code == 200, response.text
    stopped = sorted(guest["id"] for guest in response.json()
                     if guest["state"] == "STOPPED")
    assert stopped, "%s has no stopped guest" % path
    return stopped[0]


def test_head_export_starts_no_xen_export(backends):
    client, base = backends.client("xen"), backends.base("xen")
    guest = stopped_guest_id(client, base + "/guests")
    backends.xapi.reset_stats()

    response = head(client, "%s/guests/%s/export" % (base, guest))

    stats = backends.xapi.stats()
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert stats["http"] == {}
    assert "task.create" not in stats["calls"]
    assert stats["open_sessions"] == 0


def test_head_export_calls_no_exportvm(backends):
    """vcsim lacks ExportVm, so a HEAD that called it returned 501. The
    guest is a new one, because vcsim's own guests are powered on, and
    HEAD returns 409 for those, as GET does."""
    client, base = backends.client("vmware"), backends.base("vmware")
    created = client.post(base + "/guests", {"name": "sstest-n4-head"})
    assert created.status_code == 201, created.text
    path = "%s/guests/%s" % (base, created.json()["id"])
    try:
        response = head(client, path + "/export")
    finally:
        client.delete(path)

    assert response.status_code == 200


@pytest.mark.parametrize("backend", ["xen", "vmware"])
def test_head_export_of_missing_guest_is_404(backends, backend):
    client, base = backends.client(backend), backends.base(backend)

    response = head(
        client, base + "/guests/00000000-0000-0000-0000-00000000dead/export")

    assert response.status_code == 404
