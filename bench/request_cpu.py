"""Compare the CPU time of one GET /guests/{id} in the service and in a bare
Pyramid app, both in this process.

Run: .venv/bin/python bench/request_cpu.py [--rounds 7] [--requests 2000]
         [--profile service|bare]

Both applications are loaded from the same INI files as bench/throughput.py:
production.ini's [app:main] and logging sections, each app on its own copy
of a test driver file of 100 guests. Metrics are in multiprocess mode in a
temporary directory, and the log handler writes to /dev/null. The script
calls each WSGI application directly, ``--requests`` times in a row, in
rounds that alternate which side goes first, and measures the thread's CPU
time (time.thread_time), so the load of other processes changes the figures
far less than it changes wrk's. It prints microseconds of CPU per request
of each side (median of the rounds), the difference, which is the service's
own per-request work, and the median of the per-round ratios of bare to
service. That ratio leaves out the HTTP server's work, which both sides pay
under gunicorn, so it is lower than the ratio that throughput.py compares
with its target.

``--profile`` runs cProfile over one block of requests of one side instead
and prints the 40 functions with the most cumulative time.
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time

import backends
import throughput

from paste.deploy import loadapp
from webob import Request

GUEST_ID = "00000000-0000-0000-0000-000000000001"


def load_apps(folder):
    """Return the service and the bare app, loaded from INI files in
    ``folder`` with logging to /dev/null."""
    xml_paths = []
    for name in ("service.xml", "bare.xml"):
        path = os.path.join(folder, name)
        with open(path, "w") as document:
            document.write(backends.libvirt_seed_xml(throughput.GUESTS))
        xml_paths.append(path)
    service_ini = throughput.write_inis(folder, xml_paths[0])[0]
    bare_ini = throughput.write_inis(folder, xml_paths[1])[1]
    os.makedirs(os.path.join(folder, ".state"), exist_ok=True)
    backends.production_logging_to_devnull(service_ini)
    global_conf = {"http_port": "0"}
    service = loadapp("config:" + service_ini, global_conf=global_conf)
    bare = loadapp("config:" + bare_ini, global_conf=global_conf)
    return service, bare


def request_environ(path):
    return Request.blank(path, headers={
        throughput.TOKEN_HEADER: throughput.TOKEN}).environ


def call(app, environ):
    """Call ``app`` once with a copy of ``environ``; return status and body."""
    status_line = []

    def start_response(status, headers, exc_info=None):
        status_line.append(status)

    body = b"".join(app(dict(environ, **{"wsgi.input": io.BytesIO()}),
                        start_response))
    return status_line[0], body


def cpu_per_request(app, environ, requests):
    """Return the thread's CPU seconds per request over ``requests`` calls."""
    started = time.thread_time()
    for _ in range(requests):
        call(app, environ)
    return (time.thread_time() - started) / requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7,
                        help="timed blocks of each side (default: 7)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests in one block (default: 2000)")
    parser.add_argument("--profile", choices=("service", "bare"),
                        help="profile one block of this side instead")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-request-cpu-") as folder:
        service, bare = load_apps(folder)
        sides = {
            "service": (service, request_environ(
                "/test/bench/guests/" + GUEST_ID)),
            "bare": (bare, request_environ("/guests/" + GUEST_ID)),
        }
        bodies = {}
        for name, (app, environ) in sides.items():
            status, bodies[name] = call(app, environ)
            if not status.startswith("200"):
                raise RuntimeError("%s returned %s: %s" % (
                    name, status, bodies[name][:500]))
        if throughput.json.loads(bodies["service"]) != throughput.json.loads(
                bodies["bare"]):
            raise RuntimeError("the records differ:\n%s\n%s" % (
                bodies["service"], bodies["bare"]))
        # Warm-up: caches, lazy imports and the first metric files.
        for app, environ in sides.values():
            cpu_per_request(app, environ, 200)

        if options.profile:
            app, environ = sides[options.profile]
            profiler = cProfile.Profile()
            profiler.enable()
            cpu_per_request(app, environ, options.requests)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
            return

        seconds = {"service": [], "bare": []}
        order = ["service", "bare"]
        for number in range(options.rounds):
            for name in order if number % 2 == 0 else order[::-1]:
                app, environ = sides[name]
                seconds[name].append(
                    cpu_per_request(app, environ, options.requests))

    service_us = statistics.median(seconds["service"]) * 1e6
    bare_us = statistics.median(seconds["bare"]) * 1e6
    ratio = statistics.median(
        bare / service for service, bare in zip(seconds["service"],
                                                seconds["bare"]))
    load = os.getloadavg()
    print("GET /guests/{id} on the test driver, in-process, %d rounds of %d "
          "requests per side, load average %.1f" % (
              options.rounds, options.requests, load[0]))
    print("CPU per request: service %.0f us, bare Pyramid app %.0f us "
          "(medians); the service's own work %.0f us" % (
              service_us, bare_us, service_us - bare_us))
    # No HTTP server runs here. Under gunicorn both sides also pay its work
    # per request, so this ratio is lower than the one throughput.py checks.
    print("median of the per-round ratios bare / service %.2f" % ratio)


if __name__ == "__main__":
    main()
