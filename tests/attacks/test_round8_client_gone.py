"""Log lines of exports that end early, against production.ini's gunicorn
and the XAPI simulator.

A client that stopped reading an export until client_timeout made gunicorn
log "Socket error processing request." at ERROR with a traceback and no
request id, and a client that reset the connection was logged only at
DEBUG. An export that failed after its headers went out was logged twice
at ERROR: by the service with the request id, then by gunicorn ("Error
handling request") without it. When only the poll of the export's task
failed, the service also cancelled the task that had ended, and logged
that XAPI rejected the cancel.
"""

import logging
import socket
import sys
import time

from simplestack.gunicorn_worker import (
    GUNICORN_RESPONSE_ERROR, LoggedErrorFilter)
from simplestack.views.imports import LOGGED_ERROR_ATTRIBUTE
from tests.attacks import stack
# The XAPI simulator, production.ini's gunicorn in front of it (client
# timeout CLIENT_TIMEOUT), and a guest whose export is far larger than the
# socket buffers.
from tests.attacks.test_round3_stalled_client import (  # noqa: F401,F811
    CLIENT_TIMEOUT, large_guest, open_sessions, production, simulator)
from tests.attacks.test_round6_stream_logs import (
    READ_BEFORE_RESET, export_request, read_export)

#: gunicorn's message about a write that failed with an OSError other than
#: EPIPE, ECONNRESET and ENOTCONN.
GUNICORN_SOCKET_ERROR = "Socket error processing request."


def entries_since(production, count):
    """Return the log entries after the first ``count``."""
    return production.log_entries()[count:]


def client_gone_warnings(production, request_id, timeout):
    """Wait up to ``timeout`` seconds for the worker's line about the
    client of ``request_id``; return every such line."""
    deadline = time.monotonic() + timeout
    while True:
        warnings = [entry for entry in production.log_entries()
                    if entry.get("request_id") == request_id
                    and entry["logger"] == "simplestack.gunicorn_worker"]
        if warnings or time.monotonic() > deadline:
            return warnings
        time.sleep(0.1)


def call_count(simulator, method):
    return simulator.stats()["calls"].get(method, 0)


def test_stalled_export_logs_one_warning(production, simulator,
                                         large_guest):
    request_id = "round8-stalled-export"
    entries_before = len(production.log_entries())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # A small receive buffer keeps the window small, so the worker's
        # writes wait for the client soon.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(stack.CLIENT_TIMEOUT)
        sock.connect(("127.0.0.1", production.port))
        sock.sendall(export_request(simulator, large_guest["id"],
                                    request_id))
        received = len(sock.recv(4096))
        assert received > 0

        # The client stops reading and keeps its connection open.
        warnings = client_gone_warnings(production, request_id,
                                        CLIENT_TIMEOUT + 20)

    assert len(warnings) == 1, warnings
    warning = warnings[0]
    assert warning["level"] == "WARNING"
    assert warning["error"] == "TimeoutError"
    assert warning["peer"] == "127.0.0.1"
    assert warning["max_body_bytes_sent"] > 0
    assert "exception" not in warning
    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0
    new_entries = entries_since(production, entries_before)
    assert [entry for entry in new_entries
            if entry["message"] == GUNICORN_SOCKET_ERROR] == []
    assert [entry for entry in new_entries
            if entry["level"] == "ERROR"] == []


def test_reset_export_logs_one_warning(production, simulator, large_guest):
    request_id = "round8-reset-export"
    entries_before = len(production.log_entries())
    received = read_export(
        production, export_request(simulator, large_guest["id"], request_id),
        READ_BEFORE_RESET)
    assert received >= READ_BEFORE_RESET

    warnings = client_gone_warnings(production, request_id, 10)

    assert len(warnings) == 1, warnings
    assert warnings[0]["level"] == "WARNING"
    assert warnings[0]["error"] in ("BrokenPipeError", "ConnectionResetError")
    assert warnings[0]["max_body_bytes_sent"] >= READ_BEFORE_RESET
    assert "exception" not in warnings[0]
    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0
    new_entries = entries_since(production, entries_before)
    assert [entry for entry in new_entries
            if entry["level"] == "ERROR"] == []


def fail_export_task_poll(production, simulator, guest_id, request_id):
    """Export ``guest_id`` with the poll of its task failing, read the
    export to its end, and return the log entries that came meanwhile."""
    entries_before = len(production.log_entries())
    # The export's task is polled once its whole body has come, and then
    # it has ended. This poll fails.
    simulator.set_fault("task.get_record", error=["INTERNAL_ERROR", "round8"],
                        times=1)
    try:
        # Reads until gunicorn closes the connection, which it does after
        # it has logged the failure.
        read_export(production,
                    export_request(simulator, guest_id, request_id))
    finally:
        simulator.clear_faults()
    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0
    # The stream closes in its reading thread, which may log after the
    # connection has closed.
    time.sleep(1)
    return entries_since(production, entries_before)


def test_failed_export_logs_one_error(production, simulator, large_guest):
    request_id = "round8-failed-export"

    new_entries = fail_export_task_poll(production, simulator,
                                        large_guest["id"], request_id)

    errors = [entry for entry in new_entries if entry["level"] == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0].get("request_id") == request_id
    assert errors[0]["message"].startswith("the image stream from xen host")
    assert [entry for entry in new_entries
            if entry["message"] == GUNICORN_RESPONSE_ERROR] == []


def tasks_left(simulator):
    """Return how many tasks were created and not destroyed."""
    return (call_count(simulator, "task.create")
            - call_count(simulator, "task.destroy"))


def test_failed_poll_destroys_ended_task(production, simulator, large_guest):
    cancels_before = call_count(simulator, "task.cancel")
    tasks_before = tasks_left(simulator)

    new_entries = fail_export_task_poll(production, simulator,
                                        large_guest["id"], "round8-failed-poll")

    # The task had ended, so it is destroyed without a cancel.
    assert call_count(simulator, "task.cancel") == cancels_before
    assert [entry for entry in new_entries
            if "cancelling" in entry["message"]] == []
    assert tasks_left(simulator) == tasks_before


def error_record(error, message=GUNICORN_RESPONSE_ERROR):
    """Return the record that gunicorn's log.exception(message) makes while
    ``error`` is handled."""
    try:
        raise error
    except type(error):
        return logging.LogRecord("gunicorn.error", logging.ERROR, __file__,
                                 0, message, (), sys.exc_info())


def test_filter_drops_only_logged_errors():
    record_filter = LoggedErrorFilter()
    logged = RuntimeError("logged by the response body")
    setattr(logged, LOGGED_ERROR_ATTRIBUTE, True)

    assert not record_filter.filter(error_record(logged))
    # A server error that nothing logged before keeps gunicorn's line.
    assert record_filter.filter(error_record(RuntimeError("not logged")))
    # So does another gunicorn message about the same error.
    assert record_filter.filter(
        error_record(logged, "Exception in post_request hook"))
