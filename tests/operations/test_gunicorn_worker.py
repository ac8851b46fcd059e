"""production.ini's gunicorn worker class: new connections go to workers
with a free thread, keep-alive stays on, and idle clients do not stop a
worker from accepting.

The server is production.ini with 2 workers of 2 threads, and its log
lines carry the process and thread that wrote them, so the request
summary line shows which thread of which worker served a request.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from gunicorn.workers import base, gthread

from simplestack.gunicorn_worker import missing_gunicorn_parts
from tests.conftest import make_token
from tests.derived_servers import derive_ini
from tests.operations.servers import PRODUCTION_INI, ProductionServer
from tests.operations.test_production import worker_pids
from tests.server import ROOT, free_port, stop_process, wait_until_listening
from tests.simulators.fixtures import XapiSimulator

WORKERS = 2
THREADS = 2
#: Seconds that the XAPI simulator adds to every call during the burst; a
#: guest list makes four calls (login, VM.get_all_records_where, event.from,
#: logout).
CALL_LATENCY = 0.3
#: Seconds that gunicorn keeps an idle connection, shorter than
#: production.ini's 75 s but far longer than the tests wait for a response.
KEEPALIVE = 30
#: Seconds after which gunicorn's threads give a new connection that sent
#: nothing back to the worker's poller.
DATA_WAIT = gthread.DEFAULT_WORKER_DATA_TIMEOUT
TOKEN_HEADER = "x-simplestack-hypervisor-token"
LOG_FORMAT = "%(created).6f %(process)d %(thread)d %(name)s %(message)s"
SUMMARY_LINE = re.compile(
    r"(?P<end>[\d.]+) (?P<pid>\d+) (?P<thread>\d+) simplestack\.requests "
    r"request_id=(?P<request_id>\S+) .* duration_ms=(?P<duration_ms>[\d.]+)")


@pytest.fixture(scope="module")
def simulator():
    running = XapiSimulator("--vms", "1").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, simulator):
    folder = tmp_path_factory.mktemp("gunicorn-worker")
    ini_path = derive_ini(PRODUCTION_INI, {
        "app:main": {
            "simplestack.hypervisor.xen.allowed_hosts": "127.0.0.0/8",
            "simplestack.hypervisor.xen.ca_bundle": simulator.ca_bundle,
        },
        "server:main": {
            "workers": WORKERS, "threads": THREADS, "keepalive": KEEPALIVE},
        "handler_console": {"formatter": "generic"},
        "formatter_generic": {"format": LOG_FORMAT},
    }, str(folder / "production.ini"))
    running = ProductionServer(str(folder / "gunicorn.log"), ini_path)
    running.start()
    yield running
    running.stop()


def summary_lines(server, request_ids, timeout=5):
    """Return {request id: summary line match} of ``request_ids`` once the
    log has them all (log lines can be held for up to about 50 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {}
        for line in server.read_log().splitlines():
            match = SUMMARY_LINE.match(line)
            if match and match["request_id"] in request_ids:
                found[match["request_id"]] = match
        if len(found) == len(request_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def connect(server, timeout=10):
    connection = http.client.HTTPConnection("127.0.0.1", server.port,
                                            timeout=timeout)
    connection.connect()
    return connection


def get(connection, path, headers=None):
    """Send a GET on ``connection``; return (status, response headers)."""
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    return response.status, response.headers


def send_burst(server, simulator, name):
    """Send one slow guest list per thread of the server at once, each on a
    new connection; return {request id: summary line match}."""
    path = "/xen/%s/guests" % simulator.netloc
    count = WORKERS * THREADS
    request_ids = ["%s-%d" % (name, number) for number in range(count)]
    headers = {TOKEN_HEADER: make_token(simulator.username,
                                        simulator.password)}
    statuses = {}
    # Every client connects before any sends, so that the server has all
    # the connections to share out at once.
    all_connected = threading.Barrier(count)

    def send(request_id):
        connection = connect(server, timeout=60)
        try:
            all_connected.wait(10)
            statuses[request_id] = get(
                connection, path, dict(headers, **{"X-Request-ID": request_id}))[0]
        finally:
            connection.close()

    simulator.set_latency(CALL_LATENCY)
    try:
        clients = [threading.Thread(target=send, args=(request_id,))
                   for request_id in request_ids]
        for client in clients:
            client.start()
        for client in clients:
            client.join(60)
    finally:
        simulator.set_latency(0)

    assert statuses == {request_id: 200 for request_id in request_ids}
    lines = summary_lines(server, request_ids)
    assert sorted(lines) == sorted(request_ids)
    return lines


def assert_one_thread_each(lines):
    """Assert that the requests of ``lines`` ran on distinct threads of
    every worker, all at the same time."""
    threads = {(line["pid"], line["thread"]) for line in lines.values()}
    assert len(threads) == WORKERS * THREADS, threads
    assert len({pid for pid, _ in threads}) == WORKERS
    # Served at the same time: every request started before any ended.
    ends = [float(line["end"]) for line in lines.values()]
    starts = [float(line["end"]) - float(line["duration_ms"]) / 1000
              for line in lines.values()]
    assert max(starts) < min(ends), (starts, ends)


def test_burst_takes_one_thread_each(server, simulator):
    assert_one_thread_each(send_burst(server, simulator, "burst"))


def test_keepalive_serves_second_request(server):
    connection = connect(server)
    try:
        status, headers = get(connection, "/healthz")
        assert status == 200
        assert headers.get("Connection", "").lower() != "close"
        first_socket = connection.sock
        local_address = first_socket.getsockname()

        status, headers = get(connection, "/healthz")
        assert status == 200
        # http.client opens a new connection when the server closed one.
        assert connection.sock is first_socket
        assert connection.sock.getsockname() == local_address
    finally:
        connection.close()


def post_raw(server, path, content_type, length, sent, token=None):
    """Send a POST that announces ``length`` body bytes and sends only
    ``sent``. Return (socket, bytes received, seconds until the server
    closed its side), with None as the seconds when it kept the
    connection open for 3 s."""
    sock = socket.create_connection(("127.0.0.1", server.port), 10)
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
                 % (path.encode("ascii"), content_type.encode("ascii"), length,
                    b"" if token is None else
                    ("%s: %s\r\n" % (TOKEN_HEADER, token)).encode("ascii"))
                 + sent)
    received = b""
    started = time.monotonic()
    sock.settimeout(3)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return sock, received, time.monotonic() - started
            received += data
    except TimeoutError:
        return sock, received, None


@pytest.mark.parametrize("path, token, status, error", [
    ("/nosuch/default/guests", None, 404, "EntityNotFound"),
    ("/test/default/guests", None, 401, "Unauthorized"),
    ("/test/default/guests/nosuch/tags", make_token("user", "pass"), 413,
     "RequestTooLarge"),
])
def test_unread_body_closes_connection(server, path, token, status, error):
    # 100 MB announced, 1000 bytes sent: the error comes before the body
    # is read, so the connection cannot serve another request.
    sock, received, closed_after = post_raw(
        server, path, "application/json", 100_000_000, b"{" * 1000, token)
    sock.close()
    head, _, answer = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert b"\r\nConnection: close\r\n" in head + b"\r\n", head
    assert json.loads(answer)["error"] == error
    # The worker closes at once; gunicorn's drain took 5 s in a thread.
    assert closed_after is not None and closed_after < 2, closed_after


def test_read_body_keeps_connection(server):
    # The body is read whole before the 400, so keep-alive stays on.
    body = b'{"name": 5}'
    sock, received, closed_after = post_raw(
        server, "/test/default/guests", "application/json", len(body), body,
        make_token("user", "pass"))
    try:
        assert closed_after is None, received
        assert received.startswith(b"HTTP/1.1 400 "), received[:200]
        assert b"Connection: keep-alive" in received
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        sock.close()


def test_idle_connections_leave_room_for_new_clients(server):
    count = WORKERS * THREADS
    kept_alive = []
    silent = []
    try:
        # Connections that made a request and wait in keep-alive.
        for _ in range(count):
            connection = connect(server)
            assert get(connection, "/healthz")[0] == 200
            kept_alive.append(connection)
        # Connections that send nothing, one per thread. gunicorn's threads
        # wait DATA_WAIT seconds for their first bytes, then give them back
        # to the worker's poller.
        for _ in range(count):
            silent.append(socket.create_connection(
                ("127.0.0.1", server.port), 10))
        time.sleep(DATA_WAIT + 1)

        # A new client is served at once, well before KEEPALIVE.
        fresh = connect(server, timeout=5)
        try:
            assert get(fresh, "/healthz")[0] == 200
        finally:
            fresh.close()
        for connection in kept_alive:
            first_socket = connection.sock
            assert get(connection, "/healthz")[0] == 200
            assert connection.sock is first_socket
    finally:
        for connection in kept_alive:
            connection.close()
        for sock in silent:
            sock.close()


def test_gunicorn_has_worker_parts():
    assert missing_gunicorn_parts(gthread.ThreadWorker) == []
    assert missing_gunicorn_parts(base.Worker) == [
        "accept", "set_accept_enabled", "handle", "finish_request",
        "murder_keepalived", "handle_request",
        "run calling set_accept_enabled"]


def test_production_names_worker_class(server):
    assert ("Using worker: simplestack.gunicorn_worker.ThreadWorker"
            in server.read_log())


def test_reload_keeps_worker_class(server, simulator):
    old_workers = worker_pids(server, WORKERS)
    assert len(old_workers) == WORKERS
    os.kill(server.process.pid, signal.SIGHUP)

    # gunicorn starts new workers, then stops the old ones gracefully.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = worker_pids(server, WORKERS)
        if len(workers) == WORKERS and not set(workers) & set(old_workers):
            break
        time.sleep(0.2)
    assert len(workers) == WORKERS
    assert not set(workers) & set(old_workers)

    lines = send_burst(server, simulator, "reloaded")
    assert {int(line["pid"]) for line in lines.values()} == set(workers)
    assert_one_thread_each(lines)


def test_paste_with_config_file(tmp_path):
    """``gunicorn --paste`` ignores [server:main], so a gunicorn
    configuration file names the worker class."""
    port = free_port()
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        "bind = '127.0.0.1:%d'\n"
        "worker_class = 'simplestack.gunicorn_worker.ThreadWorker'\n"
        "workers = 2\n"
        "threads = 2\n"
        "control_socket = %r\n" % (port, str(tmp_path / "gunicorn.ctl")))
    log_path = tmp_path / "gunicorn.log"
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [gunicorn, "--paste", PRODUCTION_INI,
             "--paste-global", "http_port=%d" % port, "-c", str(config)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(process, port, 30, "gunicorn",
                             log_path.read_text)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            status, headers = get(connection, "/healthz")
            assert status == 200
            assert headers.get("Connection", "").lower() != "close"
        finally:
            connection.close()
    finally:
        stop_process(process)
        shutil.rmtree(os.path.join(ROOT, ".state", "metrics", str(port)),
                      ignore_errors=True)

    assert process.returncode == 0
    log_text = log_path.read_text()
    assert ("Using worker: simplestack.gunicorn_worker.ThreadWorker"
            in log_text)
    assert "Shutting down: Master" in log_text
