"""Connection handling of production.ini's gunicorn worker class
(simplestack.gunicorn_worker.ThreadWorker) under hostile clients.

The server runs 2 workers of 2 threads, so a few clients are enough to
take every thread or to stall a worker's main loop.
"""

import http.client
import os
import signal
import socket
import time

import pytest

from simplestack.gunicorn_worker import HEAD_THREAD_WAIT_SECONDS
from tests.attacks.stack import read_until_close
from tests.derived_servers import derive_ini
from tests.operations.servers import PRODUCTION_INI, ProductionServer

WORKERS = 2
THREADS = 2
#: Seconds that gunicorn 27.0.1 waits for a client's end of stream after
#: it closed a connection (gunicorn.util.close_graceful's default).
GUNICORN_LINGER = 2.0
#: Clients that get a response with "Connection: close" and then keep their
#: side open without sending or closing. At GUNICORN_LINGER seconds each,
#: lingering in the main loop would stall each worker for about 20 s.
HELD_OPEN_CLIENTS = 20
#: Seconds within which /healthz must respond while threads are free.
HEALTHZ_TIMEOUT = 1.5
#: gunicorn's keepalive: also the time that a connection has to send a
#: whole request head.
KEEPALIVE = 4
#: Clients of each kind (silent, slow head) in the slow head test: five
#: times the threads of the server.
SLOW_CLIENTS = 5 * WORKERS * THREADS
HEALTHZ_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round6-worker")
    ini_path = derive_ini(PRODUCTION_INI, {
        "server:main": {"workers": WORKERS, "threads": THREADS,
                        "keepalive": KEEPALIVE},
    }, str(folder / "production.ini"))
    running = ProductionServer(str(folder / "gunicorn.log"), ini_path)
    running.start()
    yield running
    running.stop()


def healthz_status(server, timeout=HEALTHZ_TIMEOUT):
    """Return the status of GET /healthz on a new connection, or the name
    of the exception when no response came."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port,
                                            timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError as error:
        return type(error).__name__
    finally:
        connection.close()


def test_lingering_clients_keep_healthz_responsive(server):
    open_sockets = []
    try:
        for _ in range(HELD_OPEN_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", server.port), 10)
            # HTTP/1.0 without keep-alive: gunicorn closes the connection
            # after the response and waits for this client to close too.
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            open_sockets.append(sock)
        # Every response is written by now; only the closes are left.
        time.sleep(0.5)

        statuses = [healthz_status(server) for _ in range(3)]

        assert statuses == [200, 200, 200]
        for sock in open_sockets:
            # The server sent its response and its end of stream.
            answer = read_until_close(sock)
            assert answer.startswith(b"HTTP/1.0 200 "), answer[:100]
    finally:
        for sock in open_sockets:
            sock.close()


def test_server_closes_lingering_connection(server):
    sock = socket.create_connection(("127.0.0.1", server.port), 10)
    try:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = read_until_close(sock)
        assert answer.startswith(b"HTTP/1.0 200 "), answer[:100]
        # The client neither closes nor sends, so the server drops the
        # connection after its linger time and later sends fail.
        time.sleep(GUNICORN_LINGER + 1)
        with pytest.raises(OSError):
            for _ in range(3):
                sock.sendall(b"x")
                time.sleep(0.2)
    finally:
        sock.close()
    assert healthz_status(server) == 200


def test_slow_heads_leave_healthz(server):
    clients = []
    try:
        for _ in range(SLOW_CLIENTS):
            # A client that connects and sends nothing.
            clients.append(socket.create_connection(
                ("127.0.0.1", server.port), 10))
            # A client that stops in the middle of its head.
            sock = socket.create_connection(("127.0.0.1", server.port), 10)
            sock.sendall(HEALTHZ_REQUEST[:30])
            clients.append(sock)
        # Each connection waits in a thread for HEAD_THREAD_WAIT_SECONDS
        # at most, then in its worker's poller.
        time.sleep(2 * SLOW_CLIENTS * HEAD_THREAD_WAIT_SECONDS
                   / (WORKERS * THREADS) + 1)

        statuses = [healthz_status(server) for _ in range(3)]

        assert statuses == [200, 200, 200]
    finally:
        for sock in clients:
            sock.close()


def test_trickled_head_is_served(server):
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        # About 2 s for the head: past a thread's wait, within KEEPALIVE.
        for offset in range(len(HEALTHZ_REQUEST)):
            sock.sendall(HEALTHZ_REQUEST[offset:offset + 1])
            time.sleep(2 / len(HEALTHZ_REQUEST))
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]

        # The same connection serves a second, slow request.
        sock.sendall(HEALTHZ_REQUEST[:20])
        time.sleep(1)
        sock.sendall(HEALTHZ_REQUEST[20:])
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]


def test_pipelined_requests_all_served(server):
    last = HEALTHZ_REQUEST.replace(b"\r\n\r\n",
                                   b"\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(HEALTHZ_REQUEST * 4 + last)
        answer = read_until_close(sock)
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 5, answer


def test_incomplete_head_closed_after_keepalive(server):
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(HEALTHZ_REQUEST[:30])
        started = time.monotonic()
        answer = read_until_close(sock, timeout=KEEPALIVE + 5)
        waited = time.monotonic() - started
    assert answer == b""
    # Closed at KEEPALIVE, checked once a second by the worker's loop.
    assert KEEPALIVE - 0.5 <= waited <= KEEPALIVE + 2, waited


def test_stop_with_slow_heads_is_prompt(tmp_path):
    ini_path = derive_ini(PRODUCTION_INI, {
        "server:main": {"workers": WORKERS, "threads": THREADS},
    }, str(tmp_path / "production.ini"))
    stopping = ProductionServer(str(tmp_path / "gunicorn.log"), ini_path)
    stopping.start()
    clients = []
    try:
        for _ in range(WORKERS * THREADS * 2):
            sock = socket.create_connection(("127.0.0.1", stopping.port), 10)
            sock.sendall(HEALTHZ_REQUEST[:30])
            clients.append(sock)
        time.sleep(1)

        started = time.monotonic()
        os.kill(stopping.process.pid, signal.SIGTERM)
        # production.ini's graceful_timeout is 1860 s: no request is in
        # progress, so the workers need not wait for any.
        stopping.process.wait(timeout=20)
        stop_seconds = time.monotonic() - started
    finally:
        stopping.stop()
        for sock in clients:
            sock.close()
    assert stopping.process.returncode == 0
    assert stop_seconds < 10, stop_seconds
