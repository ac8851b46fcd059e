"""Image streams: telling an import from JSON, uploads and downloads.

Old clients send image streams with ``Content-Type: application/json``, so
an import is recognised by the body's first bytes (a tar header for XVA and
OVA, the qcow2 magic) or by a declared image type. The body is read in
chunks from the WSGI input and handed to the adapter as a file-like
object; it is never loaded whole into memory.
"""

import logging

import colander
from pyramid.threadlocal import get_current_registry

from simplestack import errors, logs, schemas
from simplestack.resources.host import close_adapter
from simplestack.streams import ReadAhead, stream_slots
from simplestack.validation import (
    body_incomplete, read_from_client, read_json_body, single_query_values,
    validate_json, whole_body_deadline)
from simplestack.views import child_path, created

logger = logging.getLogger(__name__)

IMAGE_CONTENT_TYPES = frozenset({
    "application/x-xva",
    "application/ova",
    "application/x-ova",
    "application/x-tar",
    "application/x-qemu-disk",
    "application/octet-stream",
})

QCOW2_MAGIC = b"QFI\xfb"
TAR_MAGIC = b"ustar"
TAR_MAGIC_OFFSET = 257  # of TAR_MAGIC in a POSIX tar header
#: The bytes that tell an image from JSON, up to the end of TAR_MAGIC. A
#: client that sends fewer of a longer body waits for client_timeout.
PEEK_BYTES = TAR_MAGIC_OFFSET + len(TAR_MAGIC)
#: Attribute that StreamBody sets to True on an exception it has logged
#: with the request id before raising it to the WSGI server, which then
#: need not log it again.
LOGGED_ERROR_ATTRIBUTE = "simplestack_logged"


def looks_like_image(prefix):
    """Tell an image from JSON by its first bytes."""
    if prefix.startswith(QCOW2_MAGIC):
        return True
    return prefix[TAR_MAGIC_OFFSET:PEEK_BYTES] == TAR_MAGIC


class Upload:
    """The request body as a file-like object, with a peeked prefix.

    ``read(size)`` never returns more than the declared Content-Length,
    and raises InvalidArguments when the client sends less.
    """

    def __init__(self, request):
        self.length = request.content_length
        self._input = request.body_file_raw
        self._prefix = b""
        self._remaining = self.length or 0

    def peek(self, size):
        while len(self._prefix) < size and self._remaining > 0:
            chunk = read_from_client(
                self._input, min(size - len(self._prefix), self._remaining))
            if not chunk:
                break
            self._remaining -= len(chunk)
            self._prefix += chunk
        return self._prefix[:size]

    def read(self, size=-1):
        """Read up to ``size`` bytes (all that is left when negative)."""
        if size is None or size < 0:
            size = len(self._prefix) + self._remaining
        parts = []
        if self._prefix:
            parts.append(self._prefix[:size])
            self._prefix = self._prefix[size:]
            size -= len(parts[0])
        while size > 0 and self._remaining > 0:
            data = read_from_client(self._input,
                                    min(size, self._remaining))
            if not data:
                raise body_incomplete(errors.InvalidArguments(
                    "the request body ended after %d of %d bytes"
                    % (self.length - self._remaining, self.length)))
            self._remaining -= len(data)
            size -= len(data)
            parts.append(data)
        return b"".join(parts)


class ImportQuerySchema(colander.MappingSchema):
    name = schemas.name_field(required=False, path_name=True,
                              description="name of the imported guest")


def import_validator(request, **kwargs):
    """Accept any body as an image; check Content-Length and ``?name=``."""
    _prepare_import(request)


def _prepare_import(request):
    if request.content_length is None:
        raise errors.LengthRequired(
            "an image upload needs a Content-Length header; chunked "
            "uploads are not accepted")
    if request.content_length == 0:
        request.errors.add("body", "", "the image upload is empty")
        return
    query = single_query_values(request, ("name",))
    if query is None:
        return
    try:
        request.validated.update(ImportQuerySchema().deserialize(query))
    except colander.Invalid as exc:
        for name, message in exc.asdict().items():
            request.errors.add("querystring", name, message)
        return
    request.validated["upload"] = Upload(request)


def declared_image_type(request):
    """Return the request's media type, lower-case and without parameters,
    when it is an image type; else None.

    Adapters receive this value. A type in another case or with white space
    before its parameters means the same to every adapter. A body that is
    an image by its content but declared as something else (old clients
    send ``application/json``) counts as undeclared.
    """
    media_type = (request.content_type or "").strip().lower()
    return media_type if media_type in IMAGE_CONTENT_TYPES else None


def json_or_import_validator(request, schema=None, **kwargs):
    """Validate a JSON body with ``schema``, unless the body is an image."""
    if declared_image_type(request) is not None:
        _prepare_import(request)
        return

    if request.content_length:
        upload = Upload(request)
        with whole_body_deadline(request):
            prefix = upload.peek(PEEK_BYTES)
        if looks_like_image(prefix):
            _prepare_import(request)
            request.validated["upload"] = upload
            return
        body = read_json_body(request, upload)
    else:
        body = read_json_body(request)
    if body is not None:
        validate_json(request, schema, body)


def run_import(request, host_context, storage_id=None):
    """Import ``request.validated['upload']``; return the new guest (201)."""
    upload = request.validated["upload"]
    slot = stream_slots(request).acquire()
    try:
        record = host_context.adapter.import_guest(
            upload, upload.length, declared_image_type(request),
            name=request.validated.get("name"), storage_id=storage_id)
    finally:
        slot.release()
    logger.info("imported guest %s (%d bytes) on %s",
                record["id"], upload.length, host_context.host)
    return created(request, record,
                   child_path(request, host_context, "guests", record["id"]))


class StreamBody:
    """A response body over an ImageStream that also closes the adapter.

    The WSGI server calls ``close`` when the response ends, completed or
    not, so the hypervisor connection and the stream slot live exactly as
    long as the stream.
    """

    def __init__(self, stream, adapter, slot, chunks=None, first=b""):
        self.stream = stream
        self.adapter = adapter
        self.slot = slot
        # The stream's iterator after ``first``, a chunk read already.
        self.chunks = iter(stream) if chunks is None else chunks
        self.first = first
        # The server reads the body after the request has ended, so the
        # log lines and metrics of the stream's end are taken from here.
        self.request_id = logs.current_request_id()
        self.metrics = get_current_registry().simplestack_metrics
        # Bytes handed to the server, checked against the Content-Length,
        # and whether the stream has ended.
        self.sent = 0
        self.ended = False

    def __iter__(self):
        return self

    def __next__(self):
        previous_id = logs.set_stream_request_id(self.request_id)
        try:
            if self.ended:
                raise StopIteration
            if self.first:
                chunk, self.first = self.first, b""
            else:
                chunk = self._next_chunk()
            self.sent += len(chunk)
            length = self.stream.length
            if length is not None and self.sent >= length:
                # The stream must end here. Before the server sends the
                # chunk that completes the body, a stream that goes on
                # still gets its response cut.
                if self.sent > length or self._has_more():
                    self._fail_length("gave more than")
                self.ended = True
            return chunk
        except StopIteration:
            if self.stream.length is not None and \
                    self.sent < self.stream.length:
                self._fail_length("ended after %d of" % self.sent)
            raise
        finally:
            logs.set_stream_request_id(previous_id)

    def _has_more(self):
        """Tell whether the stream has bytes left, reading one chunk."""
        while True:
            try:
                if self._next_chunk():
                    return True
            except StopIteration:
                return False

    def _next_chunk(self):
        try:
            return next(self.chunks)
        except StopIteration:
            raise
        except Exception as error:
            logger.exception("the image stream from %s host %s failed",
                             self.adapter.type_name, self.adapter.host)
            self.metrics.stream_failed(self.adapter.type_name, error)
            setattr(error, LOGGED_ERROR_ATTRIBUTE, True)
            raise

    def _fail_length(self, failure):
        """Log and raise an error because the body does not match the
        Content-Length sent. The server then cuts the connection, so the
        client does not take a short or cut image for a whole one."""
        error = errors.HypervisorError(
            "the image stream from %s host %s %s %d bytes, its length when "
            "the export started; the image changed during the export, so "
            "the response is cut" % (self.adapter.type_name,
                                     self.adapter.host, failure,
                                     self.stream.length))
        logger.warning("%s", error.message)
        self.metrics.stream_failed(self.adapter.type_name, error)
        setattr(error, LOGGED_ERROR_ATTRIBUTE, True)
        raise error

    def close(self):
        previous_id = logs.set_stream_request_id(self.request_id)
        try:
            if isinstance(self.chunks, ReadAhead):
                # The stream closes once the reading thread has left it,
                # which may be after this call returns.
                self.chunks.close(then=self._close_stream)
            else:
                self._close_stream()
        finally:
            logs.set_stream_request_id(previous_id)

    def _close_stream(self):
        """Close the stream and the adapter, and free the stream slot."""
        try:
            self.stream.close()
        except Exception:
            logger.exception("closing the image stream failed")
        finally:
            adapter, self.adapter = self.adapter, None
            if adapter is not None:
                close_adapter(adapter)
            self.slot.release()
