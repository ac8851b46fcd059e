"""XAPI's HTTP image handlers and their task lifecycle.

    PUT /import?session_id=&task_id=&sr_id=            an XVA stream: a new VM
    GET /export?session_id=&task_id=&ref= (or uuid=)   the VM as an XVA stream
    PUT /import_raw_vdi?session_id=&task_id=&vdi=&format=raw|vhd
    GET /export_raw_vdi?session_id=&task_id=&vdi=&format=raw|vhd

Authentication is the ``session_id`` parameter or HTTP Basic credentials;
anything else gets 401. The client usually creates the task, passes it as
``task_id``, polls it until it leaves ``pending``, reads ``result`` or
``error_info`` and destroys it. Without ``task_id`` the handler makes its
own task and destroys it when done. Uploads get their 200 response before the
body is read, as on a real host, so their errors show only on the task.
Images stream through in 1 MiB pieces; nothing holds a whole disk.
"""

import base64
import hashlib
import logging
import ssl
import tarfile
import xml.parsers.expat
import xmlrpc.client

from . import vhd, wire, xva
from .dispatch import coerce
from .errors import Failure
from .operations import (create_network, create_vbd, create_vdi, create_vif,
                         update_sr_usage, vdi_attached)
from .schema import CLASSES, NULL_REF
from .tasks import finish_task, new_task
from .vm import begin_operation, destroy_vm, end_operation, refresh_allowed_operations

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
MAX_OVA_XML = 16 * 1024 * 1024
_ZEROS = bytes(CHUNK)


class Transfer:
    """The task of one HTTP transfer, and the lock it shares with calls."""

    def __init__(self, request, query):
        self.request = request
        self.sim = request.simulator
        self.query = query
        self.task = None
        self.own_task = False
        self.responded = False
        self.last_progress = None

    def authenticate(self):
        """Return True when the session or the Basic credentials are valid."""
        db = self.sim.db
        session = self.query.get("session_id")
        if session is not None:
            with db.lock:
                return db.exists("session", session)
        header = self.request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == self.sim.username and password == self.sim.password
        return False

    def begin(self, label):
        db = self.sim.db
        with db.lock:
            task = self.query.get("task_id")
            if task and db.exists("task", task):
                self.task = task
            else:
                self.task = new_task(self.sim, label)
                self.own_task = True
            self.sim.running_tasks.add(self.task)

    def cancelled(self):
        with self.sim.db.lock:
            return (self.sim.db.exists("task", self.task)
                    and self.sim.db.get("task", self.task)["status"] == "cancelling")

    def progress(self, fraction):
        # The task changes only when the rounded value does: a write per
        # read of the body would add an event per few KiB.
        value = round(min(fraction, 0.99), 2)
        if value == self.last_progress:
            return
        self.last_progress = value
        with self.sim.db.lock:
            if self.sim.db.exists("task", self.task):
                self.sim.db.set("task", self.task, progress=value)

    def finish(self, result=None, error=None):
        db = self.sim.db
        with db.lock:
            self.sim.running_tasks.discard(self.task)
            if self.own_task:
                if db.exists("task", self.task):
                    db.destroy("task", self.task)
            else:
                finish_task(self.sim, self.task, result=result, error=error)


def handle(request, path, query):
    request.simulator.stats.count_http("%s %s" % (request.command, path))
    transfer = Transfer(request, query)
    if not transfer.authenticate():
        request.close_connection = True
        return request.send_bytes(401, b"Unauthorized\n")
    handlers = {"/import": import_xva, "/export": export_xva,
                "/import_raw_vdi": import_raw_vdi, "/export_raw_vdi": export_raw_vdi}
    transfer.begin("%s %s" % (request.command, path))
    try:
        handlers[path](transfer)
    except Failure as failure:
        transfer.finish(error=failure.description)
        if not transfer.responded:
            # Errors found before the transfer starts get an error response,
            # after the task has failed.
            status = getattr(failure, "http_status", 500)
            request.send_bytes(status, ("%s\n" % " ".join(failure.description)).encode())
    except (ConnectionError, TimeoutError, ssl.SSLError) as error:
        # A client that closes a TLS connection without close_notify
        # raises SSLError (UNEXPECTED_EOF_WHILE_READING), not a ConnectionError.
        log.info("client of %s went away: %s", path, error)
        transfer.finish(error=["INTERNAL_ERROR", "client connection lost: %s" % error])
    except Exception:
        log.exception("internal error in %s", path)
        transfer.finish(error=["INTERNAL_ERROR", "simulator bug in %s" % path])
    request.close_connection = True


# Helpers

def _start_stream(transfer, length=None):
    request = transfer.request
    transfer.responded = True
    request.send_response(200)
    request.send_header("Content-Type", "application/octet-stream")
    if length is not None:
        request.send_header("Content-Length", str(length))
    request.send_header("Connection", "close")
    request.end_headers()


def _refuse(failure, status):
    """Fail the task, and the request with HTTP ``status`` instead of 500."""
    failure.http_status = status
    raise failure


def _accept_upload(request, transfer):
    """Check the upload's framing and send the early 200; return its length."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        raise Failure("IMPORT_ERROR_CANNOT_HANDLE_CHUNKED")
    length = request.headers.get("Content-Length")
    if length is None or not length.isdigit():
        _refuse(Failure("IMPORT_ERROR_PREMATURE_EOF"), 411)
    transfer.responded = True
    request.send_response(200)
    request.send_header("Content-Length", "0")
    request.send_header("Connection", "close")
    request.end_headers()
    request.wfile.flush()
    return int(length)


class BodyReader:
    """A file-like reader over exactly ``length`` bytes of a request body."""

    def __init__(self, stream, length, transfer):
        self.stream = stream
        self.remaining = length
        self.length = length
        self.transfer = transfer

    def read(self, size=-1):
        if size is None or size < 0 or size > self.remaining:
            size = self.remaining
        data = self.stream.read(size) if size else b""
        self.remaining -= len(data)
        if size and not data:
            raise Failure("IMPORT_ERROR_PREMATURE_EOF")
        if self.length:
            self.transfer.progress(1 - self.remaining / self.length)
        return data


def _is_zero(data):
    # A comparison stops at the first byte that differs; count() reads all.
    if len(data) == CHUNK:
        return data == _ZEROS
    return data.count(0) == len(data)


def _find_vdi(db, key):
    if db.exists("VDI", key):
        return key
    return db.by_uuid("VDI", key)


# /export

def export_xva(transfer):
    request, sim, db = transfer.request, transfer.sim, transfer.sim.db
    with db.lock:
        vm = transfer.query.get("ref") or db.by_uuid("VM", transfer.query.get("uuid", ""))
        db.get("VM", vm)
        begin_operation(sim, vm, "export", transfer.task)
        objects, disks = xva.exported_objects(db, vm)
        header = xva.ova_xml(objects, db.get("host", sim.pool_record()["master"]))
        paths = [(disk_id, sim.disks.path(vdi_uuid), size)
                 for disk_id, vdi_uuid, size in disks]
    try:
        _start_stream(transfer)
        with tarfile.open(fileobj=request.wfile, mode="w|", bufsize=CHUNK,
                          format=tarfile.USTAR_FORMAT) as archive:
            xva.add_member(archive, "ova.xml", header)
            for number, (disk_id, path, size) in enumerate(paths):
                if not xva.write_disk(archive, disk_id, path, size, transfer.cancelled):
                    raise Failure("TASK_CANCELLED", transfer.task)
                transfer.progress((number + 1) / (len(paths) + 1))
        request.wfile.flush()
    finally:
        with db.lock:
            end_operation(sim, vm, transfer.task)
    transfer.finish()


# /import

def _coerce_snapshot(cls, snapshot, ids):
    """Turn an exported record back into stored values, with ids mapped to refs."""
    values = {}
    for name, field in CLASSES[cls].items():
        if name not in snapshot or name in ("uuid", "allowed_operations",
                                             "current_operations"):
            # Imported objects get new uuids, so an export can be imported
            # next to its original, and start with no operations.
            continue
        value = snapshot[name]
        if field.type[0] == "ref":
            if not isinstance(value, str):
                raise Failure("IMPORT_ERROR", "bad %s.%s in ova.xml" % (cls, name))
            values[name] = ids.get(value, NULL_REF)
            continue
        if field.type[0] == "set" and field.type[1][0] == "ref":
            continue
        try:
            values[name] = coerce(field.type, value, name)
        except Failure:
            raise Failure("IMPORT_ERROR", "bad %s.%s in ova.xml" % (cls, name)) from None
    return values


def _read_ova_xml(data):
    """Return the objects list of an ova.xml document.

    XAPI's import handler reports metadata it cannot read (bad UTF-8, bad
    XML, an XML-RPC value of the wrong shape) as IMPORT_ERROR [msg].
    """
    try:
        document = wire.parse_value(data.decode("utf-8"))
    except (UnicodeDecodeError, xml.parsers.expat.ExpatError, xmlrpc.client.Error,
            ValueError, TypeError, IndexError) as error:
        raise Failure("IMPORT_ERROR", "cannot parse ova.xml: %s" % error) from None
    objects = document.get("objects") if isinstance(document, dict) else None
    if not isinstance(objects, list) or not all(
            isinstance(item, dict) and isinstance(item.get("class"), str)
            and isinstance(item.get("id"), str)
            and isinstance(item.get("snapshot"), dict) for item in objects):
        raise Failure("IMPORT_ERROR", "ova.xml has no valid objects list: expected "
                      "structs with class, id and snapshot")
    return objects


def _create_imported(sim, objects, sr):
    """Create the VM, its disks and devices from ova.xml; return (vm, disks by id)."""
    db = sim.db
    ids = {}
    created = []
    by_class = {}
    for item in objects:
        by_class.setdefault(item["class"], []).append(item)
    vms = by_class.get("VM", [])
    if len(vms) != 1:
        raise Failure("IMPORT_ERROR", "ova.xml holds %d VMs, expected 1" % len(vms))

    try:
        disks = {}
        for item in by_class.get("VDI", []):
            values = _coerce_snapshot("VDI", item["snapshot"], {})
            values.update(SR=sr, is_a_snapshot=False, snapshot_of=NULL_REF,
                          location="")
            values.setdefault("other_config", {})
            ref = create_vdi(sim, values)
            created.append(("VDI", ref))
            ids[item["id"]] = ref
            disks[item["id"]] = ref
        for item in by_class.get("network", []):
            record = item["snapshot"]
            matches = db.find("network", bridge=record.get("bridge")) or \
                db.find("network", name_label=record.get("name_label"))
            if matches:
                ids[item["id"]] = matches[0]
            else:
                values = _coerce_snapshot("network", record, {})
                values["bridge"] = ""
                ref = create_network(sim, values)
                created.append(("network", ref))
                ids[item["id"]] = ref

        values = _coerce_snapshot("VM", vms[0]["snapshot"], {})
        values.update(power_state="Halted", is_control_domain=False,
                      is_default_template=False, resident_on=NULL_REF,
                      affinity=NULL_REF, snapshot_of=NULL_REF, parent=NULL_REF,
                      current_operations={})
        from .operations import create_vm
        vm = create_vm(sim, values)
        created.append(("VM", vm))
        ids[vms[0]["id"]] = vm

        for item in by_class.get("VBD", []):
            values = _coerce_snapshot("VBD", item["snapshot"], ids)
            values["VM"] = vm
            if values.get("VDI", NULL_REF) == NULL_REF:
                values.update(empty=True, VDI=NULL_REF)
            create_vbd(sim, values)
        for item in by_class.get("VIF", []):
            values = _coerce_snapshot("VIF", item["snapshot"], ids)
            values["VM"] = vm
            if values.get("network", NULL_REF) == NULL_REF:
                raise Failure("IMPORT_ERROR_FAILED_TO_FIND_OBJECT", item["snapshot"].get("network"))
            create_vif(sim, values)
        refresh_allowed_operations(sim, vm)
        return vm, disks, created
    except Failure:
        _remove(sim, created)
        raise


def _remove(sim, created):
    db = sim.db
    for cls, ref in reversed(created):
        if not db.exists(cls, ref):
            continue
        if cls == "VM":
            destroy_vm(sim, ref)
        elif cls == "VDI":
            for vbd in db.members("VDI", ref, "VBDs"):
                db.destroy("VBD", vbd)
            uuid = db.get("VDI", ref)["uuid"]
            sr = db.get("VDI", ref)["SR"]
            db.destroy("VDI", ref)
            sim.disks.remove(uuid)
            update_sr_usage(sim, sr)
        else:
            db.destroy(cls, ref)


def import_xva(transfer):
    request, sim, db = transfer.request, transfer.sim, transfer.sim.db
    with db.lock:
        sr = transfer.query.get("sr_id") or sim.pool_record()["default_SR"]
        if not db.exists("SR", sr):
            raise Failure("HANDLE_INVALID", "SR", sr)
    length = _accept_upload(request, transfer)
    body = BodyReader(request.rfile, length, transfer)

    created = []
    try:
        try:
            # tarfile's stream mode reads in steps of bufsize, 10 KiB by
            # default, while an XVA disk block is 1 MiB.
            archive = tarfile.open(fileobj=body, mode="r|", bufsize=CHUNK)
            vm = None
            for member in archive:
                if vm is None:
                    if member.name != "ova.xml":
                        raise Failure("IMPORT_ERROR_UNEXPECTED_FILE", "ova.xml", member.name)
                    if member.size > MAX_OVA_XML:
                        raise Failure("IMPORT_ERROR", "ova.xml is too large")
                    objects = _read_ova_xml(archive.extractfile(member).read())
                    with db.lock:
                        vm, disks, created = _create_imported(sim, objects, sr)
                    checksums = _DiskWriter(sim, disks)
                    continue
                if transfer.cancelled():
                    raise Failure("TASK_CANCELLED", transfer.task)
                checksums.member(member, archive.extractfile(member))
        except (tarfile.TarError, EOFError):
            raise Failure("IMPORT_ERROR_PREMATURE_EOF") from None
        if vm is None:
            raise Failure("IMPORT_ERROR_PREMATURE_EOF")
        checksums.finish()
    except Exception:
        # XAPI removes what a failed import created, whatever the error, a
        # lost client connection included (state.cleanup in
        # ocaml/xapi/import.ml of xapi-project/xen-api).
        with db.lock:
            _remove(sim, created)
        raise
    with db.lock:
        for disk in disks.values():
            record = db.get("VDI", disk)
            record["physical_utilisation"] = record["virtual_size"]
    transfer.finish(result=[vm])


class _DiskWriter:
    """Writes ``Ref:N/XXXXXXXX`` blocks into VDI files and checks their checksums."""

    def __init__(self, sim, disks):
        self.sim = sim
        self.disks = disks
        self.last_block = None
        self.failed = False

    def member(self, member, stream):
        name = member.name
        disk_id, _, block = name.partition("/")
        if disk_id not in self.disks:
            raise Failure("IMPORT_ERROR_FAILED_TO_FIND_OBJECT", disk_id)
        if block.endswith((".checksum", ".xxhash")):
            expected = stream.read().decode("ascii", "replace").strip()
            if block.endswith(".checksum") and self.last_block is not None \
                    and self.last_block[0] == name[:-len(".checksum")]:
                if hashlib.sha1(self.last_block[1]).hexdigest() != expected:
                    self.failed = True
            return
        if not block.isdigit():
            raise Failure("IMPORT_ERROR_UNEXPECTED_FILE", "%s/<block>" % disk_id, name)
        data = stream.read()
        with self.sim.db.lock:
            record = self.sim.db.get("VDI", self.disks[disk_id])
            uuid, size = record["uuid"], record["virtual_size"]
        offset = int(block) * xva.BLOCK
        if offset + len(data) > size:
            raise Failure("IMPORT_ERROR", "block %s lies beyond the disk's end" % name)
        if not _is_zero(data):
            with self.sim.disks.open(uuid, "r+b") as disk:
                disk.seek(offset)
                disk.write(data)
        self.last_block = (name, data)

    def finish(self):
        if self.failed:
            raise Failure("IMPORT_ERROR_SOME_CHECKSUMS_FAILED")


# Raw disks

def _raw_vdi(transfer, operation):
    db = transfer.sim.db
    with db.lock:
        vdi = _find_vdi(db, transfer.query.get("vdi", ""))
        fmt = transfer.query.get("format", "raw")
        if fmt not in ("raw", "vhd"):
            raise Failure("INVALID_VALUE", "format", fmt)
        if operation == "import" and vdi_attached(db, vdi):
            raise Failure("VDI_IN_USE", vdi, "import")
        record = db.get("VDI", vdi)
        return vdi, fmt, record["uuid"], record["virtual_size"]


def import_raw_vdi(transfer):
    request, sim = transfer.request, transfer.sim
    vdi, fmt, uuid, size = _raw_vdi(transfer, "import")
    length = _accept_upload(request, transfer)
    body = BodyReader(request.rfile, length, transfer)
    # Start from an empty sparse file; only data is written.
    sim.disks.create(uuid, size)
    with sim.disks.open(uuid, "r+b") as disk:
        def write_at(offset, data):
            if transfer.cancelled():
                raise Failure("TASK_CANCELLED", transfer.task)
            if not _is_zero(data):
                disk.seek(offset)
                disk.write(data)

        if fmt == "vhd":
            try:
                vhd.import_stream(body.read, write_at, size)
            except vhd.VhdError as error:
                raise Failure("INTERNAL_ERROR", str(error)) from None
        else:
            if length > size:
                raise Failure("VDI_TOO_SMALL", vdi, length)
            offset = 0
            while offset < length:
                data = body.read(min(CHUNK, length - offset))
                write_at(offset, data)
                offset += len(data)
    with sim.db.lock:
        if sim.db.exists("VDI", vdi):
            sim.db.set("VDI", vdi, physical_utilisation=size)
    transfer.finish()


def export_raw_vdi(transfer):
    request, sim = transfer.request, transfer.sim
    vdi, fmt, uuid, size = _raw_vdi(transfer, "export")
    path = sim.disks.path(uuid)
    if fmt == "vhd":
        _start_stream(transfer, vhd.export_size(path, size))
        for piece in vhd.export_stream(path, size):
            if transfer.cancelled():
                raise Failure("TASK_CANCELLED", transfer.task)
            request.wfile.write(piece)
    else:
        _start_stream(transfer, size)
        with open(path, "rb") as disk:
            while True:
                if transfer.cancelled():
                    raise Failure("TASK_CANCELLED", transfer.task)
                data = disk.read(CHUNK)
                if not data:
                    break
                request.wfile.write(data)
    request.wfile.flush()
    transfer.finish()
