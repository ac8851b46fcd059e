"""glibc's malloc thresholds for image streams (simplestack.streams).

Each check runs in a new interpreter, because the thresholds are
process-wide and a process keeps them for good.
"""

import json
import os
import subprocess
import sys

import pytest

from simplestack.streams import MALLOC_ENVIRONMENT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1024 * 1024

# Read BODY_MIB MiB in 1 MiB reads through gunicorn's request body from a
# loopback TCP connection, as a gthread worker does, and print the minor
# page faults of the reading thread. That thread is not the main one, so
# glibc serves it from another arena, as in a worker.
READ_BODY = """
import json, os, resource, socket, sys, threading
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader
from simplestack import streams

MIB = 1024 * 1024
size = int(sys.argv[1]) * MIB
result = {"set": streams.set_malloc_thresholds() if sys.argv[2] == "set"
          else None}
listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()
listener.close()

def send():
    block = os.urandom(MIB)
    for _ in range(size // MIB):
        client.sendall(block)
    client.close()

def read():
    body = Body(LengthReader(SocketUnreader(server), size))
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    received = 0
    while True:
        data = body.read(MIB)
        if not data:
            break
        received += len(data)
    result["faults"] = (resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
                        - before)
    result["received"] = received

sender = threading.Thread(target=send)
reader = threading.Thread(target=read)
sender.start()
reader.start()
reader.join()
sender.join()
print(json.dumps(result))
"""

BODY_MIB = 256

glibc_only = pytest.mark.skipif(
    not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
    reason="the thresholds exist only in glibc")


def run_python(code, *arguments, environment=None):
    """Run ``code`` in a new interpreter; return its output, read as JSON.

    Without ``environment``, the interpreter gets this one's environment
    without the variables that set malloc's thresholds.
    """
    if environment is None:
        environment = {name: value for name, value in os.environ.items()
                       if name not in MALLOC_ENVIRONMENT}
    environment = dict(environment, PYTHONPATH=ROOT)
    output = subprocess.run([sys.executable, "-c", code, *arguments],
                            env=environment, cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    return json.loads(output)


@glibc_only
def test_thresholds_keep_body_buffers_mapped():
    result = run_python(READ_BODY, str(BODY_MIB), "set")

    assert result["set"] is True
    assert result["received"] == BODY_MIB * MIB
    # Each fresh 4 KiB page costs one fault, so a body read through new
    # memory costs 256 faults per MiB, and gunicorn's copies several times
    # that. Reused memory costs none after the first reads.
    assert result["faults"] < BODY_MIB * 32


@glibc_only
def test_thresholds_left_to_operator_environment():
    code = ("import json\nfrom simplestack import streams\n"
            "print(json.dumps(streams.set_malloc_thresholds()))")
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")

    assert run_python(code) is True
    assert run_python(code, environment=environment) is False
