"""Clients that reset their connection (TCP RST) while sending a request
body, against production.ini's gunicorn and the XAPI simulator.

A client that closes its side cleanly (FIN) gets 400 InvalidArguments. A
reset raised ConnectionResetError from the body read instead, which became
a 500 with a traceback logged at ERROR, or, during an XVA upload, a 502
HypervisorUnreachable that blamed the Xen pool and counted a hypervisor
error in /metrics.
"""

import json
import re
import socket
import struct
import tarfile
import time

import pytest

from tests.attacks import stack
# The XAPI simulator and production.ini's gunicorn in front of it.
from tests.attacks.test_round3_stalled_client import (  # noqa: F401,F811
    open_sessions, production, simulator)
from tests.operations.servers import http_get

#: The body length that every request announces, far more than it sends.
ANNOUNCED_LENGTH = 100000000
#: Bytes of image data sent after the tar header before the reset: more
#: than the first reads, so that the XVA upload to the simulator is under
#: way when the reset comes.
STREAMED_BYTES = 600000
#: Seconds between the last bytes sent and the reset, so that the service
#: is waiting in a body read when it comes.
RESET_DELAY = 0.5

XVA_HEAD = tarfile.TarInfo("ova.xml").tobuf(format=tarfile.USTAR_FORMAT)

#: (request id, Content-Type, body bytes sent before the reset).
CASES = [
    # Cut inside a JSON body: json_or_import_validator's peek reads it.
    ("reset-json-body", "application/json", b'{"name": "reset'),
    # An undeclared XVA cut inside its first tar block (the peek).
    ("reset-image-peek", "application/json", XVA_HEAD[:300]),
    # A declared XVA cut after its first tar block.
    ("reset-declared-head", "application/x-xva", XVA_HEAD),
    # A declared XVA cut while the service streams it to the simulator.
    ("reset-declared-stream", "application/x-xva",
     XVA_HEAD + b"\0" * STREAMED_BYTES),
    # An undeclared XVA cut while the service streams it.
    ("reset-undeclared-stream", "application/json",
     XVA_HEAD + b"\0" * STREAMED_BYTES),
]


def send_and_reset(production, simulator, request_id, content_type, body):
    head = (
        "POST /xen/%s/guests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "X-Request-ID: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
        "%s: %s\r\n\r\n" % (
            simulator.netloc, request_id, content_type, ANNOUNCED_LENGTH,
            stack.TOKEN_HEADER, stack.canary_token("root")))
    sock = socket.create_connection(("127.0.0.1", production.port),
                                    stack.CLIENT_TIMEOUT)
    try:
        sock.sendall(head.encode("ascii") + body)
        time.sleep(RESET_DELAY)
        # SO_LINGER with a zero timeout makes close() send a reset.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    finally:
        sock.close()


def hypervisor_error_count(production):
    status, _, body = http_get(production.url + "/metrics")
    assert status == 200
    pattern = re.compile(
        r'^simplestack_hypervisor_errors_total\{[^}]*\} ([0-9.e+]+)$', re.M)
    return sum(float(value) for value in pattern.findall(body.decode()))


def entries_of(production, request_id, timeout=10):
    """Return the JSON log entries of ``request_id`` once its summary line
    is there."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [entry for entry in production.log_entries()
                   if entry.get("request_id") == request_id]
        if any(entry["logger"] == "simplestack.requests"
               for entry in entries) or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


@pytest.mark.parametrize("request_id,content_type,body", CASES,
                         ids=[case[0] for case in CASES])
def test_reset_during_body_is_client_error(production, simulator, request_id,
                                           content_type, body):
    errors_before = hypervisor_error_count(production)

    send_and_reset(production, simulator, request_id, content_type, body)

    entries = entries_of(production, request_id)
    summaries = [entry for entry in entries
                 if entry["logger"] == "simplestack.requests"]
    assert len(summaries) == 1, entries
    assert summaries[0]["status"] == 400, summaries[0]
    assert [entry for entry in entries if entry["level"] == "ERROR"] == []
    assert not any("exception" in entry for entry in entries), entries
    assert hypervisor_error_count(production) == errors_before
    assert stack.wait_for(lambda: open_sessions(simulator), 0) == 0, \
        "the reset request still holds its XAPI session"
    status, _, answer = http_get(production.url + "/healthz")
    assert status == 200, answer
    assert json.loads(answer)["status"] == "ok"
