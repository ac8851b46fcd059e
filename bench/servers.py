"""Helpers of the benchmarks that run the service under its real servers.

The servers themselves are in tests/derived_servers.py.
"""

import concurrent.futures
import glob
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from tests.derived_servers import ServiceServer, derive_ini  # noqa: E402,F401

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree_cpu_seconds(root_pid):
    """Return the user and system CPU seconds of ``root_pid`` and its live
    descendants, read from /proc (Linux)."""
    parents = {}
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                data = stat.read()
        except OSError:
            continue  # the process has exited
        # The command name may contain spaces and parentheses.
        fields = data.rsplit(")", 1)[1].split()
        pid = int(entry)
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
    total = 0
    for pid, used in ticks.items():
        ancestor = pid
        while ancestor and ancestor != root_pid:
            ancestor = parents.get(ancestor, 0)
        if ancestor == root_pid:
            total += used
    return total / CLOCK_TICKS


def worker_request_counts(port):
    """Return {worker pid: requests counted} of the gunicorn instance on
    ``port``, from the metric file of each worker process in
    production.ini's metrics_dir (.state/metrics/PORT)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counts = {}
    pattern = os.path.join(ROOT, ".state", "metrics", str(port),
                           "counter_*.db")
    for path in glob.glob(pattern):
        pid = int(os.path.basename(path)[len("counter_"):-len(".db")])
        counts[pid] = sum(
            sample.value
            for metric in MultiProcessCollector.merge([path])
            for sample in metric.samples
            if sample.name == "simplestack_requests_total")
    return counts


def run_concurrently(server, paths, simulator, clients):
    """GET every path of ``paths`` from ``clients`` threads at once; return
    the wall time in seconds and the statuses."""
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        started = time.monotonic()
        statuses = list(pool.map(
            lambda path: server.get(path, simulator)[0], paths))
        wall = time.monotonic() - started
    return wall, statuses


def set_server_options(server, options):
    """Replace or add ``options`` ({key: value}) in the [server:main]
    section of ``server``'s INI copy; call before the server starts."""
    if options:
        derive_ini(server.ini_path, {"server:main": options}, server.ini_path)
