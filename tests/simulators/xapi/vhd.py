"""Dynamic VHD streams for /import_raw_vdi and /export_raw_vdi with format=vhd.

A dynamic VHD starts with a 512-byte copy of the footer and a 1024-byte
dynamic header. The block allocation table (BAT) follows, with one
big-endian sector number per 2 MiB block, or 0xFFFFFFFF for a block without
data. Each allocated block is a 512-byte sector bitmap and its data, and
the footer ends the file.
"""

import struct
import time
import uuid

from .disks import data_extents

SECTOR = 512
BLOCK_SIZE = 2 * 1024 * 1024
BITMAP_SIZE = SECTOR    # 4096 sectors per block: 512 bytes of bits
UNUSED = 0xFFFFFFFF
VHD_EPOCH = 946684800   # 2000-01-01T00:00:00Z, the VHD time origin
DYNAMIC = 3


class VhdError(ValueError):
    pass


def _checksum(data):
    return (~sum(data)) & 0xFFFFFFFF


def _geometry(size):
    """Return (cylinders, heads, sectors per track) as the specification computes it."""
    sectors = min(size // SECTOR, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        per_track, heads = 255, 16
        cylinder_heads = sectors // per_track
    else:
        per_track = 17
        cylinder_heads = sectors // per_track
        heads = max((cylinder_heads + 1023) // 1024, 4)
        if cylinder_heads >= heads * 1024 or heads > 16:
            per_track, heads = 31, 16
            cylinder_heads = sectors // per_track
        if cylinder_heads >= heads * 1024:
            per_track, heads = 63, 16
            cylinder_heads = sectors // per_track
    return cylinder_heads // heads, heads, per_track


def footer(size):
    cylinders, heads, per_track = _geometry(size)
    fields = struct.pack(
        ">8sIIQI4sI4sQQHBBII16sB427s",
        b"conectix", 2, 0x00010000, SECTOR, int(time.time()) - VHD_EPOCH,
        b"tap\0", 0x00010003, b"Wi2k", size, size, cylinders, heads, per_track,
        DYNAMIC, 0, uuid.uuid4().bytes, 0, b"")
    return fields[:64] + struct.pack(">I", _checksum(fields)) + fields[68:]


def dynamic_header(entries, table_offset):
    fields = struct.pack(
        ">8sQQIIII16sII512s24s24s24s24s24s24s24s24s256s",
        b"cxsparse", 0xFFFFFFFFFFFFFFFF, table_offset, 0x00010000, entries,
        BLOCK_SIZE, 0, b"\0" * 16, 0, 0, b"", *([b""] * 8), b"")
    return fields[:36] + struct.pack(">I", _checksum(fields)) + fields[40:]


def _allocated_blocks(stream, size):
    blocks = set()
    for start, end in data_extents(stream.fileno(), size):
        blocks.update(range(start // BLOCK_SIZE, (end - 1) // BLOCK_SIZE + 1))
    return sorted(blocks)


def _table_bytes(entries):
    return (entries * 4 + SECTOR - 1) // SECTOR * SECTOR


def export_size(path, size):
    """Return the length in bytes of the VHD that export_stream writes."""
    entries = (size + BLOCK_SIZE - 1) // BLOCK_SIZE
    with open(path, "rb") as stream:
        blocks = len(_allocated_blocks(stream, size))
    return 4 * SECTOR + _table_bytes(entries) + blocks * (BITMAP_SIZE + BLOCK_SIZE)


def export_stream(path, size):
    """Yield the VHD of a sparse file in pieces; only allocated blocks are read."""
    entries = (size + BLOCK_SIZE - 1) // BLOCK_SIZE
    table_offset = 3 * SECTOR
    table_bytes = _table_bytes(entries)
    with open(path, "rb") as stream:
        allocated = _allocated_blocks(stream, size)
        next_sector = (table_offset + table_bytes) // SECTOR
        table = [UNUSED] * entries
        for index in allocated:
            table[index] = next_sector
            next_sector += (BITMAP_SIZE + BLOCK_SIZE) // SECTOR
        tail = footer(size)
        yield tail
        yield dynamic_header(entries, table_offset)
        bat = struct.pack(">%dI" % entries, *table)
        yield bat + b"\xff" * (table_bytes - len(bat))
        for index in allocated:
            stream.seek(index * BLOCK_SIZE)
            data = stream.read(BLOCK_SIZE)
            yield b"\xff" * BITMAP_SIZE + data + b"\0" * (BLOCK_SIZE - len(data))
        yield tail


def import_stream(read, write_at, capacity):
    """Read a dynamic VHD from ``read(n)`` and write its blocks with ``write_at``.

    Blocks must follow the BAT in increasing file order, as every VHD writer
    that streams does. Return the disk's virtual size.
    """
    position = 0

    def take(count):
        nonlocal position
        data = read(count)
        if len(data) != count:
            raise VhdError("the VHD stream ended early")
        position += count
        return data

    head = take(SECTOR)
    if head[:8] != b"conectix":
        raise VhdError("not a VHD: no footer copy at the start")
    size = struct.unpack(">Q", head[48:56])[0]
    disk_type = struct.unpack(">I", head[60:64])[0]
    if disk_type != DYNAMIC:
        raise VhdError("only dynamic VHDs are accepted, this one has type %d" % disk_type)
    if size > capacity:
        raise VhdError("the VHD holds %d bytes, the VDI %d" % (size, capacity))
    data_offset = struct.unpack(">Q", head[16:24])[0]
    take(data_offset - position)
    header = take(1024)
    if header[:8] != b"cxsparse":
        raise VhdError("not a dynamic VHD header")
    table_offset, _, entries, block_size = struct.unpack(">QIII", header[16:36])
    take(table_offset - position)
    table = struct.unpack(">%dI" % entries, take(entries * 4))
    bitmap = (block_size // SECTOR + 8 * SECTOR - 1) // (8 * SECTOR) * SECTOR
    for sector, index in sorted((s, i) for i, s in enumerate(table) if s != UNUSED):
        if sector * SECTOR < position:
            raise VhdError("VHD blocks are not in file order")
        take(sector * SECTOR - position)
        take(bitmap)
        data = take(block_size)
        end = min(block_size, size - index * block_size)
        if end > 0:
            write_at(index * block_size, data[:end])
    return size
