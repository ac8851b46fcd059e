"""Malformed chunked request bodies, and bodies that the client ends
early, against production.ini's gunicorn.

gunicorn raises its parse errors (InvalidChunkSize, ChunkMissingTerminator,
InvalidChunkExtension, InvalidHeader in a trailer) and NoMoreData from the
body reads of the application. They became 500 InternalError, with a
traceback logged at ERROR, for what is the client's broken request.
"""

import json
import socket

import pytest

from tests.attacks.stack import read_until_close
from tests.conftest import make_token
# production.ini's gunicorn with one worker.
from tests.attacks.test_round7_unread_bodies import (  # noqa: F401
    chunked_post, server)

#: Chunked bodies that gunicorn cannot parse, sent whole.
MALFORMED = [
    ("chunk-size", b"zz\r\nhello\r\n0\r\n\r\n"),
    ("chunk-terminator", b"5\r\nhelloXX0\r\n\r\n"),
    ("chunk-extension", b"5;\x01\r\nhello\r\n0\r\n\r\n"),
    ("trailer-field", b"5\r\nhello\r\n0\r\nBad Field: 1\r\n\r\n"),
]
#: Chunked bodies that end before their last chunk, then the client
#: closes its side.
CUT_SHORT = [
    ("inside-chunk", b"5\r\nhel"),
    ("before-last-chunk", b"5\r\nhello\r\n"),
    ("inside-trailer", b"5\r\nhello\r\n0\r\nX-Field: 1\r\n"),
]


def send_and_read(server, data, close_write):
    """Send ``data``, close the sending side when ``close_write``, and
    return every byte received until the server closes."""
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        return read_until_close(sock)


def check_rejected(server, received, request_id):
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), received[:300]
    assert b"\r\nConnection: close\r\n" in head + b"\r\n", head
    assert json.loads(body)["error"] == "InvalidArguments"
    log_lines = [line for line in server.read_log().splitlines()
                 if request_id in line]
    assert log_lines, "no log line has request id %s" % request_id
    for line in log_lines:
        assert "Traceback" not in line, line
        assert '"level": "ERROR"' not in line, line


@pytest.mark.parametrize("request_id, chunks", MALFORMED,
                         ids=[case[0] for case in MALFORMED])
def test_malformed_chunked_body_rejected(server, request_id, chunks):
    request_id = "round7-malformed-" + request_id
    data = chunked_post("/test/default/guests", chunks,
                        make_token("user", "pass"), request_id)

    received = send_and_read(server, data, close_write=False)

    check_rejected(server, received, request_id)


@pytest.mark.parametrize("request_id, chunks", CUT_SHORT,
                         ids=[case[0] for case in CUT_SHORT])
def test_cut_chunked_body_rejected(server, request_id, chunks):
    request_id = "round7-cut-" + request_id
    data = chunked_post("/test/default/guests", chunks,
                        make_token("user", "pass"), request_id)

    received = send_and_read(server, data, close_write=True)

    check_rejected(server, received, request_id)


#: Requests with a JSON body of known length: (case, method, path).
LENGTH_BODY_REQUESTS = [
    ("create-guest", "POST", "/test/default/guests"),
    ("update-guest", "PUT", "/test/default/guests/test"),
    ("add-tag", "POST", "/test/default/guests/test/tags"),
    ("power", "PUT", "/test/default/guests/test/power"),
]


@pytest.mark.parametrize("case, method, path", LENGTH_BODY_REQUESTS,
                         ids=[request[0] for request in LENGTH_BODY_REQUESTS])
def test_cut_length_body_rejected(server, case, method, path):
    # Content-Length 2000, 100 bytes of JSON, then the client closes its
    # side. webob raised DisconnectionError, which became a 500.
    request_id = "round7-cut-length-" + case
    data = (b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2000\r\n"
            b"x-simplestack-hypervisor-token: %s\r\nX-Request-ID: %s\r\n\r\n"
            % (method.encode("ascii"), path.encode("ascii"),
               make_token("user", "pass").encode("ascii"),
               request_id.encode("ascii"))
            + b'{"name": "' + b"a" * 88 + b'"}')

    received = send_and_read(server, data, close_write=True)

    check_rejected(server, received, request_id)
    assert b"request body" in received, received[-300:]
