"""Log lines and metrics of an image export whose body ends after its
request has ended, against production.ini's gunicorn and the XAPI
simulator.

The view returns before the server sends the export's body. So the lines
that the body's end writes (a client that stops reading, a stream that
fails) came without the request id that the summary line carries. A
hypervisor error that ended the body was missing from /metrics.
"""

import socket
import struct
import time

from tests.attacks import stack
# The XAPI simulator, production.ini's gunicorn in front of it, and a guest
# whose export is far larger than the socket buffers.
from tests.attacks.test_round3_stalled_client import (  # noqa: F401,F811
    large_guest, open_sessions, production, simulator)
from tests.attacks.test_round6_client_resets import (
    entries_of, hypervisor_error_count)

#: Bytes of the export that the client reads before it resets.
READ_BEFORE_RESET = 1 << 20


def export_request(simulator, guest_id, request_id):
    return (
        "GET /xen/%s/guests/%s/export HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "X-Request-ID: %s\r\n%s: %s\r\n\r\n" % (
            simulator.netloc, guest_id, request_id, stack.TOKEN_HEADER,
            stack.canary_token("root"))).encode("ascii")


def read_export(production, request, limit=None):
    """Send ``request``, read the response up to ``limit`` bytes (all when
    None), then reset the connection."""
    sock = socket.create_connection(("127.0.0.1", production.port),
                                    stack.CLIENT_TIMEOUT)
    try:
        sock.sendall(request)
        received = 0
        while limit is None or received < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += len(chunk)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    finally:
        sock.close()
    return received


def wait_for_message(production, text, timeout=10):
    """Return the log entries whose message contains ``text``."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [entry for entry in production.log_entries()
                   if text in entry["message"]]
        if entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def test_stopped_export_logs_request_id(production, simulator, large_guest):
    request_id = "round6-stopped-export"
    received = read_export(
        production, export_request(simulator, large_guest["id"], request_id),
        READ_BEFORE_RESET)
    assert received >= READ_BEFORE_RESET

    entries = wait_for_message(
        production, "the export of guest %s ended before its last byte"
        % large_guest["id"])
    assert len(entries) == 1, entries
    assert entries[0].get("request_id") == request_id, entries[0]
    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0


def test_failed_export_logs_request_id(production, simulator, large_guest):
    request_id = "round6-failed-export"
    # The export's task is read once its last byte has come.
    simulator.set_fault("task.get_record", error=["INTERNAL_ERROR", "round6"],
                        times=1)
    try:
        read_export(production,
                    export_request(simulator, large_guest["id"], request_id))
    finally:
        simulator.clear_faults()

    entries = wait_for_message(production, "the image stream from xen host")
    assert len(entries) == 1, entries
    assert entries[0]["level"] == "ERROR"
    assert entries[0].get("request_id") == request_id, entries[0]
    summaries = [entry for entry in entries_of(production, request_id)
                 if entry["logger"] == "simplestack.requests"]
    assert len(summaries) == 1
    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0


def test_failed_export_counts_hypervisor_error(production, simulator,
                                               large_guest):
    errors_before = hypervisor_error_count(production)
    simulator.set_fault("task.get_record", error=["INTERNAL_ERROR", "round6"],
                        times=1)
    try:
        read_export(production, export_request(
            simulator, large_guest["id"], "round6-counted-export"))
    finally:
        simulator.clear_faults()

    assert stack.wait_for(lambda: hypervisor_error_count(production),
                          errors_before + 1) == errors_before + 1
    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0
