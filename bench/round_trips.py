"""Count hypervisor round trips per API call at N = 10 and N = 1000 guests.

Run: .venv/bin/python bench/round_trips.py [--backends libvirt,xen,vmware]

The service runs in-process under WebTest. Each endpoint is requested once
after a warm-up pass, and its calls are counted in two ways:

- total: ``hypervisor_calls`` of the service's request summary line, which
  includes session set-up (libvirt open, XAPI login, vSphere
  RetrieveServiceContent and Login) and logout;
- work: the calls without session set-up and logout, counted at the
  hypervisor where it can count them. The XAPI simulator counts calls per
  method (GET /simulator/stats). For libvirt and vSphere, which have no such
  counter, this script wraps the adapters' counting points (the libvirt
  adapter's ``_call``, the vSphere SOAP stub's ``InvokeMethod``) to record
  method names.

Only read endpoints are measured; see bench/README.md.
"""

import argparse
import collections
import logging
import re
import sys
import time

import backends

from simplestack.adapters.libvirt.calls import CallsMixin
from simplestack.adapters.vmware.session import CountingStub

GUEST_COUNTS = (10, 1000)

# Methods that open or close a hypervisor session, left out of "work".
SESSION_METHODS = {
    "xen": {"session.login_with_password", "session.logout"},
    "vmware": {"RetrieveServiceContent", "Login", "Logout"},
}

# Read endpoints after /{hypervisor}/{host}. {guest}, {disk}, {nic},
# {snapshot}, {storage}, {host} and {network} are the first item of the
# matching list; an endpoint whose list is empty is reported as "-".
ENDPOINTS = (
    "",
    "/hosts",
    "/hosts/{host}",
    "/storages",
    "/storages/{storage}",
    "/networks",
    "/networks/{network}",
    "/guests",
    "/guests/{guest}",
    "/guests/{guest}/disks",
    "/guests/{guest}/disks/{disk}",
    "/guests/{guest}/media_device",
    "/guests/{guest}/network_interfaces",
    "/guests/{guest}/network_interfaces/{nic}",
    "/guests/{guest}/snapshots",
    "/guests/{guest}/snapshots/{snapshot}",
    "/guests/{guest}/tags",
)


Count = collections.namedtuple("Count", "work total status methods")


class SummaryCapture(logging.Handler):
    """Store ``hypervisor_calls`` of the last request summary line."""

    PATTERN = re.compile(r"hypervisor_calls=(\d+)")

    def __init__(self):
        super().__init__(logging.INFO)
        self.last_calls = None

    def emit(self, record):
        match = self.PATTERN.search(record.getMessage())
        if match:
            self.last_calls = int(match.group(1))


class MethodRecorder:
    """Record the method name of each libvirt and vSphere adapter call."""

    def __init__(self):
        self.methods = collections.Counter()

    def install(self):
        recorder = self
        original_call = CallsMixin._call
        original_invoke = CountingStub.InvokeMethod

        def recorded_call(adapter, function, *args, domain=None):
            recorder.methods[getattr(function, "__name__", repr(function))] += 1
            return original_call(adapter, function, *args, domain=domain)

        def recorded_invoke(stub, mo, info, args, outerStub=None):  # noqa: N803
            recorder.methods[info.wsdlName] += 1
            return original_invoke(stub, mo, info, args, outerStub)

        CallsMixin._call = recorded_call
        CountingStub.InvokeMethod = recorded_invoke


def first_id(app, path, key="id"):
    response = app.get(path, status="*")
    if response.status_int != 200 or not response.json:
        return None
    return str(response.json[0][key])


def item_ids(app, prefix):
    """Return the ids that fill the endpoint templates, None where absent."""
    ids = {
        "host": first_id(app, prefix + "/hosts"),
        "storage": first_id(app, prefix + "/storages"),
        "network": first_id(app, prefix + "/networks"),
        "guest": first_id(app, prefix + "/guests"),
    }
    guest = prefix + "/guests/%s" % ids["guest"]
    ids["disk"] = first_id(app, guest + "/disks")
    ids["nic"] = first_id(app, guest + "/network_interfaces", key="mac")
    ids["snapshot"] = first_id(app, guest + "/snapshots")
    return ids


def fill(template, ids):
    names = re.findall(r"\{(\w+)\}", template)
    if any(ids.get(name) is None for name in names):
        return None
    return template.format(**ids)


def count_endpoints(backend, app, capture, recorder):
    """Return {endpoint: Count} for one started backend, None where an
    item the endpoint needs is absent."""
    ids = item_ids(app, backend.prefix)
    counts = {}
    for template in ENDPOINTS:
        path = fill(template, ids)
        if path is None:
            counts[template] = None
            continue
        url = backend.prefix + path
        app.get(url, status="*")  # warm-up
        if backend.simulator is not None and backend.name == "xen":
            backend.simulator.reset_stats()
        recorder.methods.clear()
        capture.last_calls = None
        response = app.get(url, status="*")
        if backend.name == "xen":
            methods = backend.simulator.stats()["calls"]
        else:
            methods = recorder.methods
        work = sum(number for method, number in methods.items()
                   if method not in SESSION_METHODS.get(backend.name, ()))
        counts[template] = Count(work, capture.last_calls,
                                 response.status_int, dict(methods))
    return counts


def format_count(count):
    if count is None:
        return "-"
    work, total, status, _methods = count
    text = "%d (%d)" % (work, total)
    return text if status == 200 else "%s %d" % (text, status)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(backends.BACKENDS),
                        help="comma-separated backends (default: all)")
    options = parser.parse_args()
    for name in options.backends.split(","):
        if name not in backends.BACKENDS:
            parser.error("invalid backend %r; expected names from %s"
                         % (name, ",".join(backends.BACKENDS)))

    capture = SummaryCapture()
    requests_logger = logging.getLogger("simplestack.requests")
    requests_logger.addHandler(capture)
    requests_logger.setLevel(logging.INFO)
    requests_logger.propagate = False
    recorder = MethodRecorder()
    recorder.install()

    results = {}
    started = time.monotonic()
    for name in options.backends.split(","):
        for guests in GUEST_COUNTS:
            with backends.started_backend(name, guests) as backend:
                app = backends.make_app(backend)
                results[name, guests] = count_endpoints(
                    backend, app, capture, recorder)
            print("%s N=%d counted in %.1f s" % (
                name, guests, time.monotonic() - started), file=sys.stderr)

    print("Hypervisor calls per request: without session set-up and "
          "logout (total in brackets); a status other than 200 follows.")
    row = "%-42s %-8s %-12s %-12s %s"
    print(row % ("endpoint", "backend", "N=10", "N=1000", "grew"))
    growing = []
    for name in options.backends.split(","):
        for template in ENDPOINTS:
            small = results[name, GUEST_COUNTS[0]][template]
            large = results[name, GUEST_COUNTS[1]][template]
            if small is None or large is None:
                grew = "-"
            else:
                grew = "yes" if large[0] > small[0] else "no"
            print(row % (template or "(pool)", name, format_count(small),
                         format_count(large), grew))
            if grew == "yes":
                growing.append((template, name, large.methods))

    if growing:
        print()
        print("Calls per method at N=%d where the count grew:" % GUEST_COUNTS[1])
        for template, name, methods in growing:
            listed = ", ".join("%s %d" % item for item in sorted(
                methods.items(), key=lambda item: -item[1]))
            print("%s %s: %s" % (name, template or "(pool)", listed))


if __name__ == "__main__":
    main()
