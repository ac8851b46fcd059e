"""simplestack.logs.BufferedStreamHandler, which production.ini's console
handler is: lines of concurrent requests go out in batches, never lost at a
normal exit."""

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyramid.request import Request
from pyramid.threadlocal import manager

from simplestack import logs
from tests.conftest import make_token
from tests.operations.servers import ProductionServer
from tests.server import ROOT

INTERVAL = 0.2
# The background writer may run late on a loaded machine.
MAX_DELAY = INTERVAL + 0.5


@pytest.fixture
def stream():
    return io.StringIO()


@pytest.fixture
def logger(stream):
    handler = logs.BufferedStreamHandler(stream, flush_interval=INTERVAL)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.log_buffer")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger
    logger.removeHandler(handler)
    handler.close()


@pytest.fixture
def two_requests():
    """Two requests in progress, as the request tween counts them."""
    tokens = [logs.request_started(), logs.request_started()]
    yield tokens
    for token in tokens:
        logs.request_finished(token)


def lines_of(stream):
    return stream.getvalue().splitlines()


def wait_for_lines(stream, count, timeout):
    deadline = time.monotonic() + timeout
    while len(lines_of(stream)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return lines_of(stream)


def test_writes_at_once_without_other_requests(logger, stream):
    logger.info("alone")
    assert lines_of(stream) == ["alone"]

    token = logs.request_started()
    try:
        logger.info("one request")
    finally:
        logs.request_finished(token)
    assert lines_of(stream) == ["alone", "one request"]


def test_holds_lines_of_concurrent_requests(logger, stream, two_requests):
    started = time.monotonic()
    logger.info("first")
    logger.info("second")

    assert lines_of(stream) == []
    assert wait_for_lines(stream, 2, MAX_DELAY) == ["first", "second"]
    assert time.monotonic() - started < MAX_DELAY


def test_writes_again_after_a_batch(logger, stream, two_requests):
    logger.info("first")
    assert wait_for_lines(stream, 1, MAX_DELAY) == ["first"]

    logger.info("second")
    assert wait_for_lines(stream, 2, MAX_DELAY) == ["first", "second"]


def test_warning_writes_held_lines_in_order(logger, stream, two_requests):
    logger.info("first")
    logger.debug("second")
    logger.warning("third")

    assert lines_of(stream) == ["first", "second", "third"]


def test_last_request_end_writes_held_lines(logger, stream):
    first, second = logs.request_started(), logs.request_started()
    logger.info("held")
    logs.request_finished(first)
    assert lines_of(stream) == []

    logs.request_finished(second)
    assert lines_of(stream) == ["held"]


def test_size_limit_writes_at_once(logger, stream, two_requests):
    logger.info("x" * logs.MAX_BUFFERED_CHARACTERS)
    assert len(lines_of(stream)) == 1


def test_held_json_keeps_values_of_the_call(stream, two_requests):
    handler = logs.BufferedStreamHandler(stream, flush_interval=0.9)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.log_buffer.json")
    logger.propagate = False
    logger.addHandler(handler)
    request = Request.blank("/")
    request.environ["simplestack.request_id"] = "held-1"
    fields = {"status": 200}
    manager.push({"request": request, "registry": None})
    try:
        logger.warning("before the batch")
        logger.info("status %(status)d", fields, extra={"hypervisor": "test"})
    finally:
        manager.pop()
    fields["status"] = 500

    assert len(lines_of(stream)) == 1
    handler.flush()
    logger.removeHandler(handler)
    handler.close()
    entries = [json.loads(line) for line in lines_of(stream)]
    assert [entry["message"] for entry in entries] == [
        "before the batch", "status 200"]
    assert entries[1]["request_id"] == "held-1"
    assert entries[1]["hypervisor"] == "test"
    assert entries[1]["level"] == "INFO"


def test_flush_and_close_write_held_lines(stream, two_requests):
    handler = logs.BufferedStreamHandler(stream, flush_interval=0.9)
    record = logging.makeLogRecord({"msg": "held", "levelno": logging.INFO})
    handler.handle(record)
    assert lines_of(stream) == []
    handler.flush()
    assert lines_of(stream) == ["held"]

    handler.handle(logging.makeLogRecord({"msg": "closing",
                                          "levelno": logging.INFO}))
    handler.close()
    assert lines_of(stream) == ["held", "closing"]


def test_zero_interval_writes_at_once(stream, two_requests):
    handler = logs.BufferedStreamHandler(stream, flush_interval=0)
    handler.handle(logging.makeLogRecord({"msg": "now",
                                          "levelno": logging.INFO}))
    handler.close()
    assert lines_of(stream) == ["now"]


@pytest.mark.parametrize("interval", [-0.1, 1, 5, "abc", None])
def test_invalid_interval_is_rejected(interval):
    with pytest.raises(ValueError, match="invalid flush_interval %r"
                       % (interval,)):
        logs.BufferedStreamHandler(io.StringIO(), flush_interval=interval)


BAD_INTERVAL_SCRIPT = """
import logging, sys
from simplestack import logs
try:
    logs.BufferedStreamHandler(sys.stderr, flush_interval=%r)
except ValueError as error:
    print(error, file=sys.stderr)
logging.shutdown()
"""


@pytest.mark.parametrize("interval", ["1", "abc"])
def test_invalid_interval_leaves_no_handler(interval):
    # logging.shutdown() flushes every handler that StreamHandler
    # registered, so a half-built one would fail there.
    finished = subprocess.run(
        [sys.executable, "-c", BAD_INTERVAL_SCRIPT % interval],
        capture_output=True, text=True, timeout=60, cwd=ROOT)

    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.splitlines() == [
        "BufferedStreamHandler: invalid flush_interval %r: expected a "
        "number of seconds, at least 0 and less than 1" % interval]


def test_many_threads_lose_no_line(logger, stream):
    threads = 16
    per_thread = 200

    def work(number):
        for index in range(per_thread):
            token = logs.request_started()
            try:
                logger.info("%d-%d", number, index)
            finally:
                logs.request_finished(token)

    workers = [threading.Thread(target=work, args=(number,))
               for number in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    lines = wait_for_lines(stream, threads * per_thread, MAX_DELAY)
    assert sorted(lines) == sorted(
        "%d-%d" % (number, index) for number in range(threads)
        for index in range(per_thread))
    for number in range(threads):
        own = [line for line in lines if line.startswith("%d-" % number)]
        assert own == ["%d-%d" % (number, index)
                       for index in range(per_thread)]


def test_forked_child_drops_parent_lines(tmp_path, two_requests):
    path = tmp_path / "child.log"
    with open(path, "w") as output:
        handler = logs.BufferedStreamHandler(output, flush_interval=0.9)
        handler.handle(logging.makeLogRecord({"msg": "parent",
                                              "levelno": logging.INFO}))
        pid = os.fork()
        if pid == 0:
            try:
                handler.handle(logging.makeLogRecord({
                    "msg": "child", "levelno": logging.INFO}))
                handler.flush()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        with open(path) as child_output:
            assert child_output.read().splitlines() == ["child"]
        handler.close()
    with open(path) as written:
        assert written.read().splitlines() == ["child", "parent"]


EXIT_SCRIPT = """
import logging, sys
from simplestack import logs
handler = logs.BufferedStreamHandler(sys.stderr, flush_interval=0.9)
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
first, second = logs.request_started(), logs.request_started()
for number in range(3):
    logging.info("line %d", number)
sys.exit(0)
"""


def test_normal_exit_writes_held_lines():
    finished = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True,
        timeout=60, cwd=ROOT)

    assert finished.returncode == 0, finished.stderr
    assert finished.stderr.splitlines() == ["line 0", "line 1", "line 2"]


def get_guests(url, request_id):
    request = urllib.request.Request(url + "/test/default/guests", headers={
        "x-simplestack-hypervisor-token": make_token(),
        "X-Request-ID": request_id})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def summaries(server):
    return {entry["request_id"] for entry in server.log_entries()
            if entry.get("logger") == "simplestack.requests"}


def test_production_writes_every_line(tmp_path):
    server = ProductionServer(str(tmp_path / "gunicorn.log"))
    server.start()
    try:
        ids = ["buffer-%d" % number for number in range(96)]
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(
                lambda request_id: get_guests(server.url, request_id), ids))
        assert statuses == [200] * len(ids)
        # Each worker writes its held lines when its last request ends,
        # before that request's response goes out.
        assert summaries(server) >= set(ids)
    finally:
        assert server.stop() == 0
