"""Hypervisor logins per 1000 requests, with session reuse off and on.

    .venv/bin/python bench/sessions.py [--servers waitress,gunicorn]
        [--backends xen,vmware] [--requests 1000] [--clients 32]

The service runs under each production-like server (tests/derived_servers.py),
once with ``session_reuse`` off and once on. ``--clients`` threads send
``--requests`` requests of ``GET /guests/{id}`` in all. The simulators
count the logins themselves: the XAPI simulator's /simulator/stats counts
session.login_with_password per originator, and the vSphere launcher's
/simulator/stats counts SOAP Login calls. The target: with reuse on, at
most as many logins as the server has worker threads, because each thread
uses at most one session at a time.
"""

import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from servers import ServiceServer, run_concurrently  # noqa: E402
from tests.simulators.fixtures import XapiSimulator  # noqa: E402
from tests.simulators.vcsim_fixtures import VcsimSimulator  # noqa: E402

SERVERS = ("waitress", "gunicorn")
BACKENDS = ("xen", "vmware")
#: The originator that the service's Xen sessions log in with (the Xen
#: adapter's default ``originator`` setting).
XEN_ORIGINATOR = "simplestack"


def start_simulator(backend, folder):
    if backend == "xen":
        return XapiSimulator("--vms", "4").start()
    return VcsimSimulator("vpx", temporary_dir=folder).start()


def login_count(backend, simulator):
    if backend == "xen":
        return simulator.stats()["logins"].get(XEN_ORIGINATOR, 0)
    return simulator.stats()["logins"]


def guest_path(server, prefix, simulator):
    status, body = server.get(prefix + "/guests", simulator)
    if status != 200:
        raise RuntimeError("GET %s/guests returned %d: %r"
                           % (prefix, status, body[:200]))
    return "%s/guests/%s" % (prefix, json.loads(body)[0]["id"])


def measure(backend, kind, reuse, simulator, options):
    """Return (threads, logins, failures, wall seconds) of one run."""
    prefix = "/%s/%s" % (backend, simulator.netloc)
    settings = {backend: {"session_reuse": "true" if reuse else "false"}}
    with ServiceServer(kind, settings, name="sessions") as server:
        path = guest_path(server, prefix, simulator)
        before = login_count(backend, simulator)
        wall, statuses = run_concurrently(
            server, [path] * options.requests, simulator, options.clients)
        logins = login_count(backend, simulator) - before
    failures = sum(1 for status in statuses if status != 200)
    return server.threads, logins, failures, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    options = parser.parse_args()

    print("%d requests of GET /guests/{id} from %d client threads; target: "
          "with reuse on, logins at most the worker threads"
          % (options.requests, options.clients))
    print("%-8s %-9s %-7s %-6s %7s %16s %13s %7s %6s" % (
        "backend", "server", "threads", "reuse", "logins",
        "per_1000_requests", "logins/threads", "wall_s", "failed"))
    met = True
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        for backend in options.backends.split(","):
            simulator = start_simulator(backend, folder)
            try:
                for kind in options.servers.split(","):
                    for reuse in (False, True):
                        threads, logins, failures, wall = measure(
                            backend, kind, reuse, simulator, options)
                        if reuse and (logins > threads or failures):
                            met = False
                        print("%-8s %-9s %-7d %-6s %7d %16.1f %13.2f %7.1f "
                              "%6d" % (
                                  backend, kind, threads,
                                  "on" if reuse else "off", logins,
                                  logins * 1000.0 / options.requests,
                                  logins / threads, wall, failures))
            finally:
                simulator.stop()
    print("target %s" % ("met" if met else "NOT met"))


if __name__ == "__main__":
    main()
