"""The messages of the errors that production.ini's gunicorn sends for a
request head it cannot parse.

The worker passed gunicorn's message text on, and that text quotes the
rejected part of the head. The part can be a bad method, a bad HTTP
version, a malformed request line of up to 4094 bytes, or the value of an
Expect or Transfer-Encoding header field. The messages now name the fault and quote at most a short,
escaped prefix of a method or version, and no header value.
"""

import json
import socket

import pytest

from simplestack.errors import MAX_QUOTED_CHARACTERS
from tests.attacks.stack import canary_token, leaks_canary, read_until_close
from tests.attacks.test_round7_server_errors import (
    HOST, NEW_REQUEST_ID, log_entry_of)
# production.ini's gunicorn with one worker.
from tests.attacks.test_round7_unread_bodies import server  # noqa: F401

#: Bytes of the filler in the long parts of a request line: long enough
#: to show a quote that is not cut, short enough to stay under gunicorn's
#: 4094-byte limit of the request line.
FILLER_LENGTH = 4000
#: The maximum message length that the checks accept: a quote of
#: MAX_QUOTED_CHARACTERS escaped characters and a sentence around it.
MAX_MESSAGE_LENGTH = 4 * MAX_QUOTED_CHARACTERS + 300


def rejected(server, data):
    """Send ``data``, a request that gets gunicorn's error response; return
    (status line, JSON error, log entry)."""
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(data)
        head, _, body = read_until_close(sock).partition(b"\r\n\r\n")
    request_id = NEW_REQUEST_ID.search(head).group(1).decode("ascii")
    return (head.split(b"\r\n", 1)[0], json.loads(body),
            log_entry_of(server, request_id))


def assert_short(error, entry, filler):
    """Assert that the message and the log entry quote no more than
    MAX_QUOTED_CHARACTERS characters of ``filler`` in a row."""
    run = filler * (MAX_QUOTED_CHARACTERS + 1)
    assert len(error["message"]) <= MAX_MESSAGE_LENGTH
    assert run not in error["message"]
    assert entry is not None
    assert run not in json.dumps(entry)


#: (case, request bytes, status, error name, filler of the long part,
#: words the message must contain).
LINE_CASES = [
    ("long-method", b"G" * FILLER_LENGTH + b"# /healthz HTTP/1.1\r\n",
     400, "InvalidArguments", "G", ["method", "G" * 16]),
    ("long-version", b"GET /healthz HTTP/" + b"9" * FILLER_LENGTH
     + b"\r\n", 400, "InvalidArguments", "9", ["HTTP version"]),
    ("long-target", b"GET /\x01" + b"a" * FILLER_LENGTH + b" HTTP/1.1\r\n",
     400, "InvalidArguments", "a", ["request line"]),
    ("target-spaces", b"GET /a b " + b"a" * FILLER_LENGTH + b" HTTP/1.1\r\n",
     400, "InvalidArguments", "a", ["request line"]),
    ("over-limit", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n", 414,
     "RequestTooLarge", "a", ["request line", "4094"]),
]


@pytest.mark.parametrize("case, line, status, name, filler, words",
                         LINE_CASES, ids=[case[0] for case in LINE_CASES])
def test_request_line_error_is_short(server, case, line, status, name,
                                     filler, words):
    status_line, error, entry = rejected(server, line + HOST + b"\r\n")

    assert status_line.startswith(b"HTTP/1.1 %d " % status), status_line
    assert error["error"] == name
    assert_short(error, entry, filler)
    for word in words:
        assert word in error["message"]


def test_short_method_is_quoted(server):
    status_line, error, _entry = rejected(
        server, b"get /healthz HTTP/1.1\r\n" + HOST + b"\r\n")

    assert status_line.startswith(b"HTTP/1.1 400 "), status_line
    assert "'get'" in error["message"]


def test_method_quote_is_escaped(server):
    status_line, error, _entry = rejected(
        server, b"G\xffT /healthz HTTP/1.1\r\n" + HOST + b"\r\n")

    assert status_line.startswith(b"HTTP/1.1 400 "), status_line
    assert "'G\\xffT'" in error["message"]


@pytest.mark.parametrize("field, status, name", [
    (b"Expect", 417, "InvalidArguments"),
    (b"Transfer-Encoding", 501, "FeatureNotImplemented"),
])
def test_header_value_not_quoted(server, field, status, name):
    token = canary_token("root").encode("ascii")
    data = (b"POST /test/default/guests HTTP/1.1\r\n" + HOST + field + b": "
            + token + b"\r\n\r\n")

    status_line, error, entry = rejected(server, data)

    assert status_line.startswith(b"HTTP/1.1 %d " % status), status_line
    assert error["error"] == name
    assert field.decode("ascii") in error["message"]
    assert not leaks_canary(error["message"])
    assert not leaks_canary(server.read_log())
    assert entry is not None


# -- header fields that must come once ------------------------------------------

# gunicorn rejects a second Host or Content-Type field. The message was the
# one about the form of header fields; it now names the repeated field,
# never its value.

@pytest.mark.parametrize("field, name", [
    (b"Host", "Host"),
    (b"host", "Host"),
    (b"Content-Type", "Content-Type"),
    (b"content-TYPE", "Content-Type"),
])
def test_repeated_field_is_named(server, field, name):
    token = canary_token("root").encode("ascii")
    data = (b"POST /test/default/guests HTTP/1.1\r\n" + HOST
            + b"Content-Type: application/json\r\n" + field + b": " + token
            + b"\r\n" + b"Content-Length: 2\r\n\r\n{}")
    if name == "Host":
        data = data.replace(b"Content-Type: application/json\r\n", b"", 1)

    status_line, error, entry = rejected(server, data)

    assert status_line.startswith(b"HTTP/1.1 400 "), status_line
    assert error["error"] == "InvalidArguments"
    assert "header field %s" % name in error["message"]
    assert "more than once" in error["message"]
    assert not leaks_canary(error["message"])
    assert not leaks_canary(server.read_log())
    assert entry is not None
