"""deploy/nginx/simplestack.conf against hostile requests.

The cluster fixture of tests/operations/test_nginx.py runs the deployed
site in front of two production instances on loopback. Requests go out on
raw TLS sockets, so that forms that HTTP client libraries reject reach nginx
as written.
"""

import json
import re
import socket
import ssl
import time

import pytest

from tests.conftest import make_token
from tests.operations.test_nginx import TOKEN_HEADER, cluster  # noqa: F401
from tests.simulators import ca

REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def exchange(nginx, raw_request, timeout=20):
    """Send ``raw_request`` over TLS; return (status, headers, body)."""
    context = ca.client_context()
    with socket.create_connection(("127.0.0.1", nginx.port), timeout) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(raw_request)
            received = b""
            while True:
                try:
                    chunk = sock.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    break
                if not chunk:
                    break
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def request_bytes(method, path, headers=()):
    lines = [b"%s %s HTTP/1.1" % (method, path), b"Host: 127.0.0.1",
             b"Connection: close"]
    lines.extend(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def assert_json_error(status, headers, body):
    assert headers.get("content-type", "").startswith("application/json"), \
        (status, body[:200])
    error = json.loads(body)
    assert isinstance(error["error"], str)
    assert isinstance(error["message"], str) and error["message"]


def access_log_line(nginx, marker):
    """Return the access log line that contains ``marker``."""
    deadline = time.monotonic() + 5
    while True:
        for line in nginx.read("access.log").splitlines():
            if marker in line:
                return line
        if time.monotonic() > deadline:
            raise AssertionError("no access log line with %r" % marker)
        time.sleep(0.05)


@pytest.mark.parametrize("request_id", [
    b"forged-1 upstream=127.0.0.9:1 request_id=forged-2",
    b"forged-1\"x",
    b"forged-1" + b"x" * 200,
])
def test_invalid_request_id_is_replaced(cluster, request_id):  # noqa: F811
    nginx, instances = cluster
    token = make_token().encode("ascii")

    status, headers, _ = exchange(nginx, request_bytes(
        b"GET", b"/test/default/guests", [
            b"X-Request-ID: " + request_id,
            TOKEN_HEADER.encode("ascii") + b": " + token]))

    assert status == 200
    echoed = headers["x-request-id"]
    assert REQUEST_ID.fullmatch(echoed), echoed
    line = access_log_line(nginx, echoed)
    assert "forged" not in line
    assert line.count("upstream=") == 1
    logs = "".join(instance.read_log() for instance in instances)
    assert '"request_id": "%s"' % echoed in logs


@pytest.mark.parametrize("raw_request", [
    request_bytes(b"TRACE", b"/healthz"),
    request_bytes(b"GET", b"/" + b"a" * 20000),
    request_bytes(b"POST", b"/test/default/guests", [
        b"Transfer-Encoding: gzip, chunked"]),
    request_bytes(b"POST", b"/test/default/guests", [
        b"Transfer-Encoding: chunked", b"Content-Length: 5"]) + b"0\r\n\r\n",
    request_bytes(b"GET", b"/healthz", [b"X-Big: " + b"b" * 70000]),
    request_bytes(b"GET", b"/healthz", [b"Host: 127.0.0.2"]),
    request_bytes(b"GET", b"/healthz", [b"Content-Length: -1"]),
    request_bytes(b"GET", b"/healthz", [b"Content-Length: 1", b"Content-Length: 2"]),
    b"GET /healthz HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
    b"G@T /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    request_bytes(b"GET", b"/proxy-errors/bad-request"),
], ids=["trace", "long-uri", "unknown-te", "te-and-cl", "big-header",
        "two-hosts", "negative-length", "two-lengths", "http2-line",
        "header-without-colon", "bad-method", "relative-uri",
        "error-page-uri"])
def test_proxy_rejections_are_json(cluster, raw_request):  # noqa: F811
    nginx, _ = cluster

    status, headers, body = exchange(nginx, raw_request)

    assert status >= 400, (status, body[:200])
    assert_json_error(status, headers, body)
    assert REQUEST_ID.fullmatch(headers["x-request-id"])


def test_slow_headers_do_not_block_instances(cluster):  # noqa: F811
    # gunicorn's threaded workers read request headers without a timeout,
    # so 40 connections that never finish their headers would take every
    # thread of both instances (2 workers x 16 threads). nginx reads the
    # headers itself and opens no upstream request until they are whole.
    nginx, _ = cluster
    context = ca.client_context()
    stalled = []
    try:
        for _ in range(40):
            raw = socket.create_connection(("127.0.0.1", nginx.port), 10)
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            stalled.append(sock)

        started = time.monotonic()
        status, _, body = exchange(nginx, request_bytes(b"GET", b"/healthz"),
                                   timeout=10)

        assert status == 200, body
        assert time.monotonic() - started < 5
    finally:
        for sock in stalled:
            sock.close()


METRICS_PATHS = [
    b"/metrics", b"//metrics", b"/%6detrics", b"/%6Detrics", b"/./metrics",
    b"/x/../metrics", b"/metrics/", b"/metrics?x=1", b"/metrics%3F",
    b"/metrics;x", b"/METRICS", b"/metrics%2F", b"/metrics#x",
]


def test_metrics_never_through_proxy(cluster):  # noqa: F811
    # One cluster for every spelling: starting one takes seconds.
    nginx, _ = cluster

    for path in METRICS_PATHS:
        for method in (b"GET", b"HEAD"):
            status, headers, body = exchange(nginx,
                                             request_bytes(method, path))

            assert status != 200, (method, path, body[:200])
            assert b"simplestack_requests" not in body, (method, path)
            if method == b"GET":
                assert_json_error(status, headers, body)
