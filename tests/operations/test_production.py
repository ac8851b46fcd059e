"""production.ini under gunicorn: several workers, one set of metrics."""

import glob
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CANARY_PASSWORD, make_token
from tests.operations.servers import ProductionServer, http_get

REQUEST_COUNT = 40
GUESTS_ENDPOINT = "/{hypervisor}/{host}/guests"
TOKEN_HEADER = "x-simplestack-hypervisor-token"


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    server = ProductionServer(
        str(tmp_path_factory.mktemp("production") / "gunicorn.log"))
    server.start()
    yield server
    server.stop()
    assert CANARY_PASSWORD not in server.read_log()


def request_counts(text):
    """Return the sum of simplestack_requests_total of guest lists."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "simplestack_requests_total"
                    and sample.labels["endpoint"] == GUESTS_ENDPOINT):
                total += sample.value
    return total


def scrape(server):
    status, headers, body = http_get(server.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    return body.decode("utf-8")


def send_requests(server, numbers):
    """Send a guest list for each of ``numbers``, eight at a time, each on
    a new connection; return their statuses."""
    def list_guests(number):
        status, headers, _ = http_get(
            server.url + "/test/default/guests",
            {TOKEN_HEADER: make_token(), "X-Request-ID": "prod-%d" % number})
        assert headers["X-Request-ID"] == "prod-%d" % number
        return status

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(list_guests, numbers))


def worker_pids(server, count=2, timeout=15):
    """Return the pids of gunicorn's workers once ``count`` have started."""
    master = server.process.pid
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/%d/task/%d/children" % (master, master)) as children:
            pids = sorted(int(pid) for pid in children.read().split())
        if len(pids) >= count or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def worker_request_counts(server):
    """Return {worker pid: guest lists it counted}."""
    counts = {}
    for path in glob.glob(os.path.join(server.metrics_dir, "counter_*.db")):
        pid = int(os.path.basename(path)[len("counter_"):-len(".db")])
        counts[pid] = sum(
            sample.value
            for metric in MultiProcessCollector.merge([path])
            for sample in metric.samples
            if sample.name == "simplestack_requests_total"
            and sample.labels["endpoint"] == GUESTS_ENDPOINT)
    return counts


def test_metrics_sum_over_workers(production):
    workers = worker_pids(production)
    assert len(workers) == 2
    half = REQUEST_COUNT // 2

    # With one worker stopped (SIGSTOP), the other accepts every
    # connection, so each half of the requests goes to one known worker,
    # and each scrape shows what the worker that answers it reports.
    for phase, (serving, stopped) in enumerate(
            ((workers[0], workers[1]), (workers[1], workers[0]))):
        os.kill(stopped, signal.SIGSTOP)
        try:
            numbers = range(phase * half, (phase + 1) * half)
            assert send_requests(production, numbers) == [200] * half
            assert request_counts(scrape(production)) == (phase + 1) * half
        finally:
            os.kill(stopped, signal.SIGCONT)

    assert worker_request_counts(production) == {
        workers[0]: half, workers[1]: half}
    # Both workers run again, and whichever one answers reports the total.
    for _ in range(6):
        assert request_counts(scrape(production)) == REQUEST_COUNT


def test_metrics_survive_killed_worker(production):
    before = request_counts(scrape(production))
    assert before >= 1
    pids = sorted(worker_request_counts(production))
    victim = pids[0]
    live_gauge = os.path.join(
        production.metrics_dir, "gauge_livesum_%d.db" % victim)
    assert os.path.exists(live_gauge)

    os.kill(victim, signal.SIGKILL)
    # gunicorn's master runs the child_exit hook, which removes the
    # worker's live gauges, and starts a new worker.
    deadline = time.monotonic() + 15
    while os.path.exists(live_gauge) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(live_gauge)

    for _ in range(4):
        assert request_counts(scrape(production)) == before


def test_json_log_has_request_fields(production):
    entries = production.log_entries()
    summaries = {entry["request_id"]: entry for entry in entries
                 if entry.get("logger") == "simplestack.requests"}
    for number in range(REQUEST_COUNT):
        entry = summaries["prod-%d" % number]
        assert entry["method"] == "GET"
        assert entry["path"] == "/test/default/guests"
        assert entry["hypervisor"] == "test"
        assert entry["status"] == 200
        assert entry["hypervisor_calls"] > 0
        assert entry["duration_ms"] >= 0
    assert CANARY_PASSWORD not in production.read_log()


def test_stops_cleanly_on_sigterm(tmp_path):
    server = ProductionServer(str(tmp_path / "gunicorn.log"))
    server.start()
    status, _, body = http_get(server.url + "/healthz")
    assert status == 200
    assert server.stop() == 0
    assert "Shutting down: Master" in server.read_log()


def test_start_removes_stale_metric_files(tmp_path):
    server = ProductionServer(str(tmp_path / "gunicorn.log"))
    os.makedirs(server.metrics_dir)
    stale = os.path.join(server.metrics_dir, "counter_999999.db")
    with open(stale, "wb") as metric_file:
        metric_file.write(b"left by an earlier run")
    try:
        server.start()
        assert not os.path.exists(stale)
        assert request_counts(scrape(server)) == 0
    finally:
        server.stop()


def test_workers_freeze_inherited_objects(production):
    workers = worker_pids(production)
    frozen = {}
    for entry in production.log_entries():
        if entry.get("logger") != "simplestack.gunicorn_hooks":
            continue
        match = re.fullmatch(r"worker (\d+): (\d+) objects of the master "
                             r"frozen for the garbage collector",
                             entry["message"])
        if match:
            frozen[int(match.group(1))] = int(match.group(2))
    assert len(workers) == 2
    for pid in workers:
        # The application and its libraries are tens of thousands of
        # objects; a freeze before the application loaded would find few.
        assert frozen.get(pid, 0) > 10000, (pid, frozen)
