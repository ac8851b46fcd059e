"""Declared content types of image uploads, on real QEMU.

The service recognised an import by a lower-cased Content-Type or by the
body's qcow2 magic, but handed the libvirt adapter the type as sent. The
adapter accepts only its own spellings, so a qcow2 image sent as
``Application/X-QEMU-Disk``, with white space before the type's
parameters, or as ``text/plain`` was recognised as an import and then
rejected with 501.
"""

import pytest

from tests import backends
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    guest_cleanup, http_client, qemu_connection, qemu_pool, requires_qemu)
from tests.attacks.test_round2_images import import_path, qcow2_header

pytestmark = requires_qemu

#: A small qcow2 image: the header of a 1 MiB disk, padded.
IMAGE = qcow2_header(1 << 20) + bytes(64 * 1024 - 512)


@pytest.mark.parametrize("content_type", [
    "Application/X-QEMU-Disk",
    "application/x-qemu-disk ; name=disk",
    "APPLICATION/OCTET-STREAM",
    "text/plain",
    "application/json; charset=utf-8",
])
def test_qcow2_import_with_content_type(http_client, qemu_pool,  # noqa: F811
                                        guest_cleanup, content_type):  # noqa: F811
    name = backends.unique_name("n4-type")

    status, body = http_client.upload(import_path(qemu_pool, name), IMAGE,
                                      content_type=content_type)

    if status == 201:
        guest_cleanup.append(body["id"])
    assert status == 201, body
    assert body["name"] == name


def test_declared_xva_is_still_501(http_client, qemu_pool):  # noqa: F811
    status, body = http_client.upload(
        import_path(qemu_pool, backends.unique_name("n4-xva")), IMAGE,
        content_type="Application/X-XVA")

    assert status == 501, body
    assert body["error"] == "FeatureNotImplemented"

