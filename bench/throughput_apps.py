"""The bare Pyramid application that bench/throughput.py compares with the
service.

It has one route, ``/guests/{guest_id}``, and one plain view that makes the
libvirt calls of the service's ``GET /guests/{guest_id}`` on the test
driver and returns the same JSON record. pserve loads it from an INI file
with ``use = call:throughput_apps:bare_app`` and ``xml_path`` naming the
test driver file.
"""

import threading
import xml.etree.ElementTree as ET

import libvirt
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPNotFound

GIB = 1024 ** 3


def _discard_libvirt_error(context, error):
    """Discard a libvirt error instead of printing it to stderr, as the
    service does. The view's storageVolLookupByPath fails on every request."""


libvirt.registerErrorHandler(_discard_libvirt_error, None)
STATES = {
    libvirt.VIR_DOMAIN_RUNNING: "STARTED",
    libvirt.VIR_DOMAIN_BLOCKED: "STARTED",
    libvirt.VIR_DOMAIN_SHUTDOWN: "STARTED",
    libvirt.VIR_DOMAIN_PAUSED: "PAUSED",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "PAUSED",
    libvirt.VIR_DOMAIN_SHUTOFF: "STOPPED",
}


class GuestReader:
    """One connection to the test driver file, shared by the threads of a
    worker as the service shares its connection to a test driver file.

    The connection opens on the first request, in the worker process:
    pserve loads the application in gunicorn's master before it forks.
    """

    def __init__(self, xml_path):
        self.xml_path = xml_path
        self._connection = None
        self.hostname = None
        self.lock = threading.Lock()

    @property
    def connection(self):
        with self.lock:
            if self._connection is None:
                self._connection = libvirt.open("test://" + self.xml_path)
            return self._connection

    def read(self, guest_id):
        connection = self.connection
        domain = connection.lookupByUUIDString(guest_id)
        root = ET.fromstring(domain.XMLDesc(0))
        stats = connection.domainListGetStats(
            [domain], libvirt.VIR_DOMAIN_STATS_STATE)[0][1]
        state = STATES.get(stats["state.state"], "UNKNOWN")
        hdd = 0
        for disk in root.findall("devices/disk[@device='disk']"):
            hdd += _capacity(connection, domain, disk)
        vcpu = root.find("vcpu")
        host = None
        if state != "STOPPED":
            # The service keeps the host name for 10 s, so a request in a
            # run of requests does not ask for it. Two threads may both ask
            # on the first requests; both store the same name.
            if self.hostname is None:
                self.hostname = connection.getHostname()
            host = self.hostname
        return {
            "id": root.findtext("uuid").lower(),
            "name": root.findtext("name"),
            "cpus": int(vcpu.get("current") or vcpu.text),
            "memory": int(root.findtext("memory")) // 1024,
            "hdd": hdd // GIB,
            "paravirtualized": root.findtext("os/type") == "xen",
            "tools_up_to_date": None,
            "ip": None,
            "state": state,
            "host": host,
        }


def _capacity(connection, domain, disk):
    """Return the disk's size the way the service's adapter reads it on the
    test driver: from its volume, else from virDomainGetBlockInfo."""
    path = disk.find("source").get("file")
    try:
        return connection.storageVolLookupByPath(path).info()[1]
    except libvirt.libvirtError:
        target = disk.find("target").get("dev")
        return domain.blockInfo(target, 0)[0]


def bare_app(global_config, xml_path):
    reader = GuestReader(xml_path)

    def guest(request):
        try:
            return reader.read(request.matchdict["guest_id"])
        except libvirt.libvirtError:
            raise HTTPNotFound()

    config = Configurator()
    config.add_route("guest", "/guests/{guest_id}")
    config.add_view(guest, route_name="guest", renderer="json")
    return config.make_wsgi_app()
