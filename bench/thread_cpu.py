"""Compare the CPU time of GET /guests/{id} in the service and in a bare
Pyramid app when many threads of one process call them at once.

Run: .venv/bin/python bench/thread_cpu.py [--rounds 3] [--requests 4800]
         [--threads 16]

The applications are those of bench/request_cpu.py, loaded into this
process the same way (production.ini's [app:main] and logging sections,
metrics in multiprocess mode, the log handler writing to /dev/null). For
each side, ``--threads`` threads call the WSGI application directly until
they have made ``--requests`` requests together, in rounds that alternate
which side goes first. The script prints the process's CPU time
(time.process_time) per request, which includes the cost of handing the
GIL between threads, and the context switches per request from
getrusage(2). A voluntary switch is a thread that blocked, on the GIL or
on a lock, an involuntary one a thread that the kernel preempted. With
``--threads 1`` the same figures show the work without contention.

``--cpu N`` runs the process on CPU N alone. Unpinned, the figures of a
run depend on whether another CPU is idle at that moment. When one is, a
thread woken for the GIL runs there at once, and the GIL moves between
CPUs on most releases. In runs here that cost up to about three times
the CPU time of one thread. Pinned runs repeat within a few microseconds.
"""

import argparse
import gc
import os
import resource
import statistics
import tempfile
import threading
import time

import request_cpu

GUEST_ID = request_cpu.GUEST_ID


def run_threads(app, environ, threads, requests):
    """Make ``requests`` calls of ``app`` from ``threads`` threads; return
    process CPU seconds, voluntary and involuntary context switches, each
    per request, and the wall seconds."""
    per_thread = requests // threads
    start = threading.Barrier(threads + 1)

    def work():
        start.wait()
        for _ in range(per_thread):
            request_cpu.call(app, environ)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = time.process_time()
    wall = time.monotonic()
    start.wait()
    for worker in workers:
        worker.join()
    wall = time.monotonic() - wall
    cpu = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    made = per_thread * threads
    return (cpu / made, (after.ru_nvcsw - usage.ru_nvcsw) / made,
            (after.ru_nivcsw - usage.ru_nivcsw) / made, wall)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3,
                        help="timed runs of each side (default: 3)")
    parser.add_argument("--requests", type=int, default=4800,
                        help="requests in one run, over all threads "
                             "(default: 4800)")
    parser.add_argument("--threads", type=int, default=16,
                        help="threads calling the application (default: 16)")
    parser.add_argument("--sides", default="service,bare",
                        help="comma-separated sides to run "
                             "(default: service,bare)")
    parser.add_argument("--cpu", type=int,
                        help="run on this CPU alone (default: any CPU)")
    options = parser.parse_args()
    if options.cpu is not None:
        os.sched_setaffinity(0, {options.cpu})
    order = options.sides.split(",")

    load_start = os.getloadavg()[0]
    results = {name: [] for name in order}
    with tempfile.TemporaryDirectory(prefix="bench-thread-cpu-") as folder:
        service, bare = request_cpu.load_apps(folder)
        sides = {
            "service": (service, request_cpu.request_environ(
                "/test/bench/guests/" + GUEST_ID)),
            "bare": (bare, request_cpu.request_environ(
                "/guests/" + GUEST_ID)),
        }
        for name in order:
            app, environ = sides[name]
            status, body = request_cpu.call(app, environ)
            if not status.startswith("200"):
                raise RuntimeError("%s returned %s: %s" % (
                    name, status, body[:500]))
            # Warm-up: caches, lazy imports, the first metric files, and one
            # connection or session per thread where the side keeps one.
            run_threads(app, environ, options.threads, 20 * options.threads)
        # As gunicorn's post_fork hook does in each worker.
        gc.collect()
        gc.freeze()

        for number in range(options.rounds):
            for name in order if number % 2 == 0 else order[::-1]:
                app, environ = sides[name]
                results[name].append(run_threads(
                    app, environ, options.threads, options.requests))

    print("GET /guests/{id} on the test driver, in-process, %d threads on "
          "%s, %d rounds of %d requests per side, load average %.1f at the "
          "start, %.1f at the end" % (
              options.threads, "any CPU" if options.cpu is None
              else "CPU %d" % options.cpu, options.rounds, options.requests,
              load_start, os.getloadavg()[0]))
    for name in order:
        runs = results[name]
        print("%-8s CPU per request %s us (median %.0f); context switches "
              "per request %.2f voluntary, %.2f involuntary; %.0f requests/s"
              % (name, " ".join("%.0f" % (run[0] * 1e6) for run in runs),
                 statistics.median(run[0] for run in runs) * 1e6,
                 statistics.median(run[1] for run in runs),
                 statistics.median(run[2] for run in runs),
                 statistics.median(options.requests / run[3]
                                   for run in runs)))


if __name__ == "__main__":
    main()
