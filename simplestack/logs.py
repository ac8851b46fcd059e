"""Log formatting: one JSON object per line, for log collectors.

Selected in an INI file's logging sections::

    [formatter_json]
    class = simplestack.logs.JsonFormatter

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and
``message``, then the fields that the caller passed as ``extra``, and
``exception`` with the traceback when there is one. The request summary
passes ``request_id``, ``method``, ``path``, ``hypervisor``, ``status``,
``duration_ms`` and ``hypervisor_calls``. A record logged while a request
is handled gets that request's ``request_id`` too.

:class:`BufferedStreamHandler` writes the lines of concurrent requests to
its stream in batches (``production.ini``'s ``[handler_console]``).
"""

import datetime
import json
import logging
import math
import os
import select
import threading
import time
import weakref

from pyramid.threadlocal import get_current_request

# Characters that json.dumps leaves unescaped but that str.splitlines() and
# other line readers take as line breaks. They can only occur inside JSON
# strings, where their escapes stand for the same text.
LINE_BREAK_ESCAPES = {0x85: "\\u0085", 0x2028: "\\u2028",
                      0x2029: "\\u2029"}

# One encoder for every record: json.dumps with these options builds a new
# JSONEncoder on each call. default=str: an extra field of another type
# still gives valid JSON.
ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)

# The attributes that every LogRecord has; any other attribute came from
# the ``extra`` argument of the logging call.
STANDARD_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
        "message", "asctime"}


# The request id of the response body that this thread sends after its
# request has ended, such as an image export (set_stream_request_id).
_stream_request = threading.local()


def current_request_id():
    """Return the id of the request that this thread handles, or None."""
    request = get_current_request()
    if request is None:
        return getattr(_stream_request, "request_id", None)
    return request.environ.get("simplestack.request_id")


def set_stream_request_id(request_id):
    """Make ``request_id`` the id that current_request_id returns in this
    thread while no request is current; return the id it replaces."""
    previous = getattr(_stream_request, "request_id", None)
    _stream_request.request_id = request_id
    return previous


# The last whole second that utc_time_text formatted, and its text up to
# the seconds. One tuple, so that threads read a consistent pair.
_last_second = (None, "")


def utc_time_text(timestamp):
    """Return ``timestamp`` (seconds since the epoch) as
    ``datetime.fromtimestamp(timestamp, timezone.utc).isoformat(
    timespec="milliseconds")`` does.

    The date and time of day are formatted once per second. The
    microseconds are rounded half to even as CPython 3.11's datetime
    rounds them, and then cut to milliseconds as isoformat cuts them.
    That took 0.5 us against 1.5 us for datetime (timeit).
    """
    global _last_second
    fraction, whole = math.modf(timestamp)
    microseconds = round(fraction * 1e6)
    if microseconds >= 1000000:
        microseconds -= 1000000
        whole += 1
    elif microseconds < 0:
        microseconds += 1000000
        whole -= 1
    second, text = _last_second
    if second != whole:
        text = datetime.datetime.fromtimestamp(
            whole, datetime.timezone.utc).isoformat(timespec="seconds")[:-6]
        _last_second = (whole, text)
    return "%s.%03d+00:00" % (text, microseconds // 1000)


class JsonFormatter(logging.Formatter):
    """Format a log record as one line of JSON."""

    def format(self, record):
        return self.format_entry(record, record.getMessage(),
                                 current_request_id())

    def format_entry(self, record, message, request_id):
        """Format ``record`` with its message text and request id given,
        which BufferedStreamHandler reads when the record is logged."""
        entry = {
            "time": utc_time_text(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in STANDARD_RECORD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # The encoder escapes newlines and the translation escapes the other
        # line breaks, so a record stays one line. Those line breaks are
        # outside ASCII, and most lines are ASCII only.
        line = ENCODER.encode(entry)
        if line.isascii():
            return line
        return line.translate(LINE_BREAK_ESCAPES)


#: Characters of buffered lines past which BufferedStreamHandler writes at
#: once, whatever its flush interval.
MAX_BUFFERED_CHARACTERS = 65536
#: The maximum bytes of one write of held lines. POSIX makes a write of
#: at most PIPE_BUF bytes to a pipe atomic, so gunicorn's workers and
#: master, which share one stderr pipe, do not interleave such lines.
MAX_WRITE_BYTES = select.PIPE_BUF
#: The characters that a record held unformatted counts for. A request
#: summary line has about 300.
ESTIMATED_LINE_CHARACTERS = 300

# Tokens of the requests whose tween is running in this process. The
# request tween adds and removes them, and set.add, set.discard and len()
# need no lock under the GIL.
_active_requests = set()

# Every BufferedStreamHandler, for the reset after a fork, and those that
# hold lines now.
_buffered_handlers = weakref.WeakSet()
_holding_handlers = set()


def request_started():
    """Count a request as in progress, and return the token that ends it."""
    token = object()
    _active_requests.add(token)
    return token


def request_finished(token):
    """Count the request of ``token`` as finished. When it was the last one
    in progress, write every line that BufferedStreamHandlers hold."""
    _active_requests.discard(token)
    if not _active_requests and _holding_handlers:
        for handler in list(_holding_handlers):
            handler.flush()


class BufferedStreamHandler(logging.StreamHandler):
    """A StreamHandler that collects the lines logged while other requests
    are in progress, and writes them in batches.

    In a process whose threads serve requests at once (gunicorn's gthread
    worker), every write to the stream is a system call that releases the
    GIL, so another thread takes it and the writing thread waits to get it
    back. A batch pays for that once per MAX_WRITE_BYTES bytes.

    A record is written at once, with any lines held before it, when at
    most one request is in progress, when its level is WARNING or higher,
    or when the held lines reach MAX_BUFFERED_CHARACTERS. Otherwise a
    background thread writes it about ``flush_interval`` seconds later,
    unless the last request in progress ends first and writes it.
    ``flush()``, ``close()`` and logging.shutdown(), which runs at a normal
    interpreter exit, write the held lines too. A process that is killed
    (SIGKILL) or crashes loses the lines of its last ``flush_interval``
    seconds. ``flush_interval = 0`` writes every record at once, as
    StreamHandler does.
    """

    def __init__(self, stream=None, flush_interval=0.05):
        # The value is checked before StreamHandler.__init__ registers the
        # handler for logging's shutdown, where a half-built one would fail.
        try:
            seconds = float(flush_interval)
        except (TypeError, ValueError):
            seconds = None
        if seconds is None or not 0 <= seconds < 1:
            raise ValueError(
                "BufferedStreamHandler: invalid flush_interval %r: expected "
                "a number of seconds, at least 0 and less than 1"
                % (flush_interval,))
        super().__init__(stream)
        self.flush_interval = seconds
        self._closed = False
        self._reset_buffer()
        _buffered_handlers.add(self)

    def _reset_buffer(self):
        self._lines = []
        self._characters = 0
        self._pending = threading.Event()
        self._flusher = None

    def emit(self, record):
        try:
            item = self._prepare(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        self._lines.append(item)
        if self._may_hold(record):
            # With more than one line held, the background writer is
            # already awake.
            if len(self._lines) > 1 or self._wake_flusher():
                _holding_handlers.add(self)
                return
        try:
            self._write_lines()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _prepare(self, record):
        """Return the line of ``record``, or what formats it later.

        A JsonFormatter record that may be held keeps its message text and
        request id of now, and is formatted when its batch is written. Its
        ``extra`` fields are read then too. In bench/request_cpu.py's
        setting, formatting a request summary line took about 25 us of CPU
        time per request, and about 5 us in batches of 50.
        """
        if (self._may_hold(record) and not record.exc_info
                and not record.stack_info
                and hasattr(self.formatter, "format_entry")):
            self._characters += ESTIMATED_LINE_CHARACTERS
            return (record, record.getMessage(), current_request_id())
        line = self.format(record) + self.terminator
        self._characters += len(line)
        return line

    def _may_hold(self, record):
        return (self.flush_interval and len(_active_requests) > 1
                and record.levelno < logging.WARNING
                and self._characters < MAX_BUFFERED_CHARACTERS
                and not self._closed)

    def _wake_flusher(self):
        """Wake the background writer, starting it in this process first;
        return False when no thread can start."""
        if self._flusher is None:
            flusher = threading.Thread(
                target=_run_flusher,
                args=(weakref.ref(self), self._pending),
                name="simplestack-log-flusher", daemon=True)
            try:
                flusher.start()
            except RuntimeError:  # at interpreter shutdown
                return False
            self._flusher = flusher
        self._pending.set()
        return True

    def _write_lines(self):
        """Write the held lines and flush the stream; the caller holds the
        handler's lock."""
        _holding_handlers.discard(self)
        if not self._lines:
            return
        items, self._lines = self._lines, []
        self._characters = 0
        lines = []
        for item in items:
            if isinstance(item, str):
                lines.append(item)
            else:
                lines.append(self._format_held(*item))
        for text in _atomic_writes(lines):
            self.stream.write(text)
            self.stream.flush()

    def _format_held(self, record, message, request_id):
        try:
            return self.formatter.format_entry(
                record, message, request_id) + self.terminator
        except RecursionError:
            raise
        except Exception:
            # As StreamHandler does with a record it cannot format: report
            # it on stderr and go on without it.
            self.handleError(record)
            return ""

    def flush(self):
        """Write the held lines, and flush the stream."""
        with self.lock:
            if not self._lines:
                super().flush()
                return
            lines = len(self._lines)
            try:
                self._write_lines()
            except Exception:
                self.handleError(logging.makeLogRecord({
                    "msg": "writing %d buffered log lines failed",
                    "args": (lines,)}))

    def close(self):
        self._closed = True
        self._pending.set()
        self.flush()
        super().close()


def _atomic_writes(lines):
    """Join ``lines`` into texts of at most MAX_WRITE_BYTES bytes each.

    Only ASCII lines are joined, because their length in characters is
    their length in bytes in any ASCII-compatible encoding. Every other
    line, and an ASCII line longer than MAX_WRITE_BYTES, is a text of its
    own, as StreamHandler would write it.
    """
    texts = []
    pending = []
    pending_bytes = 0
    for line in lines:
        if not line.isascii() or len(line) > MAX_WRITE_BYTES:
            if pending:
                texts.append("".join(pending))
                pending, pending_bytes = [], 0
            texts.append(line)
            continue
        if pending_bytes + len(line) > MAX_WRITE_BYTES:
            texts.append("".join(pending))
            pending, pending_bytes = [], 0
        pending.append(line)
        pending_bytes += len(line)
    if pending:
        texts.append("".join(pending))
    return texts


def _run_flusher(handler_ref, pending):
    """Write a handler's lines about flush_interval seconds after the first
    one was held, until the handler is closed or garbage collected."""
    while True:
        pending.wait()
        handler = handler_ref()
        if handler is None or handler._closed:
            return
        interval = handler.flush_interval
        del handler
        time.sleep(interval)
        # Cleared before the write: a line held after it wakes the next
        # round.
        pending.clear()
        handler = handler_ref()
        if handler is None:
            return
        handler.flush()
        del handler


def _reset_after_fork():
    """Drop what a forked child inherited: the parent writes its own held
    lines, and its background writer does not exist in the child."""
    _active_requests.clear()
    _holding_handlers.clear()
    for handler in list(_buffered_handlers):
        handler._reset_buffer()


os.register_at_fork(after_in_child=_reset_after_fork)
