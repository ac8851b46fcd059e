"""Exports whose reading thread is still inside a hypervisor call when the
response ends, against production.ini's gunicorn and the XAPI simulator.

An export reads the hypervisor in a thread of its own (ReadAhead). When the
response ended while that thread waited on XAPI for more than
READ_AHEAD_JOIN_SECONDS, the worker closed the stream and the adapter under
it: the task's cancel went over the XML-RPC connection that the thread was
using (CannotSendRequest), the session was logged out under the thread,
and the thread then logged in again and never logged out. Now the thread
closes the stream when it leaves the call, and a worker that exits waits
for it, because the thread is a daemon and would die with its session open.
"""

import http.client
import socket
import threading
import time

import pytest

from simplestack import streams
from simplestack.streams import READ_AHEAD_JOIN_SECONDS
from tests.attacks import stack
# The XAPI simulator, production.ini's gunicorn in front of it (client
# timeout CLIENT_TIMEOUT, the Xen read timeout at its 300 s default), and a
# guest whose export is far larger than the socket buffers.
from tests.attacks.test_round3_stalled_client import (  # noqa: F401,F811
    CLIENT_TIMEOUT, large_guest, open_sessions, production, simulator)
from tests.attacks.test_round6_stream_logs import (
    export_request, wait_for_message)
from tests.operations.servers import ProductionServer, derive_production_ini

#: Seconds that task.get_record hangs unless the test clears the fault
#: first: longer than the client timeout and the worker's wait for the
#: reading thread together.
HANG_SECONDS = CLIENT_TIMEOUT + READ_AHEAD_JOIN_SECONDS + 60
#: Seconds the test allows for the worker to give up on its client and on
#: the reading thread.
HANDOVER_TIMEOUT = CLIENT_TIMEOUT + READ_AHEAD_JOIN_SECONDS + 15
#: Bytes at the end of the export that the client reads slowly while it
#: watches for the task's poll: more than the reading thread's queue and
#: the socket buffers take together.
SLOW_TAIL_BYTES = 16 << 20


def call_count(simulator, method):
    return simulator.stats()["calls"].get(method, 0)


def tasks_left(simulator):
    """Return how many tasks were created and not destroyed."""
    return call_count(simulator, "task.create") - \
        call_count(simulator, "task.destroy")


def messages_of(server, request_id):
    return [entry for entry in server.log_entries()
            if entry.get("request_id") == request_id]


@pytest.fixture(scope="module")
def export_length(production, simulator, large_guest):
    """The body length of large_guest's export."""
    connection = http.client.HTTPConnection("127.0.0.1", production.port,
                                            timeout=stack.CLIENT_TIMEOUT)
    try:
        connection.request(
            "GET", "/xen/%s/guests/%s/export" % (simulator.netloc,
                                                 large_guest["id"]),
            headers={stack.TOKEN_HEADER: stack.canary_token("root")})
        response = connection.getresponse()
        assert response.status == 200
        length = 0
        while True:
            data = response.read(1 << 20)
            if not data:
                return length
            length += len(data)
    finally:
        connection.close()


def stall_at_task_poll(server, simulator, guest_id, request_id,
                       fast_bytes):
    """Start an export, read it until the reading thread polls the export's
    task (which a hang fault holds), and return the socket, unread.

    After ``fast_bytes``, the client reads slowly, so the worker's writes,
    the reading thread's queue and the socket buffers are full when the
    poll starts: the worker's next write then waits for the client.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(stack.CLIENT_TIMEOUT)
        sock.connect(("127.0.0.1", server.port))
        polls_before = call_count(simulator, "task.get_record")
        sock.sendall(export_request(simulator, guest_id, request_id))
        received = 0
        while received < fast_bytes:
            chunk = sock.recv(65536)
            assert chunk, "the export ended early"
            received += len(chunk)
        while call_count(simulator, "task.get_record") == polls_before:
            chunk = sock.recv(16384)
            assert chunk, "the export ended before its task was polled"
        return sock
    except BaseException:
        sock.close()
        raise


def test_hung_task_poll_leaks_no_session(production, simulator, large_guest,
                                         export_length):
    tasks_before = tasks_left(simulator)
    request_id = "round8-hung-task-poll"
    simulator.set_fault("task.get_record", action="hang",
                        seconds=HANG_SECONDS, times=1)
    try:
        with stall_at_task_poll(production, simulator, large_guest["id"],
                                request_id, export_length - SLOW_TAIL_BYTES):
            # The worker's write times out, then it waits for the thread.
            assert wait_for_message(production, "reading thread still waits",
                                    HANDOVER_TIMEOUT)
            # The hung poll still uses the stream's session.
            assert open_sessions(simulator) == 1
    finally:
        # Clearing the faults ends the hang.
        simulator.clear_faults()

    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0, \
        "the export's reading thread left a XAPI session open"
    assert stack.wait_for(lambda: tasks_left(simulator), tasks_before) == \
        tasks_before, "the export's XAPI task was never destroyed"
    entries = messages_of(production, request_id)
    # The worker logs the client that stopped reading, as a warning.
    stalled = [entry for entry in entries
               if entry["logger"] == "simplestack.gunicorn_worker"]
    assert len(stalled) == 1, stalled
    assert stalled[0]["error"] == "TimeoutError"
    failures = [entry for entry in entries
                if entry["level"] in ("WARNING", "ERROR")
                and entry not in stalled
                and "reading thread still waits" not in entry["message"]]
    assert failures == []


@pytest.fixture
def stoppable_production(tmp_path, simulator):
    """A production gunicorn of its own, for a test that stops it."""
    ini_path = derive_production_ini(str(tmp_path / "production.ini"), {
        "simplestack.hypervisor.xen.allowed_hosts": "127.0.0.0/8",
        "simplestack.hypervisor.xen.ca_bundle": simulator.ca_bundle,
        "simplestack.client_timeout": str(CLIENT_TIMEOUT),
    })
    server = ProductionServer(str(tmp_path / "production.log"), ini_path)
    server.start()
    yield server
    server.stop()


def test_sigterm_waits_for_reading_thread(stoppable_production, simulator,
                                          large_guest, export_length):
    server = stoppable_production
    request_id = "round8-sigterm-export"
    simulator.set_fault("task.get_record", action="hang",
                        seconds=HANG_SECONDS, times=1)
    try:
        with stall_at_task_poll(server, simulator, large_guest["id"],
                                request_id, export_length - SLOW_TAIL_BYTES):
            assert wait_for_message(server, "reading thread still waits",
                                    HANDOVER_TIMEOUT)
        server.process.terminate()
        # The worker has no request left, but its reading thread still
        # uses the stream's session, so the worker waits for it.
        time.sleep(2)
        assert server.process.poll() is None, "gunicorn exited at once"
        assert open_sessions(simulator) == 1
    finally:
        simulator.clear_faults()

    assert server.process.wait(20) == 0
    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0, \
        "the worker exited with its export's XAPI session open"
    warnings = [entry for entry in server.log_entries()
                if "was never closed" in entry["message"]]
    assert warnings == []


def test_then_runs_in_thread_after_wait(monkeypatch):
    monkeypatch.setattr(streams, "READ_AHEAD_JOIN_SECONDS", 0.2)
    release = threading.Event()
    ran_in = []

    def slow_chunks():
        yield b"first"
        # A hypervisor call that outlasts close's wait.
        release.wait(10)
        yield b"second"

    chunks = streams.ReadAhead(slow_chunks())
    assert next(chunks) == b"first"
    chunks.close(then=lambda: ran_in.append(
        threading.current_thread().name))
    assert ran_in == []

    release.set()
    assert stack.wait_for(lambda: len(ran_in), 1) == 1
    assert ran_in == ["simplestack-read-ahead"]


def test_then_runs_once_at_any_timing(monkeypatch):
    # The thread leaves the iterator about when close stops waiting.
    monkeypatch.setattr(streams, "READ_AHEAD_JOIN_SECONDS", 0.05)
    for delay in (0.0, 0.03, 0.05, 0.07):
        ran = []

        def slow_chunks(delay=delay):
            yield b"first"
            time.sleep(delay)

        chunks = streams.ReadAhead(slow_chunks())
        assert next(chunks) == b"first"
        chunks.close(then=lambda: ran.append(1))
        time.sleep(0.2)
        assert ran == [1], delay
