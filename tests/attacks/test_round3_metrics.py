"""Hostile methods and request ids against /metrics and the request log.

Requests go out on raw sockets to pserve, so that methods that HTTP client
libraries reject reach the service as written.
"""

import re
import socket

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from tests.attacks import stack
from tests.server import TESTING_INI

STANDARD_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                    "OPTIONS"}
METHOD_LABEL = re.compile(r'method="([^"]*)"')


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("round3-metrics"))
    running = stack.start_server(folder)
    yield running
    running.stop()


def exchange(port, method, path, headers=b""):
    """Send one request as written; return the status code and the body."""
    request = (method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Connection: close\r\n" + headers + b"\r\n")
    received = b""
    with socket.create_connection(("127.0.0.1", port),
                                  stack.CLIENT_TIMEOUT) as sock:
        sock.sendall(request)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def send_raw(port, method, path, headers=b""):
    return exchange(port, method, path, headers)[0]


def scrape(server):
    status, body = exchange(server.port, b"GET", b"/metrics")
    assert status == 200
    return body.decode("utf-8")


def test_unknown_methods_share_one_label(server):
    for number in range(300):
        method = b"X%dMETHOD" % number
        for path in (b"/healthz", b"/test/default/guests", b"/nothing"):
            status = send_raw(server.port, method, path)
            assert status in (401, 404, 405), (method, path, status)
    # The first scrape adds the series of GET /metrics itself.
    scrape(server)
    before = len(scrape(server))

    for number in range(300, 600):
        status = send_raw(server.port, b"X%dMETHOD" % number, b"/healthz")
        assert status == 405

    text = scrape(server)
    labels = set(METHOD_LABEL.findall(text))
    assert labels <= STANDARD_METHODS | {"other"}, sorted(labels)[:10]
    assert "other" in labels
    # 300 more unknown methods add no time series: the text grows only
    # by the digits of larger counts.
    assert len(text) - before < 2000


def test_long_method_is_cut_in_log(server):
    method = b"A" * 5000

    status = send_raw(server.port, method, b"/healthz")

    assert status == 405
    log = server.read_log()
    assert "method=" + "A" * 32 + "..." in log
    assert "A" * 33 not in log


@pytest.mark.parametrize("request_id", [
    "abc\n", "abc\r\nSet-Cookie: x=1", "x" * 129, "a b", "a\"b", "",
    "\u00e9t\u00e9",
])
def test_invalid_request_id_is_replaced(request_id):
    # WebTest checks every response header as a WSGI server would, so a
    # request id echoed with a line break fails the request.
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    app = TestApp(main({}, **settings))

    response = app.get("/healthz", headers={"X-Request-ID": request_id})

    echoed = response.headers["X-Request-ID"]
    assert echoed != request_id
    assert re.fullmatch(r"[0-9a-f]{32}", echoed), echoed


def test_valid_request_id_is_kept(server):
    status = send_raw(server.port, b"GET", b"/healthz",
                      b"X-Request-ID: round3.id-1:2\r\n")

    assert status == 200
    assert "request_id=round3.id-1:2 method=GET" in server.read_log()
