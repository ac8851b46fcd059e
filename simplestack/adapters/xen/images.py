"""Exporting guests to XVA streams and importing them back.

Both go through XAPI's HTTP handlers, ``GET /export`` and ``PUT /import``,
on the host the session reached, in chunks: an image is never held in
memory whole.
"""

import http.client
import logging

from simplestack import errors
from simplestack.adapters import base
from simplestack.adapters.xen.constants import DEFAULT_TEMPLATE_KEY, KIB
from simplestack.adapters.xen.failures import check_no_operation_in_progress
from simplestack.adapters.xen.lookups import validate_name
from simplestack.adapters.xen.records import (
    is_guest_or_user_template, state_of)
from simplestack.adapters.xen.rollback import Rollback
from simplestack.adapters.xen.tasks import (
    UNFINISHED_STATUSES, task_result_refs)

logger = logging.getLogger(__name__)

#: Size of the chunks of an image export or import, in bytes. In
#: bench/streams.py runs against the XAPI simulator, 256 KiB chunks made
#: XVA imports through the service 0.60 and 0.85 times as fast as a direct
#: upload, and 1 MiB chunks 1.55 and 1.05 times (512 MiB, 2 rounds each).
CHUNK_SIZE = 1024 * KIB

XVA_CONTENT_TYPE = "application/x-xva"

#: First bytes of a qcow2 image ("QFI" and 0xfb).
QCOW2_MAGIC = b"QFI\xfb"

# A POSIX tar header: the member name in bytes 0-99, "ustar" at 257.
TAR_HEADER_SIZE = 512
TAR_MAGIC_OFFSET = 257

#: The first member of every XVA archive: the VM's metadata.
XVA_FIRST_MEMBER = "ova.xml"


def check_xva(head):
    """Raise unless ``head``, the first 512 bytes, starts an XVA archive."""
    if head.startswith(QCOW2_MAGIC):
        raise errors.FeatureNotImplemented(
            "Xen imports XVA images only, and this is a qcow2 image")
    if len(head) < TAR_HEADER_SIZE or \
            head[TAR_MAGIC_OFFSET:TAR_MAGIC_OFFSET + 5] != b"ustar":
        raise errors.InvalidArguments(
            "the image is not an XVA archive: it does not start with a tar "
            "header")
    first = head[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    if first != XVA_FIRST_MEMBER:
        raise errors.FeatureNotImplemented(
            "Xen imports XVA images only: the archive starts with %r, not "
            "%s (an OVA needs a conversion first)" % (first, XVA_FIRST_MEMBER))


def check_exportable(guest_id, vm):
    """Raise InvalidState unless XAPI can start an export of the guest
    whose record is ``vm`` now.

    XAPI checks the power state, ``blocked_operations`` and the
    operations in progress too, but only once its export handler runs
    with a task. It fails that task with VM_BAD_POWER_STATE,
    OPERATION_BLOCKED, or OTHER_OPERATION_IN_PROGRESS after waiting for
    the other operation to end. Checking first returns the error at once
    and creates no task.
    """
    if vm["power_state"] not in ("Halted", "Suspended"):
        raise errors.InvalidState("cannot export guest %s: it is %s; "
                                  "stop it first"
                                  % (guest_id, state_of(vm)))
    reason = vm["blocked_operations"].get("export")
    if reason is not None:
        raise errors.InvalidState(
            "cannot export guest %s: XAPI blocks its export "
            "(blocked_operations reason %r); remove that entry first"
            % (guest_id, reason),
            code="OPERATION_BLOCKED", params=[vm["uuid"], reason])
    check_no_operation_in_progress(vm, "export", "export guest %s" % guest_id)


def _xva_filename(vm):
    """Return the file name of the export of the guest whose record is
    ``vm``."""
    return "%s.xva" % vm["uuid"]


def task_ended(error):
    """Tell whether ``error`` is the error of a task that XAPI has
    already ended, which must be destroyed without a cancel: XAPI rejects
    the cancel of an ended task."""
    return getattr(error, "task_ended", False)


class ExportStream:
    """The body of a running export, and the task that follows it."""

    def __init__(self, adapter, task_ref, connection, response, guest_id):
        self.adapter = adapter
        self.task_ref = task_ref
        self.connection = connection
        self.response = response
        self.guest_id = guest_id
        # Whether XAPI sent the whole body, and whether a poll has seen
        # the task end.
        self.body_read = False
        self.finished = False

    def chunks(self):
        try:
            while True:
                data = self.response.read(CHUNK_SIZE)
                if not data:
                    break
                yield data
        except (OSError, http.client.HTTPException) as error:
            raise self.adapter._handler_error(error, self.task_ref,
                                              "the export") from error
        self.body_read = True
        task = self.adapter._wait_for_task(
            self.task_ref, "the export of guest %s" % self.guest_id)
        self.finished = True
        self.adapter._task_result(task, "the export of guest %s"
                                  % self.guest_id)

    def close(self):
        """Close the HTTP connection, then cancel an unfinished task and
        destroy it: a client that stops reading stops the export."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        connection.close()
        cancel = not self.finished and not self.task_ended()
        if cancel and self.body_read:
            logger.info("the export of guest %s ended before its task "
                        "finished; cancelling the task", self.guest_id)
        elif cancel:
            logger.info("the export of guest %s ended before its last "
                        "byte; cancelling its task", self.guest_id)
        self.adapter._end_task(self.task_ref, cancel=cancel)

    def task_ended(self):
        """Tell whether XAPI has ended the task of an export whose whole
        body came, although the poll for it failed (a read timeout, for
        one). XAPI rejects the cancel of an ended task with
        OPERATION_NOT_ALLOWED.

        Returns False, so that the task is cancelled, while the body is
        incomplete or when the task's record cannot be read.
        """
        if not self.body_read:
            return False
        try:
            task = self.adapter._call("task.get_record", self.task_ref)
        except errors.SimplestackError:
            return False
        return task["status"] not in UNFINISHED_STATUSES


class ImagesMixin:
    """Methods of XenAdapter that export and import guests."""

    def check_export(self, guest_id):
        """Raise the error that export_guest would raise before its
        transfer starts, for HEAD on an export.

        It reads the guest's record only: no task, no call of XAPI's
        export handler. A failure that XAPI finds only once the export
        has started, such as a disk that cannot be read, shows on GET
        only. Return the ExportFacts of the image, without its length,
        which only the handler's response can give.
        """
        _vm_ref, vm = self._guest(guest_id)
        check_exportable(guest_id, vm)
        return base.ExportFacts(XVA_CONTENT_TYPE, _xva_filename(vm), None)

    def export_guest(self, guest_id):
        vm_ref, vm = self._guest(guest_id)
        check_exportable(guest_id, vm)
        task_ref = self._create_task("export %s" % vm["uuid"])
        connection = self._endpoint.connection()
        try:
            self.calls += 1
            connection.request("GET", self._handler_path(
                "export", task_id=task_ref, uuid=vm["uuid"]))
            response = connection.getresponse()
            if response.status != 200:
                response.read()
                raise self._handler_status_error(response.status, task_ref,
                                                 "the export")
        except BaseException as error:
            connection.close()
            self._end_task(task_ref, cancel=not task_ended(error))
            if isinstance(error, (OSError, http.client.HTTPException)):
                raise self._handler_error(error, None, "the export") \
                    from error
            raise

        export = ExportStream(self, task_ref, connection, response,
                              vm["uuid"])
        length = response.getheader("Content-Length")
        return base.ImageStream(
            chunks=export.chunks(), content_type=XVA_CONTENT_TYPE,
            filename=_xva_filename(vm),
            length=int(length) if length and length.isdigit() else None,
            close=export.close)

    def import_guest(self, stream, length, content_type, name=None,
                     storage_id=None):
        with self._name_lock(name):
            return self._import_guest(stream, length, name, storage_id)

    def _import_guest(self, stream, length, name, storage_id):
        if name is not None:
            validate_name("guest", name)
            self._check_guest_name_free(name)
        query = {}
        if storage_id is not None:
            query["sr_id"], _sr = self._storage(storage_id)
        head = base.read_exactly(stream, min(TAR_HEADER_SIZE, length))
        check_xva(head)

        task_ref = self._create_task("import")
        query["task_id"] = task_ref
        finished = False
        connection = self._endpoint.connection()
        try:
            self.calls += 1
            try:
                self._upload(connection, self._handler_path("import", **query),
                             stream, head, length, task_ref)
            except errors.SimplestackError as error:
                finished = task_ended(error)
                self._remove_import_result(task_ref)
                raise
            task = self._wait_for_task(task_ref, "the import")
            finished = True
            refs = task_result_refs(self._task_result(task, "the import"))
        finally:
            connection.close()
            self._end_task(task_ref, cancel=not finished)
        if not refs:
            raise errors.HypervisorError("%s at %s ended the import without "
                                         "a VM" % (self.hypervisor_name,
                                                   self.host))

        vm_ref = refs[0]
        with Rollback("importing a guest") as rollback:
            rollback.add("delete the imported VM",
                         self._destroy_vm_with_disks, vm_ref)
            self._check_imported(vm_ref)
            if name is not None:
                self._call("VM.set_name_label", vm_ref, name, vm=vm_ref)
            record = self._guest_record(vm_ref)
        logger.info("imported guest %s (%s, %d bytes) on %s", record["name"],
                    record["id"], length, self.host)
        return record

    def _remove_import_result(self, task_ref):
        """Destroy the VMs of an import task that succeeded although its
        upload failed: XAPI can read the whole archive before the
        connection breaks, and the caller gets an error, not the guest."""
        try:
            task = self._call("task.get_record", task_ref)
        except errors.SimplestackError as error:
            logger.warning("reading import task on %s failed: %s", self.host,
                           error.message)
            return
        # NOTE: a task still pending here is cancelled by the caller; if
        # XAPI finishes it before the cancel arrives, its VM stays.
        if task["status"] != "success":
            return
        for vm_ref in task_result_refs(task["result"]):
            logger.warning("removing VM %s that a failed import created on %s",
                           vm_ref, self.host)
            try:
                self._destroy_vm_with_disks(vm_ref)
            except errors.SimplestackError as error:
                logger.warning("removing VM %s on %s failed: %s", vm_ref,
                               self.host, error.message)

    def _check_imported(self, vm_ref):
        """Make the VM that an import created reachable as a guest, or
        raise InvalidArguments so that the caller destroys it.

        XAPI imports the flags of the image's VM record as they are. A
        default_template key marks only the templates that XAPI ships, so
        the copy loses it; VM.destroy would reject the VM otherwise. A
        snapshot cannot become a guest: XAPI rejects clearing its template
        flag with VM_IS_SNAPSHOT.
        """
        vm = self._record("VM", vm_ref)
        if vm["other_config"].get(DEFAULT_TEMPLATE_KEY) is not None:
            self._call("VM.remove_from_other_config", vm_ref,
                       DEFAULT_TEMPLATE_KEY, vm=vm_ref)
            vm = self._record("VM", vm_ref)
        if vm["is_a_snapshot"]:
            raise errors.InvalidArguments(
                "invalid image: its VM is a snapshot (is_a_snapshot is set), "
                "not a guest; export the guest, or a clone of the snapshot")
        if not is_guest_or_user_template(vm):
            raise errors.InvalidArguments(
                "invalid image: its VM is not a guest or a template")

    def _upload(self, connection, path, stream, head, length, task_ref):
        """Send ``head`` and the rest of ``stream``, ``length`` bytes in
        all, then read the handler's response."""
        sent = 0
        try:
            connection.putrequest("PUT", path)
            # XAPI refuses chunked uploads, so the length goes first.
            connection.putheader("Content-Length", str(length))
            connection.putheader("Content-Type", "application/octet-stream")
            connection.endheaders()
            data = head
            while data:
                connection.send(data)
                sent += len(data)
                if sent >= length:
                    break
                data = base.read_exactly(stream, min(CHUNK_SIZE, length - sent))
            if sent < length:
                raise errors.InvalidArguments(
                    "the image ended after %d of %d bytes" % (sent, length))
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            # Sending failed before the whole image went out, so XAPI's
            # IMPORT_ERROR_PREMATURE_EOF blames the dropped connection, not
            # the caller's image.
            raise self._handler_error(error, task_ref, "the import",
                                      send_failed=sent < length) from error
        if response.status != 200:
            raise self._handler_status_error(response.status, task_ref,
                                             "the import")

    def _handler_error(self, error, task_ref, operation, send_failed=False):
        """Translate a failed handler connection: the task's own error
        when XAPI already failed it, else the transport error.

        ``send_failed``: the connection broke while the service was still
        sending, so a premature end of the upload is the connection's fault.
        """
        ended = False
        if task_ref is not None:
            try:
                task = self._call("task.get_record", task_ref)
            except errors.SimplestackError:
                task = None
            if task is not None and task["status"] in ("failure",
                                                       "cancelled"):
                ended = True
                task_error = self._task_error(task, operation)
                if not (send_failed and task_error.code
                        == "IMPORT_ERROR_PREMATURE_EOF"):
                    return task_error
        transport_error = self._translate_transport_error(
            error, self._endpoint) or errors.HypervisorUnreachable(
                "the connection to %s at %s failed during %s"
                % (self.hypervisor_name, self.host, operation), original=error)
        transport_error.task_ended = ended
        return transport_error

    def _handler_status_error(self, status, task_ref, operation):
        try:
            task = self._call("task.get_record", task_ref)
        except errors.SimplestackError:
            task = None
        if task is not None and task["status"] in ("failure", "cancelled"):
            return self._task_error(task, operation)
        return errors.HypervisorError(
            "%s at %s returned HTTP %d for %s"
            % (self.hypervisor_name, self.host, status, operation))

    def _task_error(self, task, operation):
        """Return the error of ``task``, which XAPI has ended, marked so
        that task_ended() is True for it."""
        try:
            self._task_result(task, operation)
        except errors.SimplestackError as error:
            task_error = error
        else:
            task_error = errors.HypervisorError("%s failed" % operation)
        task_error.task_ended = True
        return task_error
