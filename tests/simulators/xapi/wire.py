"""XML-RPC as XAPI writes it.

XAPI writes strings, refs, enums and int64 values as bare ``<value>text</value>``
(so an int64 reaches a client as a decimal string), booleans as ``<boolean>``,
floats as ``<double>`` and datetimes as ``<dateTime.iso8601>`` in the form
``20210628T11:25:34Z``. It never sends an XML-RPC ``<fault>``: every response is
a struct ``{Status, Value}`` or ``{Status, ErrorDescription}``.
"""

import datetime
import xmlrpc.client
from xml.sax.saxutils import escape


class Int32(int):
    """An int that XAPI sends as a 32-bit XML-RPC ``<i4>`` (event counts)."""


class Marshalled:
    """A value's XML-RPC text, which the writer copies as it is."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def format_datetime(value):
    return value.strftime("%Y%m%dT%H:%M:%SZ")


def _escape(text):
    # Most strings need no escaping, and escape() makes three passes.
    if "&" in text or "<" in text or ">" in text:
        return escape(text)
    return text


def _write(value, out):
    # The exact types come first, because records are mostly strings, dicts
    # and lists; subclasses (Int32) and rarer types go to _write_other.
    kind = type(value)
    if kind is str:
        out.append("<value>%s</value>" % _escape(value))
    elif kind is dict:
        _write_struct(value, out)
    elif kind is list:
        out.append("<value><array><data>")
        for item in value:
            if type(item) is str:
                out.append("<value>%s</value>" % _escape(item))
            else:
                _write(item, out)
        out.append("</data></array></value>")
    else:
        _write_other(value, out)


# Struct key -> its escaped "<member><name>" opening. Most keys are field
# names, but map keys can be anything, so the cache stops growing at
# _MAX_MEMBER_OPENINGS entries.
_member_openings = {}
_MAX_MEMBER_OPENINGS = 10000


def _member_opening(key):
    opening = _member_openings.get(key)
    if opening is None:
        opening = "<member><name>%s</name>" % _escape(key)
        if len(_member_openings) < _MAX_MEMBER_OPENINGS:
            _member_openings[key] = opening
    return opening


def _write_struct(value, out):
    append = out.append
    append("<value><struct>")
    for key, item in value.items():
        opening = _member_opening(key if type(key) is str else str(key))
        kind = type(item)
        if kind is str:
            append("%s<value>%s</value></member>" % (opening, _escape(item)))
        elif kind is bool:
            append("%s<value><boolean>%d</boolean></value></member>"
                   % (opening, item))
        elif kind is int:
            append("%s<value>%d</value></member>" % (opening, item))
        else:
            append(opening)
            _write(item, out)
            append("</member>")
    append("</struct></value>")


def _write_other(value, out):
    if type(value) is Marshalled:
        out.append(value.text)
    elif isinstance(value, bool):
        out.append("<value><boolean>%d</boolean></value>" % value)
    elif isinstance(value, Int32):
        out.append("<value><i4>%d</i4></value>" % value)
    elif isinstance(value, int):
        out.append("<value>%d</value>" % value)
    elif isinstance(value, float):
        out.append("<value><double>%r</double></value>" % value)
    elif isinstance(value, str):
        out.append("<value>%s</value>" % escape(value))
    elif isinstance(value, datetime.datetime):
        out.append("<value><dateTime.iso8601>%s</dateTime.iso8601></value>"
                   % format_datetime(value))
    elif isinstance(value, dict):
        _write_struct(value, out)
    elif isinstance(value, (list, tuple)):
        out.append("<value><array><data>")
        for item in value:
            _write(item, out)
        out.append("</data></array></value>")
    elif value is None:
        out.append("<value></value>")
    else:
        raise TypeError("cannot marshal %r" % (value,))


def value_fragment(value):
    """Marshal one value, in the form a task's ``result`` field stores."""
    out = []
    _write(value, out)
    return "".join(out)


def _response(struct):
    out = ["<?xml version='1.0'?>\n<methodResponse><params><param>"]
    _write(struct, out)
    out.append("</param></params></methodResponse>\n")
    return "".join(out).encode("utf-8")


def success(value):
    # void results are the empty string.
    return _response({"Status": "Success",
                      "Value": "" if value is None else value})


def failure(description):
    return _response({"Status": "Failure", "ErrorDescription": description})


def parse_call(body):
    """Parse a methodCall; raise ValueError for a body that is not one."""
    try:
        params, method = xmlrpc.client.loads(body, use_builtin_types=False)
    except Exception as error:  # expat, a bad value type, a truncated body
        raise ValueError("malformed XML-RPC request: %s" % error) from error
    if not method:
        raise ValueError("malformed XML-RPC request: no methodName")
    return method, list(params)


def parse_value(fragment):
    """Parse a ``<value>...</value>`` fragment, as in a task result."""
    params, _ = xmlrpc.client.loads(
        "<methodResponse><params><param>%s</param></params></methodResponse>"
        % fragment)
    return params[0]
