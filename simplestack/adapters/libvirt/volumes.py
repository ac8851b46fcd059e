"""Checks on images and storage volumes before the adapter stores or copies them.

libvirtd runs qemu-img as root, and qemu-img, like QEMU, opens the backing
file and the external data file that a qcow2 header names. An image that
names a host file would make libvirtd read that file into a volume the
caller can download. So the adapter rejects such images at import, and
copies (clone, template) or mounts (media) only volumes whose libvirt XML
shows a format it writes itself and no backing store.

A caller names volumes only through libvirt's lookups (by pool and name,
by key, by path), which find volumes inside storage pools and nothing else,
so no request makes libvirtd open a path outside the pools.
"""

import struct
import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.libvirt.constants import GIB

#: First bytes of a qcow2 image ("QFI" and 0xfb).
QCOW2_MAGIC = b"QFI\xfb"

# The qcow2 header fields the adapter reads, big-endian, as QEMU's
# docs/interop/qcow2.txt lays them out: magic, version,
# backing_file_offset (0 without a backing file), backing_file_size,
# cluster_bits and size (the virtual size in bytes).
QCOW2_HEADER = struct.Struct(">4sIQIIQ")

# Version 3 headers continue with incompatible_features at byte 72 and are
# at least 104 bytes long.
QCOW2_V2_HEADER_BYTES = 72
QCOW2_V3_HEADER_BYTES = 104
QCOW2_INCOMPATIBLE_FEATURES = struct.Struct(">Q")

# The incompatible feature bits that the qcow2 specification defines; bits 5
# to 63 are reserved, and QEMU refuses an image with an unknown one.
QCOW2_DIRTY = 1 << 0
QCOW2_CORRUPT = 1 << 1
QCOW2_EXTERNAL_DATA_FILE = 1 << 2
QCOW2_COMPRESSION_TYPE = 1 << 3
QCOW2_EXTENDED_L2 = 1 << 4

# Bits an imported image may carry: none of them makes QEMU open another
# file. A dirty image has refcounts that QEMU rebuilds on open.
QCOW2_ACCEPTED_FEATURES = QCOW2_DIRTY | QCOW2_COMPRESSION_TYPE | \
    QCOW2_EXTENDED_L2

# QEMU accepts cluster sizes from 512 bytes to 2 MiB.
QCOW2_CLUSTER_BITS = range(9, 22)

#: Volume formats the adapter copies: the formats it writes (qcow2 for new
#: disks, qcow2 or raw for imports) and ISO images, which are raw data.
COPYABLE_FORMATS = ("qcow2", "raw", "iso")

#: Volume formats the CD-ROM drive takes. The drive reads its image as raw
#: data, so a qcow2 image would show the guest its metadata.
MEDIA_FORMATS = ("raw", "iso")


def _parse_qcow2_header(header):
    """Check an uploaded qcow2 header; return the image's virtual size.

    Raise InvalidArguments for a header QEMU would reject and for an image
    that refers to another file: a backing file or an external data file.
    """
    if len(header) < QCOW2_V2_HEADER_BYTES:
        raise errors.InvalidArguments(
            "the image is too short for a qcow2 header (%d bytes)"
            % len(header))
    (magic, version, backing_offset, _backing_size, cluster_bits,
     virtual_size) = QCOW2_HEADER.unpack_from(header)
    if magic != QCOW2_MAGIC:
        raise errors.InvalidArguments("the image is not a qcow2 image")
    if version not in (2, 3):
        raise errors.InvalidArguments(
            "unsupported qcow2 version %d; expected 2 or 3" % version)
    if cluster_bits not in QCOW2_CLUSTER_BITS:
        raise errors.InvalidArguments(
            "invalid qcow2 header: cluster_bits is %d; expected 9 to 21"
            % cluster_bits)
    if backing_offset:
        raise errors.InvalidArguments(
            "the qcow2 image has a backing file, which the service does not "
            "import; merge it into one image first (qemu-img convert -O "
            "qcow2 IMAGE STANDALONE.qcow2)")
    if version == 3:
        if len(header) < QCOW2_V3_HEADER_BYTES:
            raise errors.InvalidArguments(
                "the image is too short for a qcow2 version 3 header "
                "(%d bytes)" % len(header))
        features = QCOW2_INCOMPATIBLE_FEATURES.unpack_from(
            header, QCOW2_V2_HEADER_BYTES)[0]
        _check_qcow2_features(features)
    return virtual_size


def _check_qcow2_features(features):
    if features & QCOW2_EXTERNAL_DATA_FILE:
        raise errors.InvalidArguments(
            "the qcow2 image keeps its data in an external data file, "
            "which the service does not import; convert it into one image "
            "first (qemu-img convert -O qcow2 IMAGE STANDALONE.qcow2)")
    if features & QCOW2_CORRUPT:
        raise errors.InvalidArguments(
            "the qcow2 image is marked corrupt; repair it first "
            "(qemu-img check -r all IMAGE)")
    unknown = features & ~QCOW2_ACCEPTED_FEATURES
    if unknown:
        raise errors.InvalidArguments(
            "the qcow2 image uses unknown incompatible features (bits 0x%x "
            "of incompatible_features); convert it with a QEMU of this host "
            "first" % unknown)


class VolumeInfo:
    """The parts of a volume's XML that the checks need."""

    def __init__(self, xml_text):
        root = ET.fromstring(xml_text)
        self.name = root.findtext("name")
        self.path = root.findtext("target/path")
        target_format = root.find("target/format")
        self.format = (target_format.get("type")
                       if target_format is not None else None)
        # libvirt fills <backingStore> from the image header whenever it
        # refreshes the pool, which it does after every upload.
        self.backing_path = root.findtext("backingStore/path")


class VolumesMixin:
    """Methods of LibvirtAdapter that check volumes and pools."""

    def _volume_info(self, volume):
        return VolumeInfo(self._call(volume.XMLDesc, 0))

    def _check_copy_source(self, volume, what):
        """Raise InvalidArguments unless ``volume`` is safe to copy.

        ``what`` names the volume in the message, such as "template x".
        libvirt copies with qemu-img convert, which reads the backing file
        as part of the image, so a volume with one could copy a host file.
        """
        info = self._volume_info(volume)
        if info.backing_path:
            raise errors.InvalidArguments(
                "%s has a backing file (%s); the service copies only "
                "standalone images" % (what, info.backing_path))
        if info.format not in COPYABLE_FORMATS:
            raise errors.InvalidArguments(
                "%s is a %s volume; the service copies only %s volumes"
                % (what, info.format or "unknown format",
                   ", ".join(COPYABLE_FORMATS)))
        return info

    def _disk_users(self, path):
        """Return the names of the guests that have ``path`` as a disk."""
        return {description.name
                for _domain, description in self._all_descriptions()
                if any(disk.path == path for disk in description.disks)}

    def _check_space(self, pool, added_bytes, what):
        """Raise InvalidArguments when ``added_bytes`` exceed the free space
        of ``pool``; ``what`` names the request, such as "a 2 GiB disk".

        NOTE: qcow2 volumes are sparse, so a pool could hold more than this
        allows until the guests fill their disks. The adapter does not
        overcommit storage, because libvirt and QEMU report a full pool
        only when a guest writes.
        """
        _state, _capacity, _allocation, available = self._call(pool.info)
        if added_bytes > available:
            raise errors.InvalidArguments(
                "%s would take %s, but storage %s has %s free"
                % (what, _size_text(added_bytes), pool.name(),
                   _size_text(available)))


def _size_text(size):
    """Format a byte count in GiB, or in bytes below 1 GiB."""
    if size >= GIB:
        return "%d GiB" % (size // GIB)
    return "%d bytes" % size
