"""Time GET /guests through the service against the SDK's bulk call.

Run: .venv/bin/python bench/list_latency.py [--backends ...] [--repeats 7]

For each backend and guest count, the service (in-process under WebTest)
and the direct SDK call are timed in turn, ``--repeats`` times after one
warm-up each, in repeats that alternate which side goes first. The script
prints for each side the median wall time, the median CPU time of this
process, and the number of full garbage collections in its timed calls,
and the ratios of the medians. On the libvirt test driver all the work
runs in this process, so the CPU ratio leaves out only the waits for a
core that other jobs cause. On the simulators the CPU time is the
client's work only. The direct calls fetch the data of a guest record and
nothing else:

- libvirt: listAllDomains and getAllDomainStats on a connection of its own
  to the same test-driver file;
- XenAPI: event.from with an empty token over VM, VBD, VDI,
  VM_guest_metrics and host, the classes the Xen adapter reads;
- pyVmomi: RetrievePropertiesEx (and any ContinueRetrievePropertiesEx
  pages) over a ContainerView of VMs and hosts, with the adapter's
  property paths. The view is created once, outside the timing.

The service's time includes its session set-up and logout on every
request (libvirt open, XAPI login, vSphere login), because it pays for
them per request, and WebTest's work as the client. The direct side logs
in once. The service's log lines go to /dev/null through production.ini's
logging sections, as request_cpu.py sets them up.

After the service is loaded and before the warm-ups, the script freezes
the objects of the process for the garbage collector, as production.ini's
gunicorn post_fork hook does in each worker. Objects made later (the
service's caches, each call's objects) stay collectable, and each side
pays the collections that fall in its calls.
"""

import argparse
import gc
import os
import statistics
import sys
import time

import backends
import libvirt
import XenAPI
from pyVmomi import vim, vmodl

from simplestack.adapters.vmware.guest_records import GUEST_PATHS
from simplestack.adapters.xen.constants import GUEST_CLASSES
from tests.xen_fixtures import CATransport

# Guest counts per backend. On a 2-core machine the XAPI simulator took
# 28 s to seed 10000 VMs and the vSphere simulator 10 s.
GUEST_COUNTS = {
    "libvirt": (1000, 10000),
    "xen": (1000, 10000),
    "vmware": (1000, 10000),
}

# Target of the list latency: at most this many times the SDK's bulk call.
TARGET_RATIO = 1.3


class LibvirtDirect:
    def __init__(self, backend):
        self.connection = libvirt.open("test://" + backend.xml_path)

    def fetch(self):
        domains = self.connection.listAllDomains(0)
        stats = self.connection.getAllDomainStats()
        return len(domains), len(stats)

    def close(self):
        self.connection.close()


class XenDirect:
    def __init__(self, backend):
        simulator = backend.simulator
        self.session = XenAPI.Session(
            simulator.url, transport=CATransport(simulator.ca_bundle))
        self.session.xenapi.login_with_password(
            simulator.username, simulator.password, "1.0", "bench")

    def fetch(self):
        # "from" is a Python keyword, so the method is reached with getattr.
        event_from = getattr(self.session.xenapi.event, "from")
        batch = event_from(list(GUEST_CLASSES), "", 0.0)
        return len(batch["events"])

    def close(self):
        self.session.xenapi.session.logout()


class VmwareDirect:
    def __init__(self, backend):
        self.sessions = backend.simulator.session()
        service = self.sessions.__enter__()
        content = service.RetrieveContent()
        self.collector = content.propertyCollector
        self.view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine, vim.HostSystem], True)
        collector = vmodl.query.PropertyCollector
        traversal = collector.TraversalSpec(
            name="view", path="view", skip=False, type=vim.view.ContainerView)
        self.spec = collector.FilterSpec(
            objectSet=[collector.ObjectSpec(obj=self.view, skip=True,
                                            selectSet=[traversal])],
            propSet=[collector.PropertySpec(type=vim.VirtualMachine,
                                            pathSet=list(GUEST_PATHS)),
                     collector.PropertySpec(type=vim.HostSystem,
                                            pathSet=["name"])])
        self.options = collector.RetrieveOptions()

    def fetch(self):
        count = 0
        result = self.collector.RetrievePropertiesEx([self.spec], self.options)
        while result is not None:
            count += len(result.objects)
            if not result.token:
                break
            result = self.collector.ContinueRetrievePropertiesEx(result.token)
        return count

    def close(self):
        self.view.DestroyView()
        self.sessions.__exit__(None, None, None)


DIRECT = {"libvirt": LibvirtDirect, "xen": XenDirect, "vmware": VmwareDirect}


class FullCollections:
    """Counter of the garbage collector's full (generation 2) collections."""

    def __init__(self):
        self.count = 0

    def __call__(self, phase, info):
        if phase == "stop" and info["generation"] == 2:
            self.count += 1


def timed(function, collections):
    """Return (wall seconds, CPU seconds of this process, full collections)
    of one call of ``function``."""
    before = collections.count
    started = time.perf_counter()
    cpu_started = time.process_time()
    function()
    return (time.perf_counter() - started,
            time.process_time() - cpu_started, collections.count - before)


def measure(backend, repeats):
    """Return (guests listed, {side: (median wall s, median CPU s, full
    collections)}) for the sides "service" and "direct"."""
    app = backends.make_app(backend)
    url = backend.prefix + "/guests"
    direct = DIRECT[backend.name](backend)
    collections = FullCollections()
    gc.collect()
    gc.freeze()
    gc.callbacks.append(collections)
    try:
        listed = len(app.get(url).json)
        direct.fetch()
        sides = {"service": lambda: app.get(url), "direct": direct.fetch}
        samples = {"service": [], "direct": []}
        order = ["service", "direct"]
        for number in range(repeats):
            for name in order if number % 2 == 0 else order[::-1]:
                samples[name].append(timed(sides[name], collections))
    finally:
        gc.callbacks.remove(collections)
        gc.unfreeze()
        direct.close()
    results = {}
    for name, rows in samples.items():
        walls, cpus, full = zip(*rows)
        results[name] = (statistics.median(walls), statistics.median(cpus),
                         sum(full))
    return listed, results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(backends.BACKENDS),
                        help="comma-separated backends (default: all)")
    parser.add_argument("--repeats", type=int, default=7,
                        help="timed repetitions of each side (default: 7)")
    options = parser.parse_args()
    for name in options.backends.split(","):
        if name not in backends.BACKENDS:
            parser.error("invalid backend %r; expected names from %s"
                         % (name, ",".join(backends.BACKENDS)))

    backends.production_logging_to_devnull()
    load_at_start = os.getloadavg()
    rows = []
    started = time.monotonic()
    for name in options.backends.split(","):
        for guests in GUEST_COUNTS[name]:
            with backends.started_backend(name, guests) as backend:
                listed, results = measure(backend, options.repeats)
            rows.append((name, guests, listed, results))
            print("%s N=%d measured in %.1f s" % (
                name, guests, time.monotonic() - started), file=sys.stderr)

    print("GET /guests through the service against the SDK's bulk call, "
          "median of %d; target ratio <= %.1f; load average %.1f at the "
          "start, %.1f at the end" % (options.repeats, TARGET_RATIO,
                                      load_at_start[0], os.getloadavg()[0]))
    row = "%-8s %6s %6s %11s %10s %6s %11s %10s %6s %8s %s"
    print(row % ("backend", "N", "listed", "service ms", "direct ms",
                 "ratio", "service cpu", "direct cpu", "ratio", "full gc",
                 "target met"))
    for name, guests, listed, results in rows:
        service_wall, service_cpu, service_full = results["service"]
        direct_wall, direct_cpu, direct_full = results["direct"]
        ratio = service_wall / direct_wall
        print(row % (name, guests, listed, "%.1f" % (service_wall * 1000),
                     "%.1f" % (direct_wall * 1000), "%.2f" % ratio,
                     "%.1f" % (service_cpu * 1000),
                     "%.1f" % (direct_cpu * 1000),
                     "%.2f" % (service_cpu / direct_cpu),
                     "%d / %d" % (service_full, direct_full),
                     "yes" if ratio <= TARGET_RATIO else "no"))
    print("cpu: CPU ms of this process; full gc: full garbage collections "
          "in the timed calls of the service / the direct side")


if __name__ == "__main__":
    main()
