"""Count hypervisor round trips per API call at N = 10 and N = 1000 guests.

Run: .venv/bin/python bench/round_trips.py [--backends libvirt,xen,vmware]

The service runs in-process under WebTest. Each read endpoint is requested
once after one warm-up request, and its calls are counted in two ways:

- total: ``hypervisor_calls`` of the service's request summary line, which
  includes session set-up (libvirt open, XAPI login, vSphere
  RetrieveServiceContent and Login) and logout;
- work: the calls without session set-up and logout, counted at the
  hypervisor where it can count them. The XAPI simulator counts calls per
  method (GET /simulator/stats). For libvirt and vSphere, which have no such
  counter, this script wraps the adapters' counting points (the libvirt
  adapter's ``_call``, the vSphere SOAP stub's ``InvokeMethod``) to record
  method names.

The read endpoints are measured, and of the writes only those that create
the tag and the snapshot the reads need. See bench/README.md.
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
# {snapshot}, {tag}, {storage}, {host} and {network} are the item of the
# matching list whose name sorts first, and an endpoint whose list is empty
# is reported as "-".
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
    "/guests/{guest}/tags/{tag}",
)

# Writes on the guest whose name sorts first: (endpoint, JSON body). Each
# is sent once, with no warm-up, so the guest has one tag and one snapshot.
WRITES = (
    ("/guests/{guest}/tags", {"name": "bench-tag"}),
    ("/guests/{guest}/snapshots", {"name": "bench-snapshot"}),
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


def first_id(app, path, key="id", name_key="name"):
    """Return ``key`` of the item of the list at ``path`` whose name sorts
    first, or None when the list is empty or fails.

    Ids such as the XAPI simulator's UUIDs differ between runs and seeds,
    but the seeded names do not, so the same item is measured at every N.
    """
    response = app.get(path, status="*")
    if response.status_int != 200 or not response.json:
        return None
    item = min(response.json, key=lambda item: str(item.get(name_key)))
    return str(item[key])


def item_ids(app, prefix):
    """Return the ids that fill the endpoint templates, None where absent."""
    ids = {
        "host": first_id(app, prefix + "/hosts"),
        "storage": first_id(app, prefix + "/storages"),
        "network": first_id(app, prefix + "/networks", name_key="name_label"),
        "guest": first_id(app, prefix + "/guests"),
    }
    guest = prefix + "/guests/%s" % ids["guest"]
    ids["disk"] = first_id(app, guest + "/disks")
    ids["nic"] = first_id(app, guest + "/network_interfaces", key="mac",
                          name_key="number")
    ids["snapshot"] = first_id(app, guest + "/snapshots")
    tags = app.get(guest + "/tags", status="*")
    ids["tag"] = tags.json[0] if tags.status_int == 200 and tags.json else None
    return ids


def fill(template, ids):
    names = re.findall(r"\{(\w+)\}", template)
    if any(ids.get(name) is None for name in names):
        return None
    return template.format(**ids)


def count_request(backend, app, capture, recorder, method, url, body=None):
    """Send one request and return its Count."""
    if backend.name == "xen":
        backend.simulator.reset_stats()
    recorder.methods.clear()
    capture.last_calls = None
    if body is None:
        response = app.request(url, method=method, status="*")
    else:
        response = app.post_json(url, body, status="*")
    if backend.name == "xen":
        methods = backend.simulator.stats()["calls"]
    else:
        methods = recorder.methods
    work = sum(number for name, number in methods.items()
               if name not in SESSION_METHODS.get(backend.name, ()))
    return Count(work, capture.last_calls, response.status_int, dict(methods))


def count_endpoints(backend, app, capture, recorder):
    """Return {endpoint: Count} for one started backend, None where an
    item the endpoint needs is absent.

    The writes come first, once each, because they create the tag and
    snapshot that the read endpoints of one item need.
    """
    counts = {}
    guest = first_id(app, backend.prefix + "/guests")
    for template, body in WRITES:
        url = backend.prefix + template.format(guest=guest)
        counts["POST " + template] = count_request(
            backend, app, capture, recorder, "POST", url, body)

    ids = item_ids(app, backend.prefix)
    for template in ENDPOINTS:
        path = fill(template, ids)
        if path is None:
            counts[template] = None
            continue
        url = backend.prefix + path
        app.get(url, status="*")  # warm-up
        counts[template] = count_request(backend, app, capture, recorder,
                                         "GET", url)
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
    templates = ["POST " + template for template, _body in WRITES]
    templates += list(ENDPOINTS)
    for name in options.backends.split(","):
        for template in templates:
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
