"""gunicorn's threaded worker, changed to accept a connection only while
one of its threads has no work.

gunicorn's gthread worker (27.0.1) accepts new connections while it has
fewer than ``worker_connections`` open (1000 by default), so under a burst
of new connections one worker can take more of them than it has threads.
Those wait for a thread of that worker while the threads of another
worker stay idle. Setting ``worker_connections`` to ``threads`` stops
that, but turns keep-alive off, and lets clients that connect and send
nothing stop a worker from accepting.

This worker keeps gunicorn's limit and adds one: it accepts while the
connections handed to its thread pool are fewer than ``threads``.
Connections waiting in keep-alive, and new ones that gunicorn deferred
because they sent nothing yet, wait in the worker's poller, not in a
thread, so they do not count. While a worker takes no connections, the
kernel keeps them in the listen queue for the other workers. Name it in
gunicorn's ``worker_class`` setting:
``simplestack.gunicorn_worker.ThreadWorker``.

gunicorn's threads read a request's head (request line and header fields)
without a time limit, so a few dozen clients that never finish their heads
took every thread for good. Here a thread waits at most
HEAD_THREAD_WAIT_SECONDS for a whole head, new connection or kept-alive.
An incomplete head then waits in the worker's poller, which reads what
comes without a thread, and goes back to the thread pool when complete.
A connection that has not sent a whole head within ``keepalive`` seconds
of its first wait is closed, as gunicorn closes idle kept-alive ones.
This also replaces gunicorn's wait of up to 5 s in a thread for the first
bytes of a new connection.

gunicorn's worker closes a finished connection in its main loop and waits
there up to 2 s for the client's end of stream. Clients that take a
"Connection: close" response and keep their side open so stalled the
whole worker for 2 s each. This worker waits for that end of stream in
its poller instead.

gunicorn responds to a request whose body the application left unread
with "Connection: keep-alive". It then reads and discards up to 64 KiB of
that body in the request's thread for up to 5 s, and closes the
connection when more is left. So a client that sent a large body and got
an early error (404, 401, 408) was told the connection stays open, and a
client that stopped sending held a thread for 5 s. This worker sends
"Connection: close" with such a response, for Content-Length and chunked
bodies alike, and closes the connection without waiting in a thread.

gunicorn answers a request that it cannot parse (a bad request line or
header field, a head over its limits, an unknown transfer coding) with an
HTML page. Each worker replaces gunicorn's writer of that page, so the
body is the service's JSON error: {"error": name, "message": text}, with
a new X-Request-ID. gunicorn's warning about such a head quotes the
rejected header line, which may hold a credential, so the worker drops
that warning and logs a line of its own with the request id instead.
gunicorn's message text quotes the rejected part of the head too: a
request line of up to 4094 bytes, a header value. So the worker sends a
message of its own for each kind of fault (rejected_head_message), which
quotes no header value and at most a short, escaped prefix of a bad
method or HTTP version. A head whose Content-Length or Transfer-Encoding
does not frame the body gets a message about body framing. A repeated
Host or Content-Type field gets a message that names the field, and any
other rejected header field a message about the form of header fields.

gunicorn's Body.read requests at least 1 KiB from its reader, and the
reader of a Content-Length body waits until it has all it was asked
for. So the create view's peek at the first few hundred bytes of a body
waited for 1 KiB, and a client that sent less of a larger body and
waited for the response got 408 after client_timeout. The worker makes
a first read of fewer than 1 KiB request only that many bytes from the
reader.

gunicorn logs a write to a client that stopped reading until the socket
timeout (simplestack.client_timeout) as "Socket error processing
request." at ERROR, with a traceback and no request id, and a client that
closed or reset its connection only at DEBUG. Neither is a server error.
The worker logs one WARNING line for both, with the request id and the
maximum body bytes sent. An image export that fails after its headers went out is
logged by its body (StreamBody) with the request id, and the worker drops
gunicorn's second traceback of that exception ("Error handling request").

The class overrides eight methods of gunicorn's ``ThreadWorker``, reads
four of its attributes, and hands a head to the parser of gunicorn's
connection objects. Each worker process also replaces util.write_error
and Body.read. ``check_config`` and ``__init__`` raise RuntimeError when
the installed gunicorn lacks one of these parts.
"""

import errno
import http
import json
import logging
import selectors
import socket
import threading
import time
from functools import partial

import gunicorn
from gunicorn import util
from gunicorn.http import body, unreader, wsgi
from gunicorn.http.errors import (
    ExpectationFailed, InvalidHeader, InvalidHeaderName, InvalidHTTPVersion,
    InvalidRequestLine, InvalidRequestMethod, LimitRequestHeaders,
    LimitRequestLine, ObsoleteFolding, UnsupportedTransferCoding)
from gunicorn.http.message import RFC9110_5_3_SINGLETON_FIELDS
from gunicorn.http2 import negotiation
from gunicorn.workers import base, gthread

from simplestack.errors import CLOSE_CONNECTION_KEY, shorten_quoted
from simplestack.tweens import REQUEST_ID_HEADER, random_request_id
from simplestack.views.imports import LOGGED_ERROR_ATTRIBUTE

#: The request tween's logger, which logs one line per request.
logger = logging.getLogger("simplestack.requests")
#: Logs responses that the client did not take in full. The tween's
#: logger has one line per request, logged before the body goes out.
response_logger = logging.getLogger(__name__)

#: Methods of gunicorn's ThreadWorker that this worker overrides.
OVERRIDDEN_METHODS = (
    "accept", "set_accept_enabled", "handle", "finish_request",
    "murder_keepalived", "load_wsgi", "handle_error", "handle_request")
#: Seconds that a pool thread waits for the rest of a request head before
#: it hands the connection to the worker's poller. HTTP clients usually
#: send a head in one write, so mostly slow or idle clients reach it.
HEAD_THREAD_WAIT_SECONDS = 0.5
#: Bytes read at once from a connection that sends its head.
HEAD_READ_BYTES = 65536
#: Returned by ``handle`` for a connection whose head is incomplete.
HEAD_INCOMPLETE = object()
#: Seconds that a connection closed after its response waits for the
#: client's end of stream, and the maximum request bytes it reads
#: meanwhile. Unread bytes would make the kernel reset the connection
#: before the client has read the response (RFC 9112 section 9.6). These
#: are the defaults of gunicorn 27.0.1's util.close_graceful.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 65536
LINGER_READ_BYTES = 4096
#: Attributes of a gunicorn ThreadWorker that this worker reads: the count
#: of its open connections, the ones waiting in keep-alive and in the
#: poller for their first bytes, and its worker_connections.
READ_ATTRIBUTES = (
    "nr_conns", "keepalived_conns", "pending_conns", "worker_connections")
#: Error names (simplestack.errors) of the statuses that gunicorn's
#: Worker.handle_error sends. Other statuses get InvalidArguments below
#: 500 and InternalError from 500 on.
SERVER_ERROR_NAMES = {
    400: "InvalidArguments",
    414: "RequestTooLarge",
    417: "InvalidArguments",
    431: "RequestTooLarge",
    500: "InternalError",
    501: "FeatureNotImplemented",
}


#: The warning that Worker.handle_error of gunicorn 27.0.1 logs about a
#: request head it rejects. Its error part quotes the exception, whose text
#: can be a whole header line.
GUNICORN_HEAD_WARNING = "Invalid request from ip={ip}: {error}"
GUNICORN_HEAD_WARNING_PREFIX = GUNICORN_HEAD_WARNING.split("{", 1)[0]
#: gunicorn's errors about the form of a header field, and their message.
HEADER_TEXT_ERRORS = (InvalidHeader, InvalidHeaderName)
HEADER_ERROR_MESSAGE = (
    "invalid header field in the request head: each field needs a name "
    "of token characters, a colon, and a value without NUL, CR or LF")
#: The header names in the InvalidHeader, with the request attached, that
#: gunicorn 27.0.1's Request.set_body_reader raises when the head does not
#: frame the body. That is a Content-Length that is not a decimal number,
#: or given twice or with Transfer-Encoding. It is also a Transfer-Encoding
#: that does not end with chunked, or chunked in HTTP/1.0.
BODY_FRAMING_HEADERS = frozenset(("CONTENT-LENGTH", "TRANSFER-ENCODING"))
#: The message of those errors. It quotes no header value, which may be a
#: credential that a client put in the wrong field.
BODY_FRAMING_ERROR_MESSAGE = (
    "invalid request body framing: send one Content-Length of decimal "
    "digits, or, in HTTP/1.1, Transfer-Encoding ending with chunked and "
    "no Content-Length")
#: The message of a head that repeats a header field that must come once
#: (RFC 9110 section 5.3), with the field's name.
REPEATED_FIELD_ERROR_MESSAGE = (
    "invalid request head: header field %s appears more than once; send "
    "it once")
#: The message of gunicorn's error response to a failure of the
#: application or of gunicorn itself, which gunicorn sends without text.
SERVER_FAILURE_MESSAGE = "the server failed to handle the request"
#: The messages of the other errors of gunicorn 27.0.1 about a request
#: head, in place of gunicorn's text, which quotes the rejected request
#: line or header value.
REQUEST_LINE_ERROR_MESSAGE = (
    "invalid request line: send the method, the request target and the "
    "HTTP version, separated by single spaces and ended by CRLF. The "
    "target starts with / and has printable ASCII characters only "
    "(percent-encode the rest)")
FOLDED_HEADER_ERROR_MESSAGE = (
    "invalid header field in the request head: a field continues on the "
    "next line (obsolete line folding); send each field on one line")
EXPECT_ERROR_MESSAGE = (
    "unsupported Expect header field: the server supports only "
    "100-continue")
TRANSFER_CODING_ERROR_MESSAGE = (
    "unsupported transfer coding in the Transfer-Encoding header field: "
    "send chunked only, or a Content-Length instead")
HEAD_LIMIT_ERROR_MESSAGE = (
    "request head too large: it has too many header fields, or a header "
    "field or the whole head is too long")
#: The log line of a request that gets gunicorn's error response, mostly
#: one that gunicorn cannot parse. The record has the same fields as keys
#: for logs.JsonFormatter.
HEAD_ERROR_FORMAT = (
    "request_id=%(request_id)s status=%(status)d error=%(error)s "
    "cause=%(cause)s peer=%(peer)s: gunicorn sent its own error response "
    "to the request")

#: The message that ThreadWorker.handle_request of gunicorn 27.0.1 logs,
#: with a traceback, about an exception raised after the response headers
#: went out.
GUNICORN_RESPONSE_ERROR = "Error handling request"
#: The errno values of a write to a client that closed or reset its
#: connection. A write that the client does not take within the socket
#: timeout raises TimeoutError.
CLIENT_CLOSED_ERRNOS = frozenset((errno.EPIPE, errno.ECONNRESET,
                                  errno.ENOTCONN))
#: The log line of a response that the client stopped reading. The record
#: has the same fields as keys for logs.JsonFormatter. max_body_bytes_sent
#: counts the failed write too, which may have gone out in part.
CLIENT_GONE_FORMAT = (
    "request_id=%(request_id)s peer=%(peer)s error=%(error)s "
    "max_body_bytes_sent=%(max_body_bytes_sent)d: %(reason)s, so the "
    "response is incomplete; closing the connection")

#: The request id, peer address and gunicorn error of the request that
#: this thread sends an error response for in ThreadWorker.handle_error.
_rejected_request = threading.local()
#: The WSGI environ and gunicorn Response of the request that this thread
#: handles, set by record_exchange.
_exchange = threading.local()


class HeadWarningFilter(logging.Filter):
    """Drop gunicorn's warning about a request head it rejects, which can
    quote a credential. write_json_error logs the request instead."""

    def filter(self, record):
        return not (isinstance(record.msg, str) and record.msg.startswith(
            GUNICORN_HEAD_WARNING_PREFIX))


class LoggedErrorFilter(logging.Filter):
    """Drop gunicorn's traceback of an exception that the response body
    logged already with its request id (see LOGGED_ERROR_ATTRIBUTE)."""

    def filter(self, record):
        if record.msg != GUNICORN_RESPONSE_ERROR or not record.exc_info:
            return True
        return not getattr(record.exc_info[1], LOGGED_ERROR_ATTRIBUTE, False)


def is_client_gone(error):
    """Tell whether the OSError ``error``, raised by gunicorn's
    handle_request and not logged by the response body, comes from a write
    to a client that stopped reading or closed its connection."""
    return (isinstance(error, TimeoutError)
            or error.errno in CLIENT_CLOSED_ERRNOS)


def log_client_gone(error, peer, timeout):
    """Log one WARNING line about a response that the client did not take,
    with the request id and body bytes of the request that this thread
    handles (set by record_exchange)."""
    environ = getattr(_exchange, "environ", None) or {}
    response = getattr(_exchange, "response", None)
    if isinstance(error, TimeoutError):
        reason = ("writing the response to the client did not finish "
                  "within simplestack.client_timeout (%s s)" % timeout)
    else:
        reason = "the client closed or reset the connection"
    fields = {
        "request_id": environ.get("simplestack.request_id") or "-",
        "peer": peer or "-",
        "error": type(error).__name__,
        "max_body_bytes_sent": getattr(response, "sent", 0),
        "reason": reason,
    }
    response_logger.warning(CLIENT_GONE_FORMAT, fields, extra=fields)


def record_exchange(application):
    """Wrap the WSGI ``application`` so that the thread's _exchange contains
    the request's environ and gunicorn Response while it is handled."""
    def recorded_application(environ, start_response):
        _exchange.environ = environ
        # start_response is a bound method of gunicorn's Response.
        _exchange.response = getattr(start_response, "__self__", None)
        return application(environ, start_response)
    return recorded_application


#: The minimum bytes that gunicorn 27.0.1's Body.read requests from its
#: reader.
BODY_READ_MINIMUM = 1024


def read_small_exactly(read):
    """Return gunicorn's Body.read changed so that a read of fewer than
    BODY_READ_MINIMUM bytes, while Body has no bytes buffered, requests
    only that many from the reader."""
    def read_body(self, size=None):
        if isinstance(size, int) and 0 < size < BODY_READ_MINIMUM \
                and self.buf.tell() == 0:
            return self._read_reader(size)
        return read(self, size)

    read_body.reads_small_exactly = True
    return read_body


def missing_gunicorn_parts(worker_class):
    """Return the names of the methods of ``worker_class`` (gunicorn's
    ThreadWorker) that this worker needs and does not find.

    Besides the overridden methods, the worker's ``run`` loop must call
    ``set_accept_enabled`` on each turn, which re-enables accepting once a
    thread is free. A ``run`` whose code does not name it is reported.
    """
    missing = [name for name in OVERRIDDEN_METHODS
               if not callable(getattr(worker_class, name, None))]
    # What the head handling uses of gunicorn's connections and parsers.
    for owner, name in ((gthread.TConn, "init"),
                        (unreader.Unreader, "take_buffered"),
                        (unreader.Unreader, "unread"),
                        (wsgi.Response, "force_close"),
                        (wsgi.Response, "start_response")):
        if not callable(getattr(owner, name, None)):
            missing.append("%s.%s" % (owner.__name__, name))
    # The error page that write_json_error replaces.
    if "write_error" not in base.Worker.handle_error.__code__.co_names \
            or not callable(getattr(util, "write_error", None)):
        missing.append("util.write_error called by Worker.handle_error")
    # What read_small_exactly uses of gunicorn's request body.
    if not callable(getattr(body.Body, "_read_reader", None)) or \
            "buf" not in body.Body.read.__code__.co_names:
        missing.append("Body._read_reader and Body.buf")
    # The warning that HeadWarningFilter drops.
    if GUNICORN_HEAD_WARNING not in base.Worker.handle_error.__code__.co_consts:
        missing.append("the warning of Worker.handle_error")
    # The traceback that LoggedErrorFilter drops, and the reraise of
    # OSErrors that ThreadWorker.handle_request catches.
    handle_request = getattr(
        getattr(worker_class, "handle_request", None), "__code__", None)
    if handle_request is not None and (
            GUNICORN_RESPONSE_ERROR not in handle_request.co_consts
            or "reraise" not in handle_request.co_names):
        missing.append("the traceback and reraise of handle_request")
    # unread_body_left reads the count of body bytes left to receive, and
    # the chunk parser that a chunked body's reader drops at its end.
    if "length" not in body.LengthReader.read.__code__.co_names:
        missing.append("LengthReader.length")
    if "parser" not in body.ChunkedReader.read.__code__.co_names:
        missing.append("ChunkedReader.parser")
    run = getattr(worker_class, "run", None)
    if "set_accept_enabled" not in getattr(
            getattr(run, "__code__", None), "co_names", ()):
        missing.append("run calling set_accept_enabled")
    return missing


def head_complete(data, start=0):
    """Return whether ``data`` contains the end of a request head at or
    after ``start``.

    A bare LF ends a head here too, so that gunicorn's parser rejects
    such a head at once with 400.
    """
    return (data.find(b"\r\n\r\n", start) != -1
            or data.find(b"\n\n", start) != -1)


def unread_body_left(request_body):
    """Return whether the application left bytes of a request body unread.

    gunicorn's environ["wsgi.input"] reads a Content-Length body from a
    LengthReader that counts down the bytes not yet taken from the socket.
    A chunked body's ChunkedReader drops its chunk parser once it has read
    the last chunk and the trailer section.
    NOTE: a chunked body whose data the application read whole, but not
    its last chunk, still counts as unread, so its connection closes.
    """
    reader = getattr(request_body, "reader", None)
    if isinstance(reader, body.LengthReader):
        return reader.length > 0
    if isinstance(reader, body.ChunkedReader):
        return reader.parser is not None
    return False


def close_after_unread_body(application):
    """Wrap the WSGI ``application`` so that a response to a request
    whose body is left unread or incomplete closes the connection."""
    def close_if_body_unread(environ, start_response):
        def start(status, headers, exc_info=None):
            if environ.get(CLOSE_CONNECTION_KEY) or unread_body_left(
                    environ.get("wsgi.input")):
                # start_response is a bound method of gunicorn's Response.
                start_response.__self__.force_close()
            return start_response(status, headers, exc_info)
        return application(environ, start)
    return close_if_body_unread


def is_body_framing_error(error):
    """Tell whether gunicorn raised ``error`` because the request head
    does not frame the body (see BODY_FRAMING_HEADERS).

    The parser raises InvalidHeader with the same names and no request
    for a forbidden character in these fields' values, which is not
    a framing error.
    """
    return (isinstance(error, InvalidHeader)
            and getattr(error, "req", None) is not None
            and getattr(error, "hdr", None) in BODY_FRAMING_HEADERS)


def repeated_field_name(error):
    """Return the name of the header field, such as "Content-Type", that
    gunicorn raised ``error`` for because the head repeats it; None for
    any other error.

    gunicorn 27.0.1 raises InvalidHeader with the field's upper-case name
    and the request attached for a second field of a name in its
    RFC9110_5_3_SINGLETON_FIELDS (Host and Content-Type).
    """
    if not isinstance(error, InvalidHeader) or \
            getattr(error, "req", None) is None:
        return None
    name = getattr(error, "hdr", None)
    if name not in RFC9110_5_3_SINGLETON_FIELDS:
        return None
    return "-".join(part.capitalize() for part in name.split("-"))


def quote_request_text(text):
    """Return ``text`` from a request head as an ASCII string literal,
    cut to its first MAX_QUOTED_CHARACTERS characters (see
    errors.shorten_quoted)."""
    return ascii(shorten_quoted(text))


def http_version_text(version):
    """Return the HTTP version of an InvalidHTTPVersion as text. gunicorn
    gives the version's text from the request line, or (major, minor) for
    a well-formed version other than 1.x."""
    if isinstance(version, tuple):
        return "HTTP/%s" % ".".join(str(number) for number in version)
    return str(version)


def request_line_limit_message(error):
    if isinstance(error.size, int) and isinstance(error.max_size, int):
        return ("request line too long: it has %d bytes and the limit is %d; "
                "send a shorter path or query" % (error.size, error.max_size))
    return "request line too long: send a shorter path or query"


def rejected_head_message(cause):
    """Return the message of the JSON error that the worker sends for
    gunicorn's client error ``cause``.

    The message names the fault. It quotes neither a header value, which
    may be a credential, nor the request line, which can be 4094 bytes
    long. It quotes a bad method or HTTP version, escaped and cut by
    quote_request_text.
    """
    if is_body_framing_error(cause):
        return BODY_FRAMING_ERROR_MESSAGE
    repeated = repeated_field_name(cause)
    if repeated is not None:
        return REPEATED_FIELD_ERROR_MESSAGE % repeated
    if isinstance(cause, HEADER_TEXT_ERRORS):
        return HEADER_ERROR_MESSAGE
    if isinstance(cause, InvalidRequestMethod):
        return ("invalid request method %s: send a standard method in upper "
                "case, such as GET" % quote_request_text(str(cause.method)))
    if isinstance(cause, InvalidHTTPVersion):
        return ("invalid HTTP version %s in the request line: send HTTP/1.1 "
                "or HTTP/1.0" % quote_request_text(
                    http_version_text(cause.version)))
    if isinstance(cause, InvalidRequestLine):
        return REQUEST_LINE_ERROR_MESSAGE
    if isinstance(cause, LimitRequestLine):
        return request_line_limit_message(cause)
    if isinstance(cause, LimitRequestHeaders):
        return HEAD_LIMIT_ERROR_MESSAGE
    if isinstance(cause, ObsoleteFolding):
        return FOLDED_HEADER_ERROR_MESSAGE
    if isinstance(cause, ExpectationFailed):
        return EXPECT_ERROR_MESSAGE
    if isinstance(cause, UnsupportedTransferCoding):
        return TRANSFER_CODING_ERROR_MESSAGE
    return "the server cannot parse the request (gunicorn's %s)" % (
        type(cause).__name__)


def write_json_error(sock, status, reason, message):
    """Send gunicorn's response to a request it cannot parse, with the
    service's JSON error body in place of gunicorn's HTML page.

    Takes the arguments of gunicorn's util.write_error. Like that
    function, it sends "Connection: close" and does not block. It also
    sends a new X-Request-ID and logs one line with it, which names no
    header.
    """
    name = SERVER_ERROR_NAMES.get(
        status, "InternalError" if status >= 500 else "InvalidArguments")
    try:
        # gunicorn sends "501 Bad Request" for an unknown transfer coding.
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        pass
    request_id = getattr(_rejected_request, "request_id", None) or \
        random_request_id()
    cause = getattr(_rejected_request, "cause", None)
    # gunicorn sends no text for a failure of its own or of the
    # application, and text that quotes the request for a client error.
    if message and cause is not None:
        message = rejected_head_message(cause)
    else:
        message = SERVER_FAILURE_MESSAGE
    fields = {
        "request_id": request_id,
        "status": status,
        "error": name,
        "cause": type(cause).__name__ if cause is not None else "-",
        "peer": getattr(_rejected_request, "peer", None) or "-",
    }
    logger.warning(HEAD_ERROR_FORMAT, fields, extra=fields)
    payload = json.dumps({
        "error": name,
        "message": message,
    }).encode("utf-8")
    head = ("HTTP/1.1 %d %s\r\nConnection: close\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            "Content-Length: %d\r\n%s: %s\r\n\r\n"
            % (status, reason, len(payload), REQUEST_ID_HEADER, request_id))
    util.write_nonblock(sock, head.encode("latin-1") + payload)


def raise_unsupported(missing):
    raise RuntimeError(
        "simplestack.gunicorn_worker.ThreadWorker needs gunicorn's "
        "ThreadWorker of gunicorn 27.0.1 (setup.py pins it); gunicorn %s "
        "lacks: %s" % (gunicorn.__version__, ", ".join(missing)))


class ThreadWorker(gthread.ThreadWorker):
    """gthread worker that accepts a connection only while a thread of its
    pool has no work, and while it has fewer than worker_connections open.

    NOTE: a new connection that sends no whole head keeps a thread
    waiting for up to HEAD_THREAD_WAIT_SECONDS before the worker's poller
    takes it over, so `threads` such clients stop a worker from accepting
    for that long. The free-thread check runs only at accept time:
    a worker that serves each request before the next connection comes can
    take every connection of a keep-alive client such as wrk while the
    other worker is not scheduled, and keeps them as long as the client.
    """

    @classmethod
    def check_config(cls, cfg, log):
        # gunicorn's master calls this once at start, before any worker.
        missing = missing_gunicorn_parts(gthread.ThreadWorker)
        if missing:
            raise_unsupported(missing)
        super().check_config(cfg, log)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        missing = [name for name in READ_ATTRIBUTES
                   if not hasattr(self, name)]
        if missing:
            raise_unsupported(missing)
        # Socket -> [deadline, bytes read] of the connections that wait in
        # the poller for their client's end of stream.
        self.lingering_sockets = {}
        # Connection -> deadline of the connections whose request head the
        # poller waits for.
        self.head_waiting = {}

    def load_wsgi(self):
        # Runs in the worker process, after the fork.
        super().load_wsgi()
        self.wsgi = record_exchange(close_after_unread_body(self.wsgi))
        # Worker.handle_error looks the function up on gunicorn's util
        # module at each call, and nothing else in the worker calls it.
        util.write_error = write_json_error
        self.log.error_log.addFilter(HeadWarningFilter())
        self.log.error_log.addFilter(LoggedErrorFilter())
        if not getattr(body.Body.read, "reads_small_exactly", False):
            body.Body.read = read_small_exactly(body.Body.read)

    def handle_error(self, req, client, addr, exc):
        # Runs in a pool thread, and calls write_json_error in it.
        _rejected_request.request_id = random_request_id()
        _rejected_request.cause = exc
        _rejected_request.peer = addr[0] if addr else None
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            _rejected_request.__dict__.clear()

    def handle_request(self, req, conn):
        # Runs in a pool thread. gunicorn's handle would log the OSErrors
        # that this raises, and close the connection as False does.
        try:
            return super().handle_request(req, conn)
        except OSError as error:
            if getattr(error, LOGGED_ERROR_ATTRIBUTE, False):
                # The response body logged it with the request id.
                return False
            if not is_client_gone(error):
                raise
            peer = conn.client[0] if isinstance(conn.client, tuple) else None
            log_client_gone(error, peer, conn.sock.gettimeout())
            return False
        finally:
            _exchange.__dict__.clear()

    def busy_connections(self):
        """Return the number of connections handed to the thread pool: in
        a thread, queued for one, or done there and not yet taken back by
        the main loop."""
        return (self.nr_conns - len(self.keepalived_conns)
                - len(self.pending_conns) - len(self.head_waiting))

    def can_take_connection(self):
        """Return whether a new connection would get a thread at once."""
        return (self.busy_connections() < self.cfg.threads
                and self.nr_conns < self.worker_connections)

    def set_accept_enabled(self, enabled):
        # gunicorn's run loop calls this with True on each turn while
        # fewer than worker_connections are open and the listeners are off.
        super().set_accept_enabled(enabled and self.can_take_connection())

    def accept(self, listener):
        # A listener event can come in the same poll as a kept-alive
        # connection that took the last free thread, so check again.
        if self.can_take_connection():
            super().accept(listener)
        if not self.can_take_connection():
            super().set_accept_enabled(False)

    def handle(self, conn):
        # Runs in a pool thread.
        # NOTE: TLS and HTTP/2 prior-knowledge connections read their first
        # bytes in gunicorn's conn.init, so they keep gunicorn's waits.
        if self.cfg.is_ssl or conn.is_http2 or (
                not conn.initialized and negotiation.prior_knowledge_allowed(
                    self.cfg, conn.client)):
            return super().handle(conn)
        state = self.read_head(conn, HEAD_THREAD_WAIT_SECONDS)
        if state is not True:
            return state
        self.hand_head_to_parser(conn)
        return super().handle(conn)

    def read_head(self, conn, wait):
        """Read the request head of ``conn`` for up to ``wait`` seconds.

        Returns True when the head is complete, when the client closed or
        failed, or when the head is larger than gunicorn accepts: the
        parser then ends the request. Returns HEAD_INCOMPLETE while the
        connection's head deadline has not passed, else False.
        """
        if not hasattr(conn, "head_bytes"):
            conn.head_bytes = bytearray()
            if conn.parser is not None:
                # Bytes of the next request read with the previous one.
                conn.head_bytes += conn.parser.unreader.take_buffered()
            conn.head_deadline = time.monotonic() + self.cfg.keepalive
        head = conn.head_bytes
        wait_until = min(time.monotonic() + wait, conn.head_deadline)
        conn.sock.setblocking(False)
        complete = head_complete(head)
        while not complete and len(head) <= self.max_head_bytes:
            try:
                data = conn.sock.recv(HEAD_READ_BYTES)
            except BlockingIOError:
                remaining = wait_until - time.monotonic()
                if remaining <= 0:
                    return (HEAD_INCOMPLETE
                            if time.monotonic() < conn.head_deadline
                            else False)
                with selectors.DefaultSelector() as selector:
                    selector.register(conn.sock, selectors.EVENT_READ)
                    selector.select(remaining)
                continue
            except OSError:
                return True
            if not data:
                return True
            # Only the new bytes and the three before them can end the head.
            start = max(len(head) - 3, 0)
            head += data
            complete = head_complete(head, start)
        return True

    @property
    def max_head_bytes(self):
        """The maximum size of a request head that gunicorn's parser
        reads: its limits on the request line and on the header fields.

        NOTE: with gunicorn's default limits this is about 800 KiB, which
        the worker holds for each connection whose head it waits for. So
        worker_connections such clients can take about 800 MiB per worker.
        """
        fields = self.cfg.limit_request_fields or 100
        field_size = self.cfg.limit_request_field_size or 8190
        line = self.cfg.limit_request_line or 1024 * 1024
        return line + fields * (field_size + 2) + 4

    def hand_head_to_parser(self, conn):
        head = bytes(conn.head_bytes)
        del conn.head_bytes
        del conn.head_deadline
        # gunicorn's handle skips its wait for a first byte, and its
        # parser reads these bytes before any from the socket.
        conn.data_ready = True
        conn.sock.setblocking(True)
        conn.init()
        if head:
            conn.parser.unreader.unread(head)

    def finish_request(self, conn, fs):
        # Runs in the main loop. gunicorn's own close of a finished
        # connection waits there for the client (util.close_graceful).
        # NOTE: TLS connections (certfile set) still close that way.
        result = None
        if not fs.cancelled() and fs.exception() is None:
            result = fs.result()
        if result is HEAD_INCOMPLETE:
            self.wait_for_head(conn)
            return
        if self.cfg.is_ssl or result is None or result:
            super().finish_request(conn, fs)
            return
        self.nr_conns -= 1
        self.close_after_linger(conn.sock)

    def wait_for_head(self, conn):
        """Wait in the poller for the rest of the head of ``conn``."""
        if not self.alive:
            self.nr_conns -= 1
            util.close(conn.sock)
            return
        self.head_waiting[conn] = conn.head_deadline
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self.read_waiting_head, conn))

    def read_waiting_head(self, conn, _fileobj):
        state = self.read_head(conn, 0)
        if state is HEAD_INCOMPLETE:
            return
        del self.head_waiting[conn]
        self.poller.unregister(conn.sock)
        if state:
            self.enqueue_req(conn)
        else:
            self.nr_conns -= 1
            util.close(conn.sock)

    def close_after_linger(self, sock):
        """Send the end of stream on ``sock`` and close it once the client
        has closed its side, or after LINGER_SECONDS, without blocking.

        A socket that the request's thread already closed (gunicorn does
        so when a response fails after its headers) is left as it is.
        """
        if sock.fileno() == -1:
            return
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            util.close(sock)
            return
        self.lingering_sockets[sock] = [time.monotonic() + LINGER_SECONDS, 0]
        self.poller.register(sock, selectors.EVENT_READ,
                             partial(self.read_lingering, sock))

    def read_lingering(self, sock, _fileobj):
        state = self.lingering_sockets[sock]
        while state[1] < LINGER_MAX_BYTES:
            try:
                data = sock.recv(LINGER_READ_BYTES)
            except BlockingIOError:
                return
            except OSError:
                break
            if not data:
                break
            state[1] += len(data)
        self.close_lingering(sock)

    def close_lingering(self, sock):
        del self.lingering_sockets[sock]
        try:
            self.poller.unregister(sock)
        except (KeyError, ValueError):
            pass
        util.close(sock)

    def murder_keepalived(self, force=False):
        # gunicorn's loop calls this on every turn and, with force=True,
        # once before the worker exits.
        super().murder_keepalived(force)
        now = time.monotonic()
        expired = [sock for sock, (deadline, _)
                   in self.lingering_sockets.items()
                   if force or deadline <= now]
        for sock in expired:
            self.close_lingering(sock)
        # A stopping worker closes them at once: none has sent a request.
        expired = [conn for conn, deadline in self.head_waiting.items()
                   if force or not self.alive or deadline <= now]
        for conn in expired:
            del self.head_waiting[conn]
            self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            util.close(conn.sock)
