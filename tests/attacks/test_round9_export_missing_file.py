"""HEAD and GET of a QEMU export whose disk file was removed behind
libvirt's back.

libvirt still lists the volume in its pool, so HEAD, which looked the
volume up by its path, returned 200. GET then failed on its first read of
the volume's size with 404. HEAD now reads that size too, so it returns
what GET returns.
"""

import os

import pytest

from tests import backends
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    http_client, qemu_connection, qemu_pool, requires_qemu)
from tests.attacks.test_round9_export_length import define_disk_guest
from tests.libvirt_fixtures import remove_domain

pytestmark = requires_qemu


@pytest.fixture
def guest_without_file(qemu_connection, qemu_pool):  # noqa: F811
    """Yield the id of a stopped guest whose raw disk volume's file is
    gone, though its pool still lists the volume."""
    volume = qemu_pool.createXML(
        "<volume><name>%s.img</name><capacity unit='bytes'>%d</capacity>"
        "<target><format type='raw'/></target></volume>"
        % (backends.unique_name("r9-missing"), 1024 * 1024), 0)
    domain = define_disk_guest(qemu_connection, volume.path(), "r9-missing")
    os.remove(volume.path())
    try:
        yield domain.UUIDString()
    finally:
        remove_domain(domain)
        qemu_pool.refresh(0)


def test_export_head_matches_get_missing_file(
        http_client, guest_without_file):  # noqa: F811
    path = "/guests/%s/export" % guest_without_file

    headed, _, _ = http_client.request("HEAD", path)
    got, body, _ = http_client.request("GET", path)
    headed_again, _, _ = http_client.request("HEAD", path)

    assert got >= 400, body
    assert isinstance(body, dict) and body["message"], body
    assert headed == got
    assert headed_again == got
