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
"""

import datetime
import json
import logging

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


class JsonFormatter(logging.Formatter):
    """Format a log record as one line of JSON."""

    def format(self, record):
        entry = {
            "time": datetime.datetime.fromtimestamp(
                record.created, datetime.timezone.utc).isoformat(
                    timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = get_current_request()
        if request is not None:
            request_id = request.environ.get("simplestack.request_id")
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
