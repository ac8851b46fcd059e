"""The qcow2 header checks of image imports, without a hypervisor."""

import struct

import pytest

from simplestack import errors
from simplestack.adapters.libvirt import _parse_qcow2_header

VIRTUAL_SIZE = 1024 ** 3


def qcow2_header(version=3, backing_offset=0, backing_size=0,
                 cluster_bits=16, incompatible=0, length=512):
    header = bytearray(length)
    header[0:4] = b"QFI\xfb"
    header[4:8] = struct.pack(">I", version)
    header[8:16] = struct.pack(">Q", backing_offset)
    header[16:20] = struct.pack(">I", backing_size)
    header[20:24] = struct.pack(">I", cluster_bits)
    header[24:32] = struct.pack(">Q", VIRTUAL_SIZE)
    if length >= 80:
        header[72:80] = struct.pack(">Q", incompatible)
    return bytes(header)


@pytest.mark.parametrize("header", [
    qcow2_header(version=2),
    qcow2_header(version=2, length=72),
    qcow2_header(version=3),
    qcow2_header(incompatible=1 << 0),  # dirty
    qcow2_header(incompatible=1 << 3),  # compression type
    qcow2_header(incompatible=1 << 4),  # extended L2 entries
    # backing_file_size means nothing while backing_file_offset is 0.
    qcow2_header(backing_size=12),
], ids=["v2", "v2-short", "v3", "dirty", "zstd", "extended-l2",
        "size-without-offset"])
def test_standalone_header_gives_virtual_size(header):
    assert _parse_qcow2_header(header) == VIRTUAL_SIZE


@pytest.mark.parametrize("header, words", [
    (qcow2_header(backing_offset=512, backing_size=12), "backing file"),
    (qcow2_header(version=2, backing_offset=512),
     "backing file"),
    (qcow2_header(incompatible=1 << 2), "external data file"),
    (qcow2_header(incompatible=1 << 1), "corrupt"),
    (qcow2_header(incompatible=1 << 5), "unknown incompatible features"),
    (qcow2_header(incompatible=1 << 63), "unknown incompatible features"),
    (qcow2_header(version=1), "version 1"),
    (qcow2_header(version=4), "version 4"),
    (qcow2_header(cluster_bits=40), "cluster_bits"),
    (qcow2_header(length=71), "too short"),
    (qcow2_header(length=100), "too short"),
], ids=["backing-v3", "backing-v2", "data-file", "corrupt", "bit-5",
        "bit-63", "v1", "v4", "cluster-bits", "short-v2", "short-v3"])
def test_rejected_header_is_400(header, words):
    with pytest.raises(errors.InvalidArguments) as raised:
        _parse_qcow2_header(header)

    assert words in raised.value.message
