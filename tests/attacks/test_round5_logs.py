"""Log lines of production.ini's gunicorn written to a pipe.

Under a process supervisor, gunicorn's master and workers share one stderr
pipe. BufferedStreamHandler wrote each batch of held lines with one write
of up to 64 KiB. Such a write is not atomic on a pipe, so the batches of
two workers interleaved inside lines, and request summaries were lost.
"""

import json
import os
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import make_token
from tests.operations.servers import ProductionServer

REQUESTS = 2000
# A long query makes gunicorn's access lines long, so that batches exceed
# the pipe's atomic write size sooner. The summary line logs no query.
QUERY = "?padding=" + "p" * 1500


class PipeLoggedServer(ProductionServer):
    """production.ini's gunicorn with its output sent to a FIFO that a
    slow reader drains, so that writers often find the pipe full."""

    def __init__(self, folder):
        fifo = os.path.join(folder, "log.fifo")
        os.mkfifo(fifo)
        super().__init__(fifo)
        self.chunks = []
        self.reader = threading.Thread(target=self._read_slowly, daemon=True)
        self.reader.start()

    def _read_slowly(self):
        with open(self.log_path, "rb", buffering=0) as fifo:
            while True:
                data = fifo.read(4096)
                if not data:
                    return
                self.chunks.append(data)
                time.sleep(0.002)

    def read_log(self):
        return b"".join(self.chunks).decode("utf-8", "replace")


@pytest.fixture
def server(tmp_path):
    running = PipeLoggedServer(str(tmp_path))
    running.start()
    yield running
    running.stop()


def get_guests(server, request_id):
    request = urllib.request.Request(
        server.url + "/test/default/guests" + QUERY, headers={
            "x-simplestack-hypervisor-token": make_token(),
            "X-Request-ID": request_id})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_pipe_lines_never_interleave(server):
    ids = ["pipe-%d" % number for number in range(REQUESTS)]
    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(
            lambda request_id: get_guests(server, request_id), ids))
    assert statuses == [200] * REQUESTS

    assert server.stop() == 0
    server.reader.join(30)
    assert not server.reader.is_alive()

    broken = []
    summaries = []
    for line in server.read_log().splitlines():
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            broken.append(line)
            continue
        if '{"time"' in line[1:]:
            broken.append(line)
        elif entry.get("logger") == "simplestack.requests":
            summaries.append(entry.get("request_id"))
    # The server's start check sends GET /healthz without a request id.
    summaries = [request_id for request_id in summaries
                 if str(request_id).startswith("pipe-")]
    assert broken == []
    assert sorted(summaries) == sorted(ids)
