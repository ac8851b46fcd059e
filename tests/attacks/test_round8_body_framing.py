"""Request heads whose Content-Length or Transfer-Encoding do not frame the
body, against production.ini's gunicorn.

gunicorn rejects them with 400. The service's JSON error message was
"invalid header field in the request head: each field needs a name of token
characters, a colon, ...", which sent the user to look at the form of their
header fields. They now get a message about body framing, which quotes no
header value.
"""

import json

import pytest

from simplestack.gunicorn_worker import (
    BODY_FRAMING_ERROR_MESSAGE, HEADER_ERROR_MESSAGE)
from tests.attacks.stack import canary_token, leaks_canary
from tests.attacks.test_round7_server_errors import (
    HOST, TOKEN, last_response)
# production.ini's gunicorn with one worker.
from tests.attacks.test_round7_unread_bodies import server  # noqa: F401

POST = b"POST /test/default/guests HTTP/1.1\r\n" + HOST + TOKEN

#: (case, header lines after POST, body).
FRAMING_CASES = [
    ("length-letters", b"Content-Length: abc\r\n", b""),
    ("length-sign", b"Content-Length: +2\r\n", b"{}"),
    ("length-negative", b"Content-Length: -2\r\n", b"{}"),
    ("length-twice", b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"),
    ("length-twice-differing",
     b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{} "),
    ("length-and-chunked",
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    ("chunked-twice", b"Transfer-Encoding: chunked, chunked\r\n",
     b"0\r\n\r\n"),
    ("coding-not-chunked-last", b"Transfer-Encoding: gzip\r\n", b""),
]


def framing_error(server, data):
    """Return (status line, JSON error) of the response to ``data``."""
    head, body = last_response(server, data)
    return head.split(b"\r\n", 1)[0], json.loads(body)


@pytest.mark.parametrize("case, lines, body", FRAMING_CASES,
                         ids=[case[0] for case in FRAMING_CASES])
def test_framing_error_names_framing(server, case, lines, body):
    status, error = framing_error(server, POST + lines + b"\r\n" + body)

    assert status.startswith(b"HTTP/1.1 400 "), status
    assert error["error"] == "InvalidArguments"
    assert error["message"] == BODY_FRAMING_ERROR_MESSAGE


def test_chunked_http10_names_framing(server):
    data = (b"POST /test/default/guests HTTP/1.0\r\n" + HOST + TOKEN
            + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")

    status, error = framing_error(server, data)

    assert status.startswith(b"HTTP/1.1 400 "), status
    assert error["message"] == BODY_FRAMING_ERROR_MESSAGE


def test_framing_error_quotes_no_value(server):
    token = canary_token("root").encode("ascii")
    data = POST + b"Content-Length: " + token + b"\r\n\r\n"

    status, error = framing_error(server, data)

    assert status.startswith(b"HTTP/1.1 400 "), status
    assert error["message"] == BODY_FRAMING_ERROR_MESSAGE
    assert not leaks_canary(json.dumps(error))
    assert not leaks_canary(server.read_log())


def test_nul_in_length_is_header_error(server):
    # A forbidden character in the value is about the field's form.
    data = POST + b"Content-Length: 2\x00\r\n\r\n{}"

    status, error = framing_error(server, data)

    assert status.startswith(b"HTTP/1.1 400 "), status
    assert error["message"] == HEADER_ERROR_MESSAGE


def test_bad_header_name_keeps_header_error(server):
    data = POST + b"Content Length: 2\r\n\r\n{}"

    status, error = framing_error(server, data)

    assert status.startswith(b"HTTP/1.1 400 "), status
    assert error["message"] == HEADER_ERROR_MESSAGE
