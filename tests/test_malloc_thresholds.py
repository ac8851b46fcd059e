"""glibc's malloc thresholds for image streams (simplestack.streams).

Each check runs in a new interpreter, because the thresholds are
process-wide and a process keeps them for good.
"""

import json
import os
import subprocess
import sys

import pytest

from simplestack import streams
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


# Start 12 threads that each hold a block of 1 MiB until all hold one,
# as the reading threads of concurrent exports hold their chunks while they
# wait for the hypervisor, and print how many malloc arenas the process has.
CONCURRENT_THREADS = """
import ctypes, json, os, re, sys, threading
from simplestack import streams

streams.set_malloc_thresholds()
if sys.argv[1] == "uncapped":
    # glibc's default cap on 64-bit systems: 8 arenas per core.
    ctypes.CDLL(None).mallopt(streams.M_ARENA_MAX, 8 * os.cpu_count())
threads = 12
holding = threading.Barrier(threads + 1)

def hold_block():
    block = bytes(1024 * 1024)
    holding.wait()
    holding.wait()

workers = [threading.Thread(target=hold_block) for _ in range(threads)]
for worker in workers:
    worker.start()
holding.wait()
libc = ctypes.CDLL(None)
libc.open_memstream.restype = ctypes.c_void_p
libc.open_memstream.argtypes = (ctypes.POINTER(ctypes.c_char_p),
                                ctypes.POINTER(ctypes.c_size_t))
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
text, size = ctypes.c_char_p(), ctypes.c_size_t()
memory_file = libc.open_memstream(ctypes.byref(text), ctypes.byref(size))
libc.malloc_info(0, memory_file)
libc.fclose(memory_file)
holding.wait()
for worker in workers:
    worker.join()
print(json.dumps(len(re.findall(r"<heap nr=", text.value.decode()))))
"""


@glibc_only
def test_arenas_capped_for_concurrent_threads():
    capped = run_python(CONCURRENT_THREADS, "capped")
    uncapped = run_python(CONCURRENT_THREADS, "uncapped")

    assert capped == streams.ARENA_MAX
    # Without the cap, most threads that malloc at once get an arena.
    assert uncapped > streams.ARENA_MAX
