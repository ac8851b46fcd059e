"""Guests and networks named "." or "..".

libvirt 9.0 accepted the domain names "." and ".." here, and its QEMU
driver names folders after a domain, such as
/var/lib/libvirt/qemu/snapshot/<name>. An import with ``?name=..`` got 502
with an error about /var/lib/libvirt/qemu/snapshot/../dump, and libvirtd
had deleted folders of /var/lib/libvirt/qemu (snapshot, checkpoint, dump,
channel). The test driver, Xen and vSphere created such guests, which no
URL can name: clients remove "." and ".." segments from a path before
they send it (RFC 3986, section 5.2.4). Now the API rejects "." and ".."
as guest and network names, and the libvirt adapter rejects them before
any libvirt call.

NOTE: the QEMU tests here are safe only while the API rejects the names,
because a regression sends them to libvirtd, which then deletes its own
folders. The adapter tests below check the adapter's own rejection
without libvirtd.
"""

import pytest

from simplestack import errors
from simplestack.adapters.libvirt.lookups import (
    _validate_guest_name, _validate_name)
from tests.attacks import round4
from tests.attacks.round4 import backends  # noqa: F401 (fixture)
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    guest_cleanup, http_client, qemu_connection, qemu_pool, requires_qemu)
from tests.attacks.test_round2_images import import_path

DOT_NAMES = [".", ".."]


def assert_invalid_name(response):
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "InvalidArguments"
    assert "name" in body["message"]


@pytest.mark.parametrize("name", DOT_NAMES)
def test_libvirt_adapter_rejects_dot_names(name):
    with pytest.raises(errors.InvalidArguments):
        _validate_guest_name(name)
    with pytest.raises(errors.InvalidArguments):
        _validate_name("network", name)


@pytest.mark.parametrize("name", ["...", ".a", "a..", "sstest-.."])
def test_libvirt_adapter_accepts_other_dots(name):
    _validate_guest_name(name)
    _validate_name("network", name)


@pytest.mark.parametrize("backend", round4.BACKENDS)
@pytest.mark.parametrize("name", DOT_NAMES)
def test_dot_guest_name_is_400(backends, backend, name):  # noqa: F811
    client, base = backends.client(backend), backends.base(backend)
    guest = client.post(base + "/guests", {"name": "sstest-r10-dots"})
    assert guest.status_code == 201, guest.text
    guest_path = "%s/guests/%s" % (base, guest.json()["id"])
    try:
        created = client.post(base + "/guests", {"name": name})
        renamed = client.put(guest_path, {"name": name})
        cloned = client.post(guest_path + "/clone", {"name": name})

        assert_invalid_name(created)
        assert_invalid_name(renamed)
        assert_invalid_name(cloned)
        assert name not in backends.guest_names(backend)
    finally:
        client.delete(guest_path)


@pytest.mark.parametrize("backend", round4.BACKENDS)
@pytest.mark.parametrize("name", DOT_NAMES)
def test_dot_import_name_is_400(backends, backend, name):  # noqa: F811
    client, base = backends.client(backend), backends.base(backend)

    response = client.request(
        "POST", base + "/guests?name=" + name.replace(".", "%2E"),
        data=b"x" * 1024,
        headers={"Content-Type": "application/octet-stream"})

    assert_invalid_name(response)


@pytest.mark.parametrize("backend", round4.BACKENDS)
@pytest.mark.parametrize("name", DOT_NAMES)
def test_dot_network_name_is_400(backends, backend, name):  # noqa: F811
    client, base = backends.client(backend), backends.base(backend)

    response = client.post(base + "/networks", {"name": name})

    assert_invalid_name(response)


@requires_qemu
@pytest.mark.parametrize("name", DOT_NAMES)
def test_qemu_dot_names_never_reach_libvirt(
        http_client, qemu_pool, guest_cleanup, name):  # noqa: F811
    guest = http_client.create_guest(guest_cleanup)
    path = "/guests/" + guest["id"]

    imported, import_body = http_client.upload(
        import_path(qemu_pool, name.replace(".", "%2E")), b"x" * 1024)
    created, create_body, _ = http_client.request("POST", "/guests",
                                                  {"name": name})
    renamed, rename_body, _ = http_client.request("PUT", path,
                                                  {"name": name})
    cloned, clone_body, _ = http_client.request("POST", path + "/clone",
                                                {"name": name})

    assert imported == 400, import_body
    assert created == 400, create_body
    assert renamed == 400, rename_body
    assert cloned == 400, clone_body
    assert http_client.ok("GET", path)["name"] == guest["name"]
