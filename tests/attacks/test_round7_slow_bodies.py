"""JSON bodies sent slowly, against production.ini's gunicorn.

simplestack.client_timeout was the timeout of each socket read, so a
client that sent one byte of its body before each timeout ended kept its
thread without end. The whole body must now arrive within that time.
"""

import json
import socket
import threading
import time

import pytest

from tests.attacks.stack import read_until_close, small_production_server
from tests.conftest import make_token

CLIENT_TIMEOUT = 2
#: Seconds between the body bytes of a slow client, within CLIENT_TIMEOUT.
BYTE_INTERVAL = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round7-slow-bodies")
    with small_production_server(folder, {
            "simplestack.client_timeout": str(CLIENT_TIMEOUT)}) as running:
        yield running


def send_slowly(server, method, path, body):
    """Send the head, then ``body`` one byte every BYTE_INTERVAL seconds
    until the server responds. Return (response bytes, seconds from the
    head to the end of the response)."""
    head = (b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n"
            b"x-simplestack-hypervisor-token: %s\r\n\r\n"
            % (method.encode("ascii"), path.encode("ascii"), len(body),
               make_token("user", "pass").encode("ascii")))
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(head)
        started = time.monotonic()
        stop = threading.Event()

        def trickle():
            for byte in body:
                if stop.wait(BYTE_INTERVAL):
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    return

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            received = read_until_close(sock, timeout=30)
        finally:
            stop.set()
            sender.join()
        return received, time.monotonic() - started


@pytest.mark.parametrize("method, path", [
    ("POST", "/test/default/guests/test/tags"),
    # The create view peeks at the body to tell an image from JSON first.
    ("POST", "/test/default/guests"),
    ("PUT", "/test/default/guests/test"),
])
def test_slow_json_body_times_out(server, method, path):
    # 60 bytes at 2 per second would take 30 s.
    body = b'{"name": "' + b"s" * 48 + b'"}'

    received, seconds = send_slowly(server, method, path, body)

    head, _, answer = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), received[:300]
    assert b"\r\nConnection: close\r\n" in head + b"\r\n", head
    assert json.loads(answer)["error"] == "RequestTimeout"
    assert CLIENT_TIMEOUT - 0.5 <= seconds < CLIENT_TIMEOUT + 3, seconds


def test_fast_json_body_still_read(server):
    body = b'{"name": "quick-tag"}'
    head = (b"POST /test/default/guests/test/tags HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nx-simplestack-hypervisor-token: %s\r\n"
            b"Connection: close\r\n\r\n"
            % (len(body), make_token("user", "pass").encode("ascii")))
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(head + body)
        received = read_until_close(sock)

    assert received.startswith(b"HTTP/1.1 201 "), received[:300]


@pytest.mark.parametrize("sent", [262, 600, 1023])
def test_large_json_prefix_gets_413(server, sent):
    # A body over max_json_body_bytes (1 MiB) whose first bytes the create
    # view reads to tell an image from JSON. The client sends part of it
    # and waits for the response, as a client that expects a rejection
    # does. gunicorn's body reader waited for 1 KiB, so such a client got
    # 408 after client_timeout.
    request_head = (
        b"POST /test/default/guests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n"
        b"x-simplestack-hypervisor-token: %s\r\n\r\n"
        % (2 * 1024 * 1024, make_token("user", "pass").encode("ascii")))
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        started = time.monotonic()
        sock.sendall(request_head + b"{" + b" " * (sent - 1))
        received = read_until_close(sock, timeout=CLIENT_TIMEOUT + 3)
        seconds = time.monotonic() - started

    head, _, answer = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 "), received[:300]
    assert b"\r\nConnection: close\r\n" in head + b"\r\n", head
    assert json.loads(answer)["error"] == "RequestTooLarge"
    assert seconds < CLIENT_TIMEOUT / 2, seconds
