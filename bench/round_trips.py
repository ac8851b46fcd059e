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

``--libvirtd`` counts ``GET /guests`` on the daemon of scripts/libvirtd
instead, at ``/qemu/localhost`` and ``/lxc/localhost``. The script creates
an active network with DHCP and three guests on it through the service:
one running, one paused, one stopped. Their names start with
``bench-rt-``. It counts three lists after a warm-up, prints the calls per
method of the one with the fewest calls, and removes what it created. The
list shows every domain of the daemon, so other guests that run meanwhile
(such as those of the tests) can add calls. An LXC container that is
neither running, paused nor stopped adds one state call, and another
active network one DHCPLeases call. With ``--reuse`` the service runs with
``session_reuse = true`` for both types, so the counted lists run on the
pooled connection that the warm-up opened. ``--states running,stopped``
creates only the guests of those states.
"""

import argparse
import collections
import contextlib
import logging
import re
import sys
import time

import backends
import libvirt
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main as make_service
from simplestack.adapters.libvirt.calls import CallsMixin
from simplestack.adapters.vmware.session import CountingStub
from simplestack.sessions import sessions_of
from tests.conftest import make_token

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


# Names of what --libvirtd creates on the daemon. The bridge name stays
# within Linux's 15-character interface names.
DAEMON_PREFIX = "bench-rt-"
DAEMON_NETWORK_XML = (
    "<network><name>bench-rt-net</name><bridge name='benchrt0'/>"
    "<ip address='10.213.54.1' netmask='255.255.255.0'><dhcp>"
    "<range start='10.213.54.10' end='10.213.54.99'/></dhcp></ip>"
    "</network>")
# The power action that puts each guest in its state. None leaves it
# stopped.
DAEMON_GUESTS = (("running", "start"), ("paused", "pause"),
                 ("stopped", None))
DAEMON_DRIVERS = ("qemu", "lxc")
DAEMON_LISTS = 3


@contextlib.contextmanager
def daemon_network():
    """Create the transient network of --libvirtd and destroy it on exit."""
    connection = libvirt.open("qemu:///system")
    try:
        network = connection.networkCreateXML(DAEMON_NETWORK_XML)
        try:
            yield network.name()
        finally:
            network.destroy()
    finally:
        connection.close()


def create_daemon_guests(app, prefix, network, guests):
    """Create ``guests``, entries of DAEMON_GUESTS, through the service;
    return their ids."""
    ids = []
    for label, action in guests:
        body = {"name": DAEMON_PREFIX + prefix.split("/")[1] + "-" + label,
                "memory": 64, "network": network}
        guest_id = app.post_json(prefix + "/guests", body).json["id"]
        ids.append(guest_id)
        power = prefix + "/guests/%s/power" % guest_id
        if action == "pause":
            app.put_json(power, {"state": "start"})
        if action is not None:
            app.put_json(power, {"state": action})
    return ids


def delete_daemon_guests(app, prefix, ids):
    for guest_id in ids:
        response = app.delete(prefix + "/guests/%s" % guest_id, status="*")
        if response.status_int not in (204, 404):
            print("could not delete guest %s: %s %s" % (
                guest_id, response.status, response.text), file=sys.stderr)


def make_daemon_app(driver, reuse):
    """Return the service from testing.ini in WebTest, with
    ``session_reuse`` on for the type ``driver`` when ``reuse`` is true."""
    settings = dict(get_appsettings(backends.TESTING_INI, name="main"))
    if reuse:
        settings["simplestack.hypervisor.%s.session_reuse" % driver] = "true"
    return TestApp(make_service({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


def networks_in_use(driver):
    """Return the number of active networks that the NICs of the
    daemon's ``driver`` domains name: the DHCPLeases calls of a list."""
    connection = libvirt.open({"qemu": "qemu:///system",
                               "lxc": "lxc:///"}[driver])
    try:
        active = {network.name() for network in connection.listAllNetworks(
            libvirt.VIR_CONNECT_LIST_NETWORKS_ACTIVE)}
        named = set()
        for domain in connection.listAllDomains(0):
            named.update(re.findall(r"<source network='([^']+)'",
                                    domain.XMLDesc(0)))
        return len(named & active)
    finally:
        connection.close()


def count_daemon_lists(capture, recorder, reuse, guests):
    """Return {driver: (Count with the fewest calls, states of the
    script's guests, active networks in use)} of GET /guests on the
    daemon, with the ``guests`` of DAEMON_GUESTS."""
    results = {}
    with daemon_network() as network:
        for driver in DAEMON_DRIVERS:
            prefix = "/%s/localhost" % driver
            backend = backends.Backend(driver, prefix, len(guests),
                                       None, None)
            app = make_daemon_app(driver, reuse)
            ids = []
            try:
                ids = create_daemon_guests(app, prefix, network, guests)
                app.get(prefix + "/guests")  # warm-up
                counts = [count_request(backend, app, capture, recorder,
                                        "GET", prefix + "/guests")
                          for _ in range(DAEMON_LISTS)]
                listed = {record["id"]: record["state"] for record
                          in app.get(prefix + "/guests").json}
                networks = networks_in_use(driver)
            finally:
                delete_daemon_guests(app, prefix, ids)
                sessions_of(app.app.registry).shutdown()
            states = [listed.get(guest_id) for guest_id in ids]
            results[driver] = (min(counts, key=lambda count: count.work),
                               states, networks)
    return results


def print_daemon_counts(results, reuse, guests):
    print("GET /guests on the daemon of scripts/libvirtd, with this script's"
          " guests (%s) on one active network; fewest calls of %d lists;"
          " session reuse %s" % (
              ", ".join(label for label, _action in guests),
              DAEMON_LISTS, "on" if reuse else "off"))
    for driver, (count, states, networks) in results.items():
        methods = ", ".join("%s %d" % item for item in sorted(
            count.methods.items()))
        print("%-5s %s: %s; listed states %s; active networks that the "
              "daemon's guests use: %d" % (
                  driver, format_count(count), methods, ", ".join(
                      str(state) for state in states), networks))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(backends.BACKENDS),
                        help="comma-separated backends (default: all)")
    parser.add_argument("--libvirtd", action="store_true",
                        help="count GET /guests on the QEMU and LXC drivers "
                        "of the daemon of scripts/libvirtd instead")
    parser.add_argument("--reuse", action="store_true",
                        help="with --libvirtd: turn session_reuse on, so "
                        "the counted lists run on a pooled connection")
    parser.add_argument("--states",
                        default=",".join(label for label, _action
                                         in DAEMON_GUESTS),
                        help="with --libvirtd: comma-separated states of "
                        "the script's guests (default: all of running, "
                        "paused, stopped)")
    options = parser.parse_args()
    if options.reuse and not options.libvirtd:
        parser.error("--reuse requires --libvirtd")
    guest_table = dict(DAEMON_GUESTS)
    states = options.states.split(",")
    if not states or any(state not in guest_table for state in states):
        parser.error("invalid --states %r; expected names from %s" % (
            options.states, ",".join(guest_table)))
    guests = [(state, guest_table[state]) for state in states]
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

    if options.libvirtd:
        print_daemon_counts(
            count_daemon_lists(capture, recorder, options.reuse, guests),
            options.reuse, guests)
        return

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
