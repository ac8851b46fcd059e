"""Requests that gunicorn rejects before the application receives them,
against production.ini's gunicorn.

gunicorn responded to a request head it cannot parse with an HTML page
(Content-Type: text/html), and a client that miscounted a body got one
for the next request on its kept-alive connection. Every error body of
the service is JSON: {"error": name, "message": text}.
"""

import json
import socket

import pytest

from tests.attacks.stack import read_until_close
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
