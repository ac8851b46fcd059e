"""OVA import and export through HTTP NFC leases.

Import: the OVF descriptor (the archive's first member) goes to
OvfManager.CreateImportSpec, ResourcePool.ImportVApp returns a lease, and
each disk member is streamed to the lease's device URL, then the lease is
completed. Export: VirtualMachine.ExportVm returns a lease whose device
URLs serve the disks; the stream is an OVA archive of the descriptor
(OvfManager.CreateDescriptor) and the disks. Neither keeps a whole image
in memory.
"""

import http.client
import logging
import tarfile
import time
import urllib.parse
from xml.etree import ElementTree

from pyVmomi import vim

from simplestack import errors
from simplestack.access import check_redirect
from simplestack.adapters import base
from simplestack.adapters.tls import (
    bounded_create_connection, create_tls_context)
from simplestack.adapters.vmware.constants import KIB, MIB
from simplestack.adapters.vmware.inventory import validate_name
from simplestack.adapters.vmware.session import split_host

logger = logging.getLogger(__name__)

CHUNK_SIZE = 256 * KIB
OVA_CONTENT_TYPE = "application/ova"
QCOW2_MAGIC = b"QFI\xfb"
TAR_HEADER_SIZE = 512
TAR_MAGIC_OFFSET = 257
#: An OVF descriptor larger than this is not a descriptor.
MAX_DESCRIPTOR_SIZE = 16 * MIB
#: Seconds between lease progress reports; vSphere drops a lease that
#: reports nothing for 5 minutes.
PROGRESS_INTERVAL = 30
LEASE_PATHS = ("state", "error", "info")
OVF_NAMESPACE = "http://schemas.dmtf.org/ovf/envelope/1"


class ReplayStream:
    """A stream whose first bytes were read already: ``head`` then the
    rest of ``stream``, counting the bytes read."""

    def __init__(self, head, stream):
        self.head = head
        self.stream = stream
        self.count = 0

    def read(self, size=-1):
        if self.head:
            data, self.head = self.head[:size], self.head[size:]
        else:
            data = self.stream.read(size)
        self.count += len(data)
        return data


def check_ova(head):
    """Raise unless ``head``, the first 512 bytes, starts an OVA archive."""
    if head.startswith(QCOW2_MAGIC):
        raise errors.FeatureNotImplemented(
            "VMware imports OVA images only, and this is a qcow2 image")
    if len(head) < TAR_HEADER_SIZE or \
            head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] != b"ustar":
        raise errors.InvalidArguments(
            "the image is not an OVA archive: it does not start with a tar "
            "header")
    first = head[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    if not first.lower().endswith(".ovf"):
        raise errors.InvalidArguments(
            "the image is not an OVA archive: its first member is %r, not "
            "an .ovf descriptor" % first)


def descriptor_name(descriptor):
    """Return the name of the OVF descriptor's virtual system: its Name
    element, else its ovf:id."""
    try:
        root = ElementTree.fromstring(descriptor)
    except ElementTree.ParseError as error:
        raise errors.InvalidArguments(
            "the OVF descriptor is not valid XML: %s" % error,
            original=error) from error
    for element in root.iter("{%s}VirtualSystem" % OVF_NAMESPACE):
        name = element.find("{%s}Name" % OVF_NAMESPACE)
        if name is not None and name.text and name.text.strip():
            return name.text.strip()
        return element.get("{%s}id" % OVF_NAMESPACE)
    raise errors.InvalidArguments(
        "the OVF descriptor has no VirtualSystem to import")


def _ova_filename(found):
    """Return the file name of the export of the guest ``found``."""
    return "%s.ova" % (found.get("config.uuid") or "guest")


class ImagesMixin:
    """Methods of VmwareAdapter that import and export guests."""

    # -- leases -------------------------------------------------------------------

    def _wait_lease(self, lease, operation):
        """Wait until ``lease`` is ready and return its info."""
        deadline = time.monotonic() + self.config["task_timeout"]
        delay = 0.1
        while True:
            found = self._properties(lease, LEASE_PATHS)
            state = found.get("state")
            if state == "ready":
                return found.get("info")
            if state == "error":
                fault = found.get("error")
                raise self.translate_fault(fault, operation) from fault
            if state == "done":
                raise errors.HypervisorError("the lease of %s ended early"
                                             % operation)
            if time.monotonic() > deadline:
                raise errors.HypervisorTimeout(
                    "%s did not prepare %s within %s s" % (
                        self.hypervisor_name, operation,
                        self.config["task_timeout"]))
            time.sleep(delay)
            delay = min(delay * 2, 2)

    def _abort_lease(self, lease, operation):
        try:
            lease.HttpNfcLeaseAbort()
        except errors.SimplestackError as error:
            logger.warning("aborting the lease of %s on %s failed: %s",
                           operation, self.host, error.message)

    def _device_connection(self, url):
        """Return (HTTPS connection, path) for a lease device URL, whose
        host "*" means the server the session reached."""
        parts = urllib.parse.urlsplit(url)
        if parts.hostname in (None, "*"):
            host, port = split_host(self.host)
        else:
            # vCenter may name an ESXi host, which gets the session cookie:
            # it must be on the allow-list too.
            host, port = parts.hostname, parts.port or 443
            check_redirect(self.config, self.host, host)
        connection = http.client.HTTPSConnection(
            host, port, timeout=self.config["read_timeout"],
            context=create_tls_context(self.config))
        connection._create_connection = bounded_create_connection(
            self.config["resolve_timeout"])
        path = parts.path + ("?" + parts.query if parts.query else "")
        return connection, path

    def _session_cookie(self):
        return self._stub.cookie

    # -- import -------------------------------------------------------------------

    def import_guest(self, stream, length, content_type, name=None,
                     storage_id=None):
        if name is not None:
            validate_name("guest", name)
            self._check_free_name(name)
        head = stream.read(min(TAR_HEADER_SIZE, length))
        check_ova(head)
        archive = tarfile.open(fileobj=ReplayStream(head, stream), mode="r|")
        try:
            member = archive.next()
            if member is None or member.size > MAX_DESCRIPTOR_SIZE:
                raise errors.InvalidArguments(
                    "the OVA archive's descriptor is missing or too large")
            try:
                descriptor = archive.extractfile(member).read().decode(
                    "utf-8")
            except UnicodeDecodeError as error:
                raise errors.InvalidArguments(
                    "the OVF descriptor %s is not UTF-8 text" % member.name,
                    original=error) from error
            ref = self._import_ova(archive, descriptor, name, storage_id)
        except tarfile.TarError as error:
            raise errors.InvalidArguments(
                "the OVA archive is damaged or shorter than %d bytes: %s"
                % (length, error), original=error) from error
        record = self._reread(ref)
        logger.info("imported guest %s (%s, %d bytes) on %s", record["name"],
                    record["id"], length, self.host)
        return record

    def _import_ova(self, archive, descriptor, name, storage_id):
        if name is None:
            name = descriptor_name(descriptor)
            validate_name("guest", name)
        # The name was checked before the upload began, but only the lock
        # keeps another request from taking it until the import ends.
        with self._name_lock(name):
            self._check_free_name(name)
            return self._import_named_ova(archive, descriptor, name,
                                          storage_id)

    def _import_named_ova(self, archive, descriptor, name, storage_id):
        datacenter = self._datacenter()
        datastore, pool = self._placement(datacenter, storage_id)
        params = vim.OvfManager.CreateImportSpecParams(entityName=name)
        result = self.content.ovfManager.CreateImportSpec(
            ovfDescriptor=descriptor, resourcePool=pool,
            datastore=datastore.ref, cisp=params)
        if result.error:
            fault = result.error[0]
            raise errors.InvalidArguments(
                "vSphere rejected the OVF descriptor: %s" % (
                    fault.msg or type(fault)._wsdlName),
                code=type(fault)._wsdlName, original=fault)
        lease = pool.ImportVApp(spec=result.importSpec,
                                folder=datacenter.get("vmFolder"))
        info = None
        try:
            info = self._wait_lease(lease, "ImportVApp")
            urls = {url.importKey: url.url for url in info.deviceUrl or []}
            files = {item.path: item for item in result.fileItem or []}
            total = sum(item.size or 0 for item in files.values()) or 1
            sent = 0
            for member in archive:
                item = files.get(member.name)
                if item is None or not member.isfile():
                    continue
                url = urls.get(item.deviceId)
                if url is None:
                    raise errors.InvalidArguments(
                        "the OVA file %s has no device in the import lease"
                        % member.name)
                sent = self._upload_file(lease, archive.extractfile(member),
                                         member.size, url, item.create,
                                         sent, total)
            lease.HttpNfcLeaseComplete()
        except BaseException:
            self._abort_lease(lease, "ImportVApp")
            if info is not None and info.entity is not None:
                self._remove_partial_import(info.entity)
            raise
        return info.entity

    def _remove_partial_import(self, ref):
        """Delete the VM of an aborted import. vSphere removes it with the
        lease; govmomi's simulator keeps it."""
        try:
            self._run("Destroy_Task", ref)
        except errors.EntityNotFound:
            pass
        except errors.SimplestackError as error:
            logger.warning("deleting the VM of an aborted import on %s "
                           "failed: %s", self.host, error.message)

    def _upload_file(self, lease, source, size, url, create, sent, total):
        connection, path = self._device_connection(url)
        last_report = time.monotonic()
        try:
            # vSphere takes a new disk with PUT and an existing one with
            # POST.
            connection.putrequest("PUT" if create else "POST", path)
            connection.putheader("Content-Length", str(size))
            connection.putheader("Content-Type",
                                 "application/x-vnd.vmware-streamVmdk")
            connection.putheader("Cookie", self._session_cookie())
            connection.endheaders()
            remaining = size
            while remaining > 0:
                data = source.read(min(CHUNK_SIZE, remaining))
                if not data:
                    raise errors.InvalidArguments(
                        "the OVA archive ended inside one of its files")
                connection.send(data)
                remaining -= len(data)
                sent += len(data)
                if time.monotonic() - last_report > PROGRESS_INTERVAL:
                    lease.HttpNfcLeaseProgress(
                        percent=min(99, sent * 100 // total))
                    last_report = time.monotonic()
            self.calls += 1
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            raise self.translate_transport_error(error) or \
                errors.HypervisorUnreachable(
                    "the upload to %s at %s failed" % (
                        self.hypervisor_name, self.host),
                    original=error) from error
        finally:
            connection.close()
        if response.status not in (200, 201):
            raise errors.HypervisorError(
                "%s at %s returned HTTP %d for a disk upload" % (
                    self.hypervisor_name, self.host, response.status))
        return sent

    # -- export -------------------------------------------------------------------

    def check_export(self, guest_id):
        """Raise the error that export_guest would raise before its
        transfer starts, for HEAD on an export.

        It reads the guest's properties only. Whether ExportVm works can
        be known only by calling it, which creates an export lease, so a
        server that lacks the method (govmomi's simulator) or refuses the
        lease fails GET only. Return the ExportFacts of the image, without
        its length, which is the sum of the disks that the lease lists.
        """
        found = self._exportable_guest(guest_id)
        return base.ExportFacts(OVA_CONTENT_TYPE, _ova_filename(found), None)

    def _exportable_guest(self, guest_id):
        """Return the Found of a guest that ExportVm may take; raise
        InvalidState for a powered-on guest."""
        found = self._guest(guest_id, ("name", "config.uuid",
                                       "runtime.powerState"))
        if found.get("runtime.powerState") == "poweredOn":
            raise errors.InvalidState(
                "cannot export guest %s while it is STARTED; stop it first"
                % found.get("name"))
        return found

    def export_guest(self, guest_id):
        found = self._exportable_guest(guest_id)
        # NOTE: govmomi 0.24's simulator has no ExportVm, so the code after
        # this call (lease wait, descriptor, disk downloads) has never run
        # against a server.
        lease = found.ref.ExportVm()
        try:
            info = self._wait_lease(lease, "ExportVm")
            disks = [url for url in info.deviceUrl or [] if url.disk]
            if any(url.fileSize is None for url in disks):
                raise errors.FeatureNotImplemented(
                    "%s at %s does not report the size of exported disks, "
                    "which an OVA stream needs in advance" % (
                        self.hypervisor_name, self.host))
            files = [vim.OvfManager.OvfFile(
                deviceId=url.key, path=url.targetId or "disk-%d.vmdk" % index,
                size=url.fileSize) for index, url in enumerate(disks)]
            descriptor = self.content.ovfManager.CreateDescriptor(
                obj=found.ref, cdp=vim.OvfManager.CreateDescriptorParams(
                    name=found.get("name"), ovfFiles=files))
        except BaseException:
            self._abort_lease(lease, "ExportVm")
            raise
        export = OvaExport(self, lease, found.get("name"),
                           descriptor.ovfDescriptor.encode("utf-8"),
                           list(zip(files, disks)))
        return base.ImageStream(
            chunks=export.chunks(), content_type=OVA_CONTENT_TYPE,
            filename=_ova_filename(found),
            length=export.length(), close=export.close)


class OvaExport:
    """The OVA archive of a running export: the descriptor, then each disk
    downloaded from the lease."""

    def __init__(self, adapter, lease, name, descriptor, disks):
        self.adapter = adapter
        self.lease = lease
        self.name = name
        self.descriptor = descriptor
        self.disks = disks
        self.finished = False
        self.closed = False

    def length(self):
        total = self._member_size(len(self.descriptor))
        for ovf_file, _url in self.disks:
            total += self._member_size(ovf_file.size)
        return total + 2 * TAR_HEADER_SIZE

    @staticmethod
    def _member_size(size):
        padding = -size % TAR_HEADER_SIZE
        return TAR_HEADER_SIZE + size + padding

    @staticmethod
    def _header(name, size):
        info = tarfile.TarInfo(name)
        info.size = size
        info.mtime = int(time.time())
        return info.tobuf(format=tarfile.USTAR_FORMAT)

    def chunks(self):
        yield self._header("%s.ovf" % self.name, len(self.descriptor))
        yield self.descriptor + b"\0" * (-len(self.descriptor) %
                                         TAR_HEADER_SIZE)
        for ovf_file, url in self.disks:
            yield self._header(ovf_file.path, ovf_file.size)
            yield from self._download(url.url, ovf_file.size)
            yield b"\0" * (-ovf_file.size % TAR_HEADER_SIZE)
        yield b"\0" * (2 * TAR_HEADER_SIZE)
        self.lease.HttpNfcLeaseComplete()
        self.finished = True

    def _download(self, url, size):
        connection, path = self.adapter._device_connection(url)
        try:
            self.adapter.calls += 1
            connection.request("GET", path, headers={
                "Cookie": self.adapter._session_cookie()})
            response = connection.getresponse()
            if response.status != 200:
                raise errors.HypervisorError(
                    "%s at %s returned HTTP %d for a disk download" % (
                        self.adapter.hypervisor_name, self.adapter.host,
                        response.status))
            remaining = size
            while remaining > 0:
                data = response.read(min(CHUNK_SIZE, remaining))
                if not data:
                    raise errors.HypervisorError(
                        "the exported disk ended %d bytes early" % remaining)
                remaining -= len(data)
                yield data
        except (OSError, http.client.HTTPException) as error:
            raise self.adapter.translate_transport_error(error) or \
                errors.HypervisorUnreachable(
                    "the download from %s failed" % self.adapter.host,
                    original=error) from error
        finally:
            connection.close()

    def close(self):
        """Abort an unfinished lease: a client that stops reading stops the
        export."""
        if self.closed:
            return
        self.closed = True
        if not self.finished:
            logger.info("the export of guest %s ended before its last byte; "
                        "aborting its lease", self.name)
            self.adapter._abort_lease(self.lease, "ExportVm")
