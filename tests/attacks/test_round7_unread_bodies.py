"""Chunked request bodies that the application leaves unread, against
production.ini's gunicorn and its worker class.

The worker closed the connection after an error that left a body of known
length (Content-Length) unread, but left a chunked body to gunicorn.
gunicorn sent "Connection: keep-alive", then read up to 64 KiB of the
rest in the request's thread for up to 5 s and closed the connection when
more was left. So a client that stopped sending held a thread for 5 s,
and a client with a larger body found its kept-alive connection closed.
"""

import json
import socket
import time

import pytest

from tests.attacks.stack import small_production_server
from tests.conftest import make_token

TOKEN_HEADER = "x-simplestack-hypervisor-token"
#: Seconds that the tests wait for the server to close its side.
CLOSE_WAIT = 8
#: One chunk of 64 KiB in chunked transfer coding.
CHUNK = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round7-unread-bodies")
    with small_production_server(folder) as running:
        yield running


def exchange(server, data):
    """Send ``data`` on a new connection. Return (bytes received, seconds
    until the server closed its side or None when it kept the connection
    open for CLOSE_WAIT seconds)."""
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(data)
        sock.settimeout(CLOSE_WAIT)
        started = time.monotonic()
        received = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return received, time.monotonic() - started
                received += data
        except TimeoutError:
            return received, None


def chunked_post(path, chunks, token=None, request_id=None):
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n" % path)
    if token is not None:
        head += "%s: %s\r\n" % (TOKEN_HEADER, token)
    if request_id is not None:
        head += "X-Request-ID: %s\r\n" % request_id
    return (head + "\r\n").encode("ascii") + chunks


@pytest.mark.parametrize("path, token, chunks, status, error", [
    # The client stops after one chunk, without the last chunk.
    ("/nosuch/default/guests", None, b"5\r\nhello\r\n", 404,
     "EntityNotFound"),
    ("/test/default/guests", None, b"5\r\nhello\r\n", 401, "Unauthorized"),
    # 1 MiB sent whole: more than gunicorn's drain of 64 KiB.
    ("/nosuch/default/guests", None, CHUNK * 16 + b"0\r\n\r\n", 404,
     "EntityNotFound"),
])
def test_unread_chunked_body_closes(server, path, token, chunks, status,
                                    error):
    received, closed_after = exchange(
        server, chunked_post(path, chunks, token))

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert json.loads(body)["error"] == error
    assert b"\r\nConnection: close\r\n" in head + b"\r\n", head
    # gunicorn's drain waited up to 5 s in the request's thread.
    assert closed_after is not None and closed_after < 2, closed_after


def test_read_chunked_body_keeps_connection(server):
    # The body is read to its last chunk before the 400, so the request
    # behind it on the connection is served.
    body = b'{"name": 5}'
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    pipelined = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    received, closed_after = exchange(server, chunked_post(
        "/test/default/guests", chunks, make_token("user", "pass"))
        + pipelined)

    assert closed_after is None, received
    first, second = received.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"400 "), first
    assert b"\r\nConnection: keep-alive\r\n" in first
    assert second.startswith(b"200 "), second
    assert second.endswith(b'{"status": "ok"}'), second
