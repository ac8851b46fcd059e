"""Cornice validators: JSON bodies and list query strings.

Validators only read the request and fill ``request.validated`` or
``request.errors``; a request with errors never reaches its view, so a
request that fails validation changes nothing on the hypervisor.
"""

import contextlib
import json
import re

import colander
from gunicorn.http.errors import NoMoreData, ParseException
from webob.request import DisconnectionError

from simplestack import errors
from simplestack.read_deadlines import read_deadline

#: WSGI environ key of the decoded JSON body, which error messages may
#: quote (see views.quoted_request_values).
JSON_BODY_KEY = "simplestack.json_body"


def _add_invalid(request, location, exc):
    """Copy a colander.Invalid into request.errors, one entry per field."""
    for path, message in sorted(exc.asdict().items()):
        # asdict() keys are dotted paths; the top node has an empty name.
        name = path.lstrip(".") if path else ""
        request.errors.add(location, name, message)


def read_from_client(stream, size):
    """Read up to ``size`` bytes of the request body from ``stream``.

    Raises RequestTimeout when the client sends nothing for
    simplestack.client_timeout seconds (gunicorn's socket timeout), and
    InvalidArguments when the client resets the connection, closes its side
    before the end of a body that webob reads (request.body_file), or sends
    a chunked body that is malformed or ends before its last chunk. A client
    that closes its side cleanly during a Content-Length body read from
    request.body_file_raw makes the read return fewer bytes instead. Each
    of these errors closes the connection (see body_incomplete).
    """
    try:
        return stream.read(size)
    except TimeoutError as error:
        raise body_incomplete(errors.RequestTimeout(
            "the client sent no more request body data within the time "
            "limit (simplestack.client_timeout)")) from error
    except (ConnectionError, DisconnectionError) as error:
        # Without this, the error becomes a 500, or a 502 that blames the
        # hypervisor when an adapter is passing the body on.
        raise body_incomplete(errors.InvalidArguments(
            "the client closed the connection before sending the whole "
            "request body (%s)" % type(error).__name__)) from error
    except (ParseException, NoMoreData) as error:
        # gunicorn parses a chunked body while the application reads it.
        raise body_incomplete(errors.InvalidArguments(
            "invalid chunked request body (%s). Send a body in chunked "
            "transfer coding that ends with its last chunk, or one with a "
            "Content-Length" % error)) from error


def body_incomplete(error):
    """Mark ``error`` as one that leaves the request body incomplete, so
    that its response closes the connection; return it.

    The error view passes the mark on in the WSGI environ, because a
    WSGI application may not send a Connection header itself.
    """
    error.close_connection = True
    return error


@contextlib.contextmanager
def whole_body_deadline(request):
    """Bound the body reads of the block to simplestack.client_timeout
    seconds in all, under gunicorn; raise RequestTimeout when they take
    longer.

    Each read from the socket already has that timeout, but a client
    that sends a little before each one ends kept its thread without end.
    Under waitress the body is read whole before the application runs.
    """
    sock = request.environ.get("gunicorn.socket")
    if sock is None:
        yield
        return
    seconds = request.registry.settings["simplestack.client_timeout"]
    with read_deadline(sock, seconds) as watch:
        try:
            yield
        except errors.SimplestackError:
            # A read cut by the deadline ends like a client that closed.
            if not watch.expired:
                raise
    if watch.expired:
        raise body_incomplete(errors.RequestTimeout(
            "the client did not send the whole request body within %g s "
            "(simplestack.client_timeout)" % seconds))


def read_json_body(request, reader=None):
    """Return the decoded JSON body, or None (with request.errors set).

    The content type is not checked: old clients send JSON with any type.
    An empty body reads as an empty object. ``reader`` replaces the body
    file when a validator already peeked at the body.
    """
    limit = request.registry.settings["simplestack.max_json_body_bytes"]
    length = request.content_length
    if length is not None and length > limit:
        raise errors.RequestTooLarge(
            "the JSON body has %d bytes; the limit is %d" % (length, limit))

    if reader is None:
        reader = request.body_file
    with whole_body_deadline(request):
        raw = read_from_client(reader, limit + 1)
    if len(raw) > limit:
        raise errors.RequestTooLarge(
            "the JSON body has more than %d bytes, the limit" % limit)
    if not raw.strip():
        return {}

    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        request.errors.add("body", "", "the body is not UTF-8 text")
        return None
    except ValueError as exc:
        request.errors.add("body", "", "invalid JSON: %s" % exc)
        return None
    except RecursionError:
        request.errors.add("body", "", "invalid JSON: nested too deeply")
        return None

    if not isinstance(body, dict):
        request.errors.add("body", "", "the body must be a JSON object")
        return None
    request.environ[JSON_BODY_KEY] = body
    return body


def validate_json(request, schema, body):
    """Deserialize ``body`` with ``schema`` into request.validated."""
    try:
        request.validated.update(schema.deserialize(body))
    except colander.Invalid as exc:
        _add_invalid(request, "body", exc)


def json_body_validator(request, schema=None, **kwargs):
    """Validate the JSON body against the service's colander ``schema``."""
    body = read_json_body(request)
    if body is None or schema is None:
        return
    validate_json(request, schema, body)


# -- lists ---------------------------------------------------------------

MAX_LIMIT = 100000
DIGITS = re.compile(r"^[0-9]+$")
NEGATIVE_WHOLE_NUMBER = re.compile(r"^-[0-9]+$")


def list_query_schema():
    node = colander.SchemaNode(colander.Mapping(unknown="ignore"))
    node.add(colander.SchemaNode(
        colander.Int(), name="limit", missing=colander.drop,
        validator=colander.Range(min=1, max=MAX_LIMIT),
        description="maximum number of items in the page"))
    node.add(colander.SchemaNode(
        colander.String(), name="marker", missing=colander.drop,
        validator=colander.Length(min=1, max=1024),
        description="the last id of the previous page"))
    node.add(colander.SchemaNode(
        colander.String(), name="fields", missing=colander.drop,
        validator=colander.Length(min=1, max=1024),
        description="comma-separated record fields; id is always included"))
    return node


def single_query_values(request, names):
    """Return {name: value} for the query parameters ``names``.

    A parameter given twice or given empty is an error in request.errors
    (and the result is None): silently picking one value or ignoring an
    empty one would hide a caller's mistake.
    """
    query = {}
    for name in names:
        values = request.GET.getall(name)
        if len(values) > 1:
            request.errors.add("querystring", name, "given more than once")
            return None
        if values:
            if not values[0]:
                request.errors.add("querystring", name, "must not be empty")
                return None
            query[name] = values[0]
    return query


def list_query_validator(request, **kwargs):
    """Validate ``limit``, ``marker`` and ``fields`` of a list request."""
    query = single_query_values(request, ("limit", "marker", "fields"))
    if query is None:
        return
    if "limit" in query and NEGATIVE_WHOLE_NUMBER.match(query["limit"]):
        # The same message as colander's Range gives 0, without int().
        request.errors.add("querystring", "limit",
                           "%s is less than minimum value 1"
                           % errors.shorten_quoted(query["limit"]))
        return
    # int() also reads "1_0" and non-ASCII digits; a limit is ASCII digits.
    if "limit" in query and not DIGITS.match(query["limit"]):
        request.errors.add("querystring", "limit",
                           "%r is not a whole number" % query["limit"])
        return
    if "limit" in query and len(query["limit"].lstrip("0")) > len(
            str(MAX_LIMIT)):
        # Too long for colander's message to quote; int() of a long digit
        # string also costs time that grows with its length.
        request.errors.add("querystring", "limit",
                           "%s... is greater than maximum value %d"
                           % (query["limit"][:12], MAX_LIMIT))
        return
    try:
        validated = list_query_schema().deserialize(query)
    except colander.Invalid as exc:
        _add_invalid(request, "querystring", exc)
        return
    if "fields" in validated:
        fields = [field.strip() for field in validated["fields"].split(",")]
        if not all(fields):
            request.errors.add("querystring", "fields",
                               "empty field name in %r" % validated["fields"])
            return
        validated["fields"] = fields
    request.validated["query"] = validated
