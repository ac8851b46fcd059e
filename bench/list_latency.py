"""Time GET /guests through the service against the SDK's bulk call.

Run: .venv/bin/python bench/list_latency.py [--backends ...] [--repeats 7]

For each backend and guest count, the service (in-process under WebTest)
and the direct SDK call are timed in turn, ``--repeats`` times after one
warm-up each, and the script prints the median of each and their ratio.
The direct calls fetch the data of a guest record and nothing else:

- libvirt: listAllDomains and getAllDomainStats on a connection of its own
  to the same test-driver file;
- XenAPI: event.from with an empty token over VM, VBD, VDI,
  VM_guest_metrics and host, the classes the Xen adapter reads;
- pyVmomi: RetrievePropertiesEx (and any ContinueRetrievePropertiesEx
  pages) over a ContainerView of VMs and hosts, with the adapter's
  property paths. The view is created once, outside the timing.

The service's time includes its session set-up and logout on every
request (libvirt open, XAPI login, vSphere login), because it pays for
them per request. The direct side logs in once.
"""

import argparse
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


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure(backend, repeats):
    """Return (service median s, direct median s, guests listed)."""
    app = backends.make_app(backend)
    url = backend.prefix + "/guests"
    direct = DIRECT[backend.name](backend)
    try:
        listed = len(app.get(url).json)
        direct.fetch()
        service_times = []
        direct_times = []
        for _ in range(repeats):
            service_times.append(timed(lambda: app.get(url)))
            direct_times.append(timed(direct.fetch))
    finally:
        direct.close()
    return (statistics.median(service_times),
            statistics.median(direct_times), listed)


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

    rows = []
    started = time.monotonic()
    for name in options.backends.split(","):
        for guests in GUEST_COUNTS[name]:
            with backends.started_backend(name, guests) as backend:
                service, direct, listed = measure(backend, options.repeats)
            rows.append((name, guests, listed, service, direct))
            print("%s N=%d measured in %.1f s" % (
                name, guests, time.monotonic() - started), file=sys.stderr)

    print("GET /guests through the service against the SDK's bulk call, "
          "median of %d; target ratio <= %.1f" % (options.repeats,
                                                  TARGET_RATIO))
    row = "%-8s %7s %7s %12s %12s %8s %s"
    print(row % ("backend", "N", "listed", "service ms", "direct ms",
                 "ratio", "target met"))
    for name, guests, listed, service, direct in rows:
        ratio = service / direct
        print(row % (name, guests, listed, "%.1f" % (service * 1000),
                     "%.1f" % (direct * 1000), "%.2f" % ratio,
                     "yes" if ratio <= TARGET_RATIO else "no"))


if __name__ == "__main__":
    main()
