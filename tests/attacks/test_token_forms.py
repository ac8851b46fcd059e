"""Malformed hypervisor tokens sent over real HTTP to pserve.

Requests go out on raw sockets, so header values that HTTP client libraries
reject (line breaks, NUL, bytes that are not ASCII) reach the server as
written. Every malformed token gets a 401 JSON error, on the test driver
and on the XAPI simulator, and never a 500. Tokens that break HTTP itself
(a bare CR or LF, NUL, a header over waitress's 256 KiB limit) are rejected
by waitress before the service gets them, with waitress's own plain-text
400 or 431: those tests pin that behaviour and that the server keeps
working after it.
"""

import base64
import json
import socket
import threading

import pytest

from tests.attacks import stack
from tests.conftest import CANARY_PASSWORD

#: waitress's default max_request_header_size (waitress 3.0), in bytes.
WAITRESS_HEADER_LIMIT = 262144


def encode(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data)


# 29 bytes of UTF-8, so its base64 ends in one "=".
CANARY_TOKEN = encode("sstest:" + CANARY_PASSWORD)

#: Tokens the service itself rejects with 401 Unauthorized.
MALFORMED_TOKENS = {
    "not base64": b"%%%%" + CANARY_PASSWORD.encode("utf-8"),
    "url-safe alphabet": encode(b"root:\xfb\xff" + CANARY_PASSWORD.encode()).replace(
        b"+", b"-").replace(b"/", b"_"),
    "no colon": encode(CANARY_PASSWORD.replace(":", "")),
    "not UTF-8": encode(("root:" + CANARY_PASSWORD).encode("latin-1")),
    "missing padding": CANARY_TOKEN.rstrip(b"="),
    "padding inside": CANARY_TOKEN[:4] + b"=" + CANARY_TOKEN[4:],
    "padding only": b"====",
    "space inside": CANARY_TOKEN[:8] + b" " + CANARY_TOKEN[8:],
    "folded line": CANARY_TOKEN[:8] + b"\r\n " + CANARY_TOKEN[8:],
    "wrapped like GNU base64": encode("root:" + CANARY_PASSWORD * 8)[:76] + b"\r\n "
    + encode("root:" + CANARY_PASSWORD * 8)[76:],
    "bytes not ASCII": CANARY_PASSWORD.encode("latin-1"),
    "empty": b"",
    "spaces only": b"     ",
    "huge not base64": b"%" * 200000,
    "huge without colon": encode(b"x" * 150000),
}

#: Tokens that break the HTTP header itself, with waitress's status.
HTTP_BREAKING_TOKENS = {
    "bare line feed": (CANARY_TOKEN[:8] + b"\n" + CANARY_TOKEN[8:], 400),
    "bare carriage return": (CANARY_TOKEN[:8] + b"\r" + CANARY_TOKEN[8:], 400),
    "NUL byte": (CANARY_TOKEN[:8] + b"\x00" + CANARY_TOKEN[8:], 400),
    "over the header limit": (encode("root:" + "a" * WAITRESS_HEADER_LIMIT), 431),
}


@pytest.fixture(scope="module")
def stack_urls(tmp_path_factory):
    """Start the XAPI simulator and the service; yield (server, paths by
    backend, simulator)."""
    folder = str(tmp_path_factory.mktemp("tokens"))
    xapi = stack.start_xapi(vms=1)
    server = stack.start_server(folder)
    try:
        yield server, {
            "test": "/test/default/guests",
            "xen": "/xen/%s/guests" % xapi.netloc,
        }, xapi
    finally:
        server.stop()
        xapi.stop()
    assert not stack.leaks_canary(server.read_log())


def send_raw(port, path, token):
    """Send GET ``path`` with ``token`` as written; return (status,
    content type, body) of the response."""
    request = (b"GET " + path.encode("ascii") + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Connection: close\r\n" + stack.TOKEN_HEADER.encode("ascii") + b": "
               + token + b"\r\n\r\n")
    received = []

    # Read while sending: waitress responds to an oversized header before
    # it has read the whole request, then resets the connection.
    def read():
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                received.append(chunk)
        except ConnectionResetError:
            return

    with socket.create_connection(("127.0.0.1", port), stack.CLIENT_TIMEOUT) as sock:
        reader = threading.Thread(target=read)
        reader.start()
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reader.join(stack.CLIENT_TIMEOUT)
    data = b"".join(received)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    content_type = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            content_type = value.strip()
    return status, content_type, body


@pytest.mark.parametrize("backend", ["test", "xen"])
@pytest.mark.parametrize("form", sorted(MALFORMED_TOKENS))
def test_malformed_token_rejected(stack_urls, backend, form):
    server, paths, _ = stack_urls
    status, content_type, body = send_raw(server.port, paths[backend], MALFORMED_TOKENS[form])

    assert status == 401, body[:300]
    assert content_type.startswith("application/json")
    document = json.loads(body)
    assert document["error"] == "Unauthorized"
    assert "x-simplestack-hypervisor-token" in document["message"]
    assert not stack.leaks_canary(body)


@pytest.mark.parametrize("text", [":", "root:", ":" + CANARY_PASSWORD,
                                  "root:" + CANARY_PASSWORD + "x" * 100000])
def test_wrong_credentials_rejected_by_xapi(stack_urls, text):
    """Well-formed tokens with an empty or huge part reach the simulator,
    which rejects the login: 401 HypervisorAuthenticationFailed."""
    server, paths, _ = stack_urls
    status, content_type, body = send_raw(server.port, paths["xen"], encode(text))

    assert status == 401, body[:300]
    assert content_type.startswith("application/json")
    assert json.loads(body)["error"] == "HypervisorAuthenticationFailed"
    assert not stack.leaks_canary(body)


def test_surrounding_blanks_accepted(stack_urls):
    """waitress strips the spaces and tabs around a header value."""
    server, paths, xapi = stack_urls
    token = encode(xapi.username + ":" + CANARY_PASSWORD)
    status, _, body = send_raw(server.port, paths["xen"], b" \t" + token + b"\t ")

    assert status == 200, body[:300]
    assert isinstance(json.loads(body), list)


@pytest.mark.parametrize("form", sorted(HTTP_BREAKING_TOKENS))
def test_http_breaking_token_rejected(stack_urls, form):
    server, paths, xapi = stack_urls
    token, expected_status = HTTP_BREAKING_TOKENS[form]
    status, content_type, body = send_raw(server.port, paths["xen"], token)

    # NOTE: waitress rejects these in plain text, not in the JSON error
    # shape, because the request never reaches the service.
    assert status == expected_status, body[:300]
    assert content_type.startswith("text/plain")
    assert not stack.leaks_canary(body)

    # The server still serves the next request.
    good = encode(xapi.username + ":" + CANARY_PASSWORD)
    assert send_raw(server.port, paths["xen"], good)[0] == 200
