"""Network names too long for libvirt's files, on QEMU.

The schema takes names of 255 characters, and guest names have a limit in
UTF-8 bytes that fits the files named after them. Network names had none,
but libvirt 9.0 writes a network's definition to NAME.xml.new first, so
POST /networks with a name of 248 bytes got 502 "File name too long".
"""

import contextlib

import pytest

from tests import backends
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    http_client, qemu_connection, requires_qemu)
from tests.libvirt_fixtures import remove_network

pytestmark = requires_qemu

#: Maximum network name length whose files fit a 255-byte file name, in
#: bytes.
MAX_NAME_BYTES = 255 - len(".xml.new")


@contextlib.contextmanager
def removed_after(connection, name):
    """Remove the network ``name``, if the block made one, at its end."""
    try:
        yield
    finally:
        remove_network(connection, name)


@pytest.mark.parametrize("filler", ["x", "\u00e9"])
def test_too_long_network_name_is_400(http_client, qemu_connection,
                                      filler):  # noqa: F811
    prefix = backends.unique_name("r10") + "-"
    count = (MAX_NAME_BYTES + 1 - len(prefix)) // len(filler.encode())
    name = prefix + filler * (count + 1)
    assert len(name.encode()) > MAX_NAME_BYTES
    assert len(name) <= 255

    with removed_after(qemu_connection, name):
        status, body, _ = http_client.request("POST", "/networks",
                                              {"name": name})

    assert status == 400, body
    assert body["error"] == "InvalidArguments"
    assert "bytes" in body["message"]


def test_longest_network_name_is_201(http_client,
                                     qemu_connection):  # noqa: F811
    prefix = backends.unique_name("r10") + "-"
    name = prefix.ljust(MAX_NAME_BYTES, "x")

    with removed_after(qemu_connection, name):
        status, body, _ = http_client.request("POST", "/networks",
                                              {"name": name})

    assert status == 201, body
    assert body["name_label"] == name
