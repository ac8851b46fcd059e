"""Connection handling of production.ini's gunicorn worker class
(simplestack.gunicorn_worker.ThreadWorker) under hostile clients.

The server runs 2 workers of 2 threads, so a few clients are enough to
take every thread or to stall a worker's main loop.
"""

import http.client
import os
import socket
import time

import pytest

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


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round6-worker")
    ini_path = derive_ini(PRODUCTION_INI, {
        "server:main": {"workers": WORKERS, "threads": THREADS,
                        "keepalive": 30},
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


def read_until_close(sock, timeout=10):
    sock.settimeout(timeout)
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk


def test_lingering_clients_keep_healthz_responsive(server):
    held = []
    try:
        for _ in range(HELD_OPEN_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", server.port), 10)
            # HTTP/1.0 without keep-alive: gunicorn closes the connection
            # after the response and waits for this client to close too.
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            held.append(sock)
        # Every response is written by now; only the closes are left.
        time.sleep(0.5)

        statuses = [healthz_status(server) for _ in range(3)]

        assert statuses == [200, 200, 200]
        for sock in held:
            # The server sent its response and its end of stream.
            answer = read_until_close(sock)
            assert answer.startswith(b"HTTP/1.0 200 "), answer[:100]
    finally:
        for sock in held:
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
