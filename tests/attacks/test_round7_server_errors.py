"""Requests that gunicorn rejects before the application receives them,
against production.ini's gunicorn.

gunicorn responded to a request head it cannot parse with an HTML page
(Content-Type: text/html), and a client that miscounted a body got one
for the next request on its kept-alive connection. Every error body of
the service is JSON: {"error": name, "message": text}. These responses
also lacked the X-Request-ID of every other response, and gunicorn's log
line for them quoted the rejected header line, credentials included.
"""

import json
import re
import socket
import time

import pytest

from tests.attacks.stack import canary_token, leaks_canary, read_until_close
from tests.conftest import make_token
# production.ini's gunicorn with one worker.
from tests.attacks.test_round7_unread_bodies import server  # noqa: F401

HOST = b"Host: 127.0.0.1\r\n"
TOKEN = b"x-simplestack-hypervisor-token: %s\r\n" % make_token(
    "user", "pass").encode("ascii")

#: (case, request bytes, status, error name).
CASES = [
    ("header-name", b"GET /healthz HTTP/1.1\r\n" + HOST
     + b"Bad Header: 1\r\n\r\n", 400, "InvalidArguments"),
    ("method", b"G@T /healthz HTTP/1.1\r\n" + HOST + b"\r\n", 400,
     "InvalidArguments"),
    ("header-value-nul", b"GET /healthz HTTP/1.1\r\n" + HOST
     + b"X-Field: a\x00b\r\n\r\n", 400, "InvalidArguments"),
    ("header-value-cr", b"GET /healthz HTTP/1.1\r\n" + HOST
     + b"X-Field: a\rb\r\n\r\n", 400, "InvalidArguments"),
    ("request-line", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST
     + b"\r\n", 414, "RequestTooLarge"),
    ("header-count", b"GET /healthz HTTP/1.1\r\n" + HOST
     + b"".join(b"X-Field-%d: 1\r\n" % number for number in range(200))
     + b"\r\n", 431, "RequestTooLarge"),
    ("transfer-coding", b"POST /test/default/guests HTTP/1.1\r\n" + HOST
     + b"Transfer-Encoding: foo\r\n\r\n", 501, "FeatureNotImplemented"),
    # A body one byte longer than its Content-Length. The service reads the
    # body and keeps the connection, so gunicorn reads the extra byte as
    # the start of the next request.
    ("miscounted-body", b"POST /test/default/guests HTTP/1.1\r\n" + HOST
     + TOKEN + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
     + b"{}}GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n", 400,
     "InvalidArguments"),
]


def last_response(server, data):
    """Send ``data`` and return the last response received before the
    server closes the connection, as (head, body)."""
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(data)
        received = read_until_close(sock)
    last = b"HTTP/1.1 " + received.split(b"HTTP/1.1 ")[-1]
    head, _, body = last.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("case, data, status, error", CASES,
                         ids=[case[0] for case in CASES])
def test_rejected_head_gets_json_error(server, case, data, status, error):
    head, body = last_response(server, data)

    assert head.startswith(b"HTTP/1.1 %d " % status), head
    header_lines = head.split(b"\r\n")[1:]
    assert b"Content-Type: application/json; charset=utf-8" in header_lines, head
    assert b"Connection: close" in header_lines, head
    document = json.loads(body)
    assert document["error"] == error, document
    assert isinstance(document["message"], str) and document["message"]


#: A request id as the request id tween makes one: 32 hex digits.
NEW_REQUEST_ID = re.compile(rb"X-Request-ID: ([0-9a-f]{32})")
#: Seconds that a test waits for a log line to appear.
LOG_WAIT = 5

#: Heads whose one malformed line contains a hypervisor token: without a
#: colon, with a space in the name, and with a NUL byte in the value.
CANARY_HEADERS = [
    b"x-simplestack-hypervisor-token %s\r\n",
    b"x-simplestack-hypervisor token: %s\r\n",
    b"x-simplestack-hypervisor-token: %s\x00\r\n",
]


def log_entry_of(server, request_id):
    """Return the JSON log entry that names ``request_id``, waiting up to
    LOG_WAIT seconds for it; None when there is none."""
    deadline = time.monotonic() + LOG_WAIT
    while True:
        for entry in server.log_entries():
            if entry.get("request_id") == request_id:
                return entry
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


@pytest.mark.parametrize("case, data, status, error", CASES,
                         ids=[case[0] for case in CASES])
def test_rejected_head_has_request_id(server, case, data, status, error):
    head, _body = last_response(server, data)

    match = NEW_REQUEST_ID.search(head)
    assert match, head
    request_id = match.group(1).decode("ascii")
    entry = log_entry_of(server, request_id)
    assert entry is not None, server.read_log()[-2000:]
    assert entry["status"] == status
    assert entry["error"] == error


def test_rejected_heads_get_own_ids(server):
    data = CASES[0][1]

    first, _body = last_response(server, data)
    second, _body = last_response(server, data)

    assert NEW_REQUEST_ID.search(first).group(1) != \
        NEW_REQUEST_ID.search(second).group(1)


@pytest.mark.parametrize("line", CANARY_HEADERS)
def test_rejected_header_not_logged(server, line):
    token = canary_token("root").encode("ascii")
    data = (b"GET /healthz HTTP/1.1\r\n" + HOST + line % token + b"\r\n")

    head, body = last_response(server, data)

    assert head.startswith(b"HTTP/1.1 400 "), head
    assert not leaks_canary(body), body
    request_id = NEW_REQUEST_ID.search(head).group(1).decode("ascii")
    assert log_entry_of(server, request_id) is not None
    assert not leaks_canary(server.read_log())
