"""Concurrent requests against simulators that add latency to every call.

    .venv/bin/python bench/concurrency.py [--servers waitress,gunicorn]
        [--backends xen,vmware] [--clients 32] [--latency 0.1]
        [--worker-connections N] [--worker-class CLASS]

Each simulator adds ``--latency`` seconds to every call (the XAPI
simulator's /simulator/latency, the vSphere launcher's -delay-ms). The
service runs under each production-like server (tests/derived_servers.py). For
``GET /guests/{id}`` and ``GET /guests``, the script times one request
alone (the median of 3, after a warm-up), then ``--clients`` requests sent
at once. It prints the wall time divided by the ideal, which is the time
alone x ceil(clients / the server's worker threads). A global lock or serialised
hypervisor calls would make the ratio grow with the number of clients.

The ``direct`` rows send the same number of concurrent sessions straight
to the simulator through the SDK (log in, the two calls of the Xen
adapter's guest list or one vSphere RetrieveContent, log out), without the
service: their ratio is what the simulator and the machine allow.

It also prints the CPU seconds that this process and its children (the
server, the simulator, the client threads) used during the concurrent run,
divided by the CPU count: the wall time cannot be shorter than that, so a
ratio above the target with ``cpu_bound_s`` near ``wall_s`` means the
machine's CPUs, not the service's concurrency, set the time. ``sim_cpu_s``
is the simulator's share of that CPU time, undivided. The XAPI simulator
is one Python process, so its Python code uses at most one CPU at a time.
Under gunicorn, ``busiest`` is the number of the concurrent requests that
the busiest worker served, from the workers' metric files: with 2 workers
of 16 threads and 32 clients, 16 means an even spread.
"""

import argparse
import concurrent.futures
import json
import math
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from servers import (  # noqa: E402
    ServiceServer, process_tree_cpu_seconds, run_concurrently,
    set_server_options, worker_request_counts)
from simplestack.adapters.xen.constants import (  # noqa: E402
    GUEST_DEVICE_CLASSES, GUEST_VM_QUERY)
from tests.simulators.fixtures import XapiSimulator  # noqa: E402
from tests.xen_fixtures import xapi_session  # noqa: E402
from tests.simulators.vcsim_fixtures import VcsimSimulator  # noqa: E402

TARGET_RATIO = 1.5
SERVERS = ("waitress", "gunicorn")
BACKENDS = ("xen", "vmware")
SINGLE_REPEATS = 3


def start_simulator(backend, latency, folder):
    if backend == "xen":
        simulator = XapiSimulator("--vms", "4").start()
        simulator.set_latency(latency)
        return simulator
    return VcsimSimulator("vpx", temporary_dir=folder,
                          delay_ms=int(round(latency * 1000))).start()


def time_alone(server, path, simulator):
    status, _ = server.get(path, simulator)
    if status != 200:
        raise RuntimeError("GET %s returned %d" % (path, status))
    timings = []
    for _ in range(SINGLE_REPEATS):
        started = time.monotonic()
        server.get(path, simulator)
        timings.append(time.monotonic() - started)
    return statistics.median(timings)


def first_guest_path(server, prefix, simulator):
    status, body = server.get(prefix + "/guests", simulator)
    if status != 200:
        raise RuntimeError("GET %s/guests returned %d: %r"
                           % (prefix, status, body[:200]))
    guests = json.loads(body)
    return "%s/guests/%s" % (prefix, guests[0]["id"])


def direct_session(backend, simulator):
    """Log in, make the calls of the Xen adapter's guest list (or one
    vSphere call) and log out through the SDK."""
    if backend == "xen":
        with xapi_session(simulator, originator="bench-direct") as xenapi:
            xenapi.VM.get_all_records_where(GUEST_VM_QUERY)
            getattr(xenapi.event, "from")(list(GUEST_DEVICE_CLASSES), "", 0.0)
    else:
        with simulator.session() as service:
            service.RetrieveContent().about.instanceUuid


def measure_direct(backend, simulator, clients):
    """Return the row of ``clients`` direct sessions at once."""
    direct_session(backend, simulator)
    timings = []
    for _ in range(SINGLE_REPEATS):
        started = time.monotonic()
        direct_session(backend, simulator)
        timings.append(time.monotonic() - started)
    alone = statistics.median(timings)
    cpu_before = process_tree_cpu_seconds(os.getpid())
    simulator_before = process_tree_cpu_seconds(simulator.process.pid)
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        started = time.monotonic()
        list(pool.map(lambda _: direct_session(backend, simulator),
                      range(clients)))
        wall = time.monotonic() - started
    cpu = process_tree_cpu_seconds(os.getpid()) - cpu_before
    simulator_cpu = (process_tree_cpu_seconds(simulator.process.pid)
                     - simulator_before)
    return ("SDK session", alone, wall, alone, wall / alone,
            cpu / os.cpu_count(), simulator_cpu, "-", 0)


def measure(server, prefix, simulator, clients):
    """Return rows (endpoint, alone, wall, ideal, ratio, CPU bound,
    simulator CPU, requests of the busiest gunicorn worker, failures)."""
    rows = []
    guest_path = first_guest_path(server, prefix, simulator)
    for endpoint, path in (("GET /guests/{id}", guest_path),
                           ("GET /guests", prefix + "/guests")):
        alone = time_alone(server, path, simulator)
        cpu_before = process_tree_cpu_seconds(os.getpid())
        simulator_before = process_tree_cpu_seconds(simulator.process.pid)
        counts_before = worker_request_counts(server.port)
        wall, statuses = run_concurrently(server, [path] * clients,
                                          simulator, clients)
        cpu = process_tree_cpu_seconds(os.getpid()) - cpu_before
        simulator_cpu = (process_tree_cpu_seconds(simulator.process.pid)
                         - simulator_before)
        busiest = "-"
        if server.kind == "gunicorn":
            counts = worker_request_counts(server.port)
            busiest = "%d" % max(count - counts_before.get(pid, 0)
                                 for pid, count in counts.items())
        ideal = alone * math.ceil(clients / server.threads)
        failures = sum(1 for status in statuses if status != 200)
        rows.append((endpoint, alone, wall, ideal, wall / ideal,
                     cpu / os.cpu_count(), simulator_cpu, busiest,
                     failures))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1,
                        help="seconds the simulators add to every call")
    parser.add_argument("--worker-connections", type=int,
                        help="gunicorn's worker_connections, the connections "
                             "a worker holds at most, idle keep-alive ones "
                             "included (default: production.ini's)")
    parser.add_argument("--worker-class",
                        help="gunicorn's worker_class, such as gthread, "
                             "the worker of gunicorn itself (default: "
                             "production.ini's)")
    options = parser.parse_args()
    gunicorn_options = {}
    if options.worker_connections:
        gunicorn_options["worker_connections"] = options.worker_connections
    if options.worker_class:
        gunicorn_options["worker_class"] = options.worker_class

    print("%d concurrent requests, %.0f ms added to every hypervisor call; "
          "target: wall / ideal at most %.1f"
          % (options.clients, options.latency * 1000, TARGET_RATIO))
    print("%d CPUs, load average at start %.1f"
          % (os.cpu_count(), os.getloadavg()[0]))
    for key, value in gunicorn_options.items():
        print("gunicorn %s = %s" % (key, value))
    print("%-8s %-9s %-7s %-17s %8s %8s %8s %6s %12s %10s %8s %s" % (
        "backend", "server", "threads", "endpoint", "alone_s", "wall_s",
        "ideal_s", "ratio", "cpu_bound_s", "sim_cpu_s", "busiest", "failed"))
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        for backend in options.backends.split(","):
            simulator = start_simulator(backend, options.latency, folder)
            try:
                prefix = "/%s/%s" % (backend, simulator.netloc)
                row = measure_direct(backend, simulator, options.clients)
                print("%-8s %-9s %-7s %-17s %8.2f %8.2f %8.2f %6.2f %12.2f "
                      "%10.2f %8s %d" % ((backend, "direct", "-") + row))
                for kind in options.servers.split(","):
                    server = ServiceServer(kind, name="concurrency")
                    if kind == "gunicorn":
                        set_server_options(server, gunicorn_options)
                    with server:
                        for row in measure(server, prefix, simulator,
                                           options.clients):
                            (endpoint, alone, wall, ideal, ratio,
                             cpu_bound, simulator_cpu, busiest,
                             failed) = row
                            worst = max(worst, ratio)
                            print("%-8s %-9s %-7d %-17s %8.2f %8.2f %8.2f "
                                  "%6.2f %12.2f %10.2f %8s %d" % (
                                      backend, kind, server.threads,
                                      endpoint, alone, wall, ideal, ratio,
                                      cpu_bound, simulator_cpu, busiest,
                                      failed))
            finally:
                simulator.stop()
    print("load average at end %.1f" % os.getloadavg()[0])
    print("worst ratio %.2f (target at most %.1f): %s"
          % (worst, TARGET_RATIO, "met" if worst <= TARGET_RATIO
             else "NOT met"))


if __name__ == "__main__":
    main()
