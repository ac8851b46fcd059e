"""Cloning guests and moving their disk images out and in.

An export streams the first disk's volume, and an import uploads a qcow2 or
raw image into a new volume and defines a guest around it.
"""

import logging
import uuid
import weakref

import libvirt

from simplestack import errors
from simplestack.adapters import base
from simplestack.adapters.libvirt import stream_reader
from simplestack.adapters.libvirt.constants import KIB
from simplestack.adapters.libvirt.locks import begin_export, guest_lock
from simplestack.adapters.libvirt.volumes import (
    QCOW2_MAGIC, _parse_qcow2_header)

logger = logging.getLogger(__name__)

#: Size of an import's first read, which distinguishes qcow2 from raw, in
#: bytes.
STREAM_CHUNK_SIZE = 256 * KIB

#: Size of the chunks an import reads from the request body and sends to
#: libvirt, in bytes. libvirt splits a larger send into stream messages.
UPLOAD_CHUNK_SIZE = 1024 * KIB

#: Size of the chunks an export yields, but the last, in bytes. libvirtd
#: 9.0 sends a volume download as pairs of 262120- and 24-byte stream
#: messages, and each recv returns one message. So the export fills whole
#: chunks rather than hand the WSGI server a socket write of 24 bytes
#: every other chunk (see stream_reader).
EXPORT_CHUNK_SIZE = 1024 * KIB


def _export_content_type(disk):
    if disk.format == "qcow2":
        return "application/x-qemu-disk"
    return "application/octet-stream"


def _export_filename(description, disk):
    return "%s.%s" % (description.name, disk.format or "img")


class ImagesMixin:
    """Methods of LibvirtAdapter that clone, export and import guests."""

    def clone_guest(self, guest_id, name):
        domain = self._domain(guest_id)
        # The lock keeps the source's disks from changing during the copy.
        with self._guest_lock(domain):
            return self._clone_locked(domain, guest_id, name)

    def _clone_locked(self, domain, guest_id, name):
        state = self._state(domain)
        if state != "STOPPED":
            raise errors.InvalidState("cannot clone guest %s: it is %s; stop "
                                      "it first" % (guest_id, state))
        self._check_name_free(name)
        description = self._describe(domain, inactive=True, secure=True)

        copies = []
        for disk in description.disks:
            volume = self._volume_by_path(disk.path) if disk.path else None
            if volume is None:
                raise self.not_implemented(
                    "clone guest %s" % description.name,
                    "disk %s is not a storage volume" % disk.target)
            self._check_copy_source(volume, "disk %s of guest %s" % (
                disk.target, description.name))
            pool = self._call(volume.storagePoolLookupByVolume)
            copy_name = "%s-disk%d.%s" % (name, disk.number,
                                          disk.format or "qcow2")
            self._check_volume_name_free(pool, copy_name)
            copies.append((disk, volume, pool, copy_name))

        root = description.root
        root.find("name").text = name
        root.remove(root.find("uuid"))
        for interface in root.findall("devices/interface"):
            # libvirt generates a new MAC for an interface without one.
            mac = interface.find("mac")
            if mac is not None:
                interface.remove(mac)
            target = interface.find("target")
            if target is not None:
                interface.remove(target)
        created = []
        try:
            for disk, volume, pool, copy_name in copies:
                capacity = self._call(volume.info)[1]
                copy = self._call(pool.createXMLFrom, self._volume_xml(
                    copy_name, capacity, disk.format or "qcow2"), volume, 0)
                created.append(copy)
                disk.element.find("source").set("file",
                                                self._call(copy.path))
            clone = self._define_new_domain(root, name)
        except errors.SimplestackError:
            self._delete_volumes(created)
            raise
        logger.info("cloned guest %s to %s (%s) on %s", description.name,
                    name, clone.UUIDString(), self.host)
        return self._guest_from_domain(clone)

    def check_export(self, guest_id):
        """Raise the error that export_guest would raise before its
        transfer starts, for HEAD on an export; start nothing. Return the
        ExportFacts of the image."""
        self._require("volume_stream", "export guests")
        description, disk, _volume, length = self._export_source(
            self._domain(guest_id), guest_id)
        return base.ExportFacts(_export_content_type(disk),
                                _export_filename(description, disk), length)

    def export_guest(self, guest_id):
        self._require("volume_stream", "export guests")
        domain = self._domain(guest_id)
        # The lock without the export check: exports may run side by side.
        with guest_lock(domain.UUIDString()):
            # Marked before the state check, so that a start in another
            # process either ends before the check or gets 409.
            end_export = begin_export(domain.UUIDString())
            try:
                return self._export_locked(domain, guest_id, end_export)
            except BaseException:
                end_export()
                raise

    def _export_source(self, domain, guest_id):
        """Return the description of a guest that can be exported, its
        first disk, that disk's volume and the volume's length in bytes;
        raise when it cannot."""
        state = self._state(domain)
        if state != "STOPPED":
            raise errors.InvalidState("cannot export guest %s: it is %s; "
                                      "stop it first" % (guest_id, state))
        description = self._describe(domain, inactive=True)
        if not description.disks:
            raise errors.InvalidArguments(
                "guest %s has no disk to export" % description.name)
        # NOTE: only the first disk leaves; the API has one image per guest.
        disk = description.disks[0]
        volume = self._volume_by_path(disk.path) if disk.path else None
        if volume is None:
            raise self.not_implemented(
                "export guest %s" % description.name,
                "disk %s is not a storage volume" % disk.target)
        # The read also fails for a volume whose file is gone although its
        # pool still lists it, so HEAD fails as GET does.
        length = self._call(volume.infoFlags,
                            libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2]
        return description, disk, volume, length

    def _export_locked(self, domain, guest_id, end_export):
        description, disk, volume, length = self._export_source(domain,
                                                                guest_id)
        stream = self._call(self.conn.newStream, 0)
        self._call(volume.download, stream, 0, 0, 0)

        # Until the stream closes, changes of the guest get 409.
        def close():
            end_export()
            self._close_stream(stream)

        image = base.ImageStream(
            chunks=self._receive_chunks(stream),
            content_type=_export_content_type(disk),
            filename=_export_filename(description, disk),
            length=length,
            close=close)
        # A stream that is never closed must not block the guest for good.
        weakref.finalize(image, end_export)
        return image

    def _receive_chunks(self, stream):
        receive_chunk = stream_reader.chunk_receiver(stream)
        while True:
            chunk = self._call(receive_chunk, EXPORT_CHUNK_SIZE)
            if not chunk:
                break
            yield chunk
        self._call(stream.finish)

    def _close_stream(self, stream):
        """Abort ``stream`` if it is unfinished, then close the connection."""
        try:
            stream.abort()
        except libvirt.libvirtError:
            # A finished stream cannot be aborted; nothing is left to free.
            pass
        self.close()

    IMPORT_CONTENT_TYPES = ("application/x-qemu-disk",
                            "application/octet-stream",
                            "application/json", None)

    def import_guest(self, stream, length, content_type, name=None,
                     storage_id=None):
        self._require("volume_stream", "import guests")
        if self.driver == "hyperv":
            raise self.not_implemented("import guests",
                                       "the hyperv driver is not available")
        if content_type not in self.IMPORT_CONTENT_TYPES:
            raise self.not_implemented(
                "import %s images" % content_type,
                "libvirt imports qcow2 or raw disk images only")
        if not isinstance(length, int) or length <= 0:
            raise errors.InvalidArguments(
                "invalid image length %r; expected a positive number of "
                "bytes" % (length,))
        name = name or "import-%s" % uuid.uuid4().hex[:8]
        self._check_name_free(name)
        pool = self._default_pool(storage_id)
        network = None
        if self.config["network"]:
            network = self._network_name(self.config["network"])

        first = base.read_exactly(stream, min(length, STREAM_CHUNK_SIZE))
        if first.startswith(QCOW2_MAGIC):
            volume_format = "qcow2"
            capacity = _parse_qcow2_header(first)
        elif len(first) >= 262 and first[257:262] == b"ustar":
            raise self.not_implemented(
                "import tar archives (XVA, OVA)",
                "libvirt imports qcow2 or raw disk images only")
        else:
            volume_format = "raw"
            capacity = length
        self._check_space(pool, capacity, "the %s image" % volume_format)
        volume_name = "%s-disk0.%s" % (name, volume_format)
        self._check_volume_name_free(pool, volume_name)

        volume = self._call(pool.createXML, self._volume_xml(
            volume_name, capacity, volume_format), 0)
        try:
            self._upload(volume, stream, first, length)
            domain_element = self._domain_element(name, 512, 1)
            devices = domain_element.find("devices")
            devices.append(self._disk_element(self._call(volume.path), "sda",
                                              volume_format))
            devices.append(self._cdrom_element("sdb"))
            if network is not None:
                devices.append(self._interface_element(network))
            domain = self._define_new_domain(domain_element, name)
        except BaseException:
            self._delete_volumes([volume])
            raise
        logger.info("imported guest %s (%s, %s, %d bytes) on %s", name,
                    domain.UUIDString(), volume_format, length, self.host)
        return self._guest_from_domain(domain)

    def _upload(self, volume, source, first, length):
        """Send ``length`` bytes (``first`` then the rest of ``source``)."""
        stream = self._call(self.conn.newStream, 0)
        self._call(volume.upload, stream, 0, length, 0)
        try:
            sent = 0
            data = first
            while True:
                # send takes the whole chunk on libvirt 9.0; the slice (a
                # copy) is for a partial send only.
                offset = 0
                while offset < len(data):
                    offset += self._call(stream.send,
                                         data[offset:] if offset else data)
                sent += len(data)
                if sent >= length:
                    break
                data = base.read_exactly(source,
                                         min(UPLOAD_CHUNK_SIZE, length - sent))
                if not data:
                    raise errors.InvalidArguments(
                        "the image ended after %d of %d bytes"
                        % (sent, length))
            self._call(stream.finish)
        except BaseException:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            raise
