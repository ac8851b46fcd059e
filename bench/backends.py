"""Backends seeded with N guests, and the service in-process, for the
benchmarks.

Each backend context manager yields a ``Backend``: the service path prefix
(``/test/name``, ``/xen/127.0.0.1:PORT``, ``/vmware/127.0.0.1:PORT``) and
what the direct SDK measurements need. Simulators run as subprocesses of
this process and are stopped by their pid on exit.
"""

import collections
import contextlib
import logging.config
import os
import re
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from pyramid.paster import get_appsettings  # noqa: E402
from webtest import TestApp  # noqa: E402

from simplestack import main  # noqa: E402
from tests.conftest import make_token  # noqa: E402
from tests.simulators.fixtures import XapiSimulator  # noqa: E402
from tests.simulators.vcsim_fixtures import VcsimSimulator  # noqa: E402

TESTING_INI = os.path.join(ROOT, "testing.ini")
PRODUCTION_INI = os.path.join(ROOT, "production.ini")
BACKENDS = ("libvirt", "xen", "vmware")

Backend = collections.namedtuple("Backend", "name prefix guests simulator xml_path")


def libvirt_seed_xml(guests):
    """Return a libvirt test-driver node document with ``guests`` running
    domains (the test driver starts them), each with a disk, an empty CD
    drive and a NIC, one network and the pool
    ``default-pool``."""
    domains = []
    for index in range(guests):
        domains.append(
            "<domain type='test'><name>bench-%05d</name><uuid>%s</uuid>"
            "<memory unit='MiB'>512</memory><vcpu>1</vcpu>"
            "<os><type>hvm</type></os><devices>"
            "<disk type='file' device='disk'>"
            "<source file='/default-pool/bench-%05d.img'/>"
            "<target dev='vda' bus='virtio'/></disk>"
            "<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/>"
            "<readonly/></disk>"
            "<interface type='network'><mac address='52:54:00:%02x:%02x:%02x'/>"
            "<source network='default'/></interface>"
            "</devices></domain>"
            % (index, uuid.UUID(int=index + 1), index,
               index >> 16 & 0xff, index >> 8 & 0xff, index & 0xff))
    return (
        "<node>\n" + "\n".join(domains) + "\n"
        "<network><name>default</name><bridge name='virbr0'/>"
        "<forward/><ip address='192.168.122.1' netmask='255.255.255.0'/>"
        "</network>\n"
        "<pool type='dir'><name>default-pool</name>"
        "<uuid>%s</uuid><capacity>107374182400</capacity>"
        "<allocation>0</allocation><available>107374182400</available>"
        "<target><path>/default-pool</path></target></pool>\n"
        "</node>\n" % uuid.UUID(int=0xdef))


def production_logging_to_devnull(ini_path=PRODUCTION_INI):
    """Configure logging from the logging sections of ``ini_path``
    (production.ini or a copy), with the handler writing to /dev/null, so
    that the service formats its log lines as it does in production."""
    # The handler keeps the stream it was given, so later writes go to
    # /dev/null too.
    saved_stderr = sys.stderr
    sys.stderr = open(os.devnull, "w")
    try:
        logging.config.fileConfig(ini_path, {"http_port": "0"},
                                  disable_existing_loggers=False)
    finally:
        sys.stderr = saved_stderr


def make_app(backend):
    """Return the service from testing.ini in WebTest, sending a token with
    the backend's credentials (the test driver ignores them)."""
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    if backend.xml_path:
        settings["simplestack.hypervisor.test.hosts"] = "%s=%s" % (
            backend.prefix.split("/")[2], backend.xml_path)
    if backend.simulator is None:
        token = make_token()
    else:
        token = make_token(backend.simulator.username,
                           backend.simulator.password)
    return TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": token})


@contextlib.contextmanager
def libvirt_backend(guests, folder):
    path = os.path.join(folder, "bench-%d.xml" % guests)
    with open(path, "w") as document:
        document.write(libvirt_seed_xml(guests))
    yield Backend("libvirt", "/test/bench%d" % guests, guests, None, path)


@contextlib.contextmanager
def xen_backend(guests, folder):
    simulator = XapiSimulator("--vms", str(guests)).start()
    try:
        yield Backend("xen", "/xen/" + simulator.netloc, guests, simulator,
                      None)
    finally:
        simulator.stop()


@contextlib.contextmanager
def vmware_backend(guests, folder):
    # The vCenter model has two resource pools and --vms counts VMs per
    # pool, so an odd N gets N + 1 guests.
    simulator = VcsimSimulator("vpx", vms=(guests + 1) // 2,
                               temporary_dir=folder).start()
    try:
        yield Backend("vmware", "/vmware/" + simulator.netloc,
                      2 * ((guests + 1) // 2), simulator, None)
    finally:
        simulator.stop()


BACKEND_FACTORIES = {
    "libvirt": libvirt_backend,
    "xen": xen_backend,
    "vmware": vmware_backend,
}


@contextlib.contextmanager
def started_backend(name, guests):
    """Start backend ``name`` with ``guests`` guests in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        with BACKEND_FACTORIES[name](guests, folder) as backend:
            yield backend



def production_ini(options=None, app_section=None):
    """Return production.ini's text with service settings changed.

    ``options`` maps [app:main] keys to values: a key already in the file
    gets the new value on its line (PasteDeploy rejects a key given twice),
    any other key goes right after the section header. ``app_section``
    replaces the whole [app:main] section instead.
    """
    with open(PRODUCTION_INI) as source:
        text = source.read()
    start = text.index("[app:main]\n")
    end = text.index("\n[", start + 1) + 1
    section = text[start:end]
    if app_section is not None:
        section = app_section + "\n"
    for key, value in (options or {}).items():
        line = "%s = %s" % (key, value)
        pattern = re.compile(r"^%s *=.*$" % re.escape(key), re.MULTILINE)
        if pattern.search(section):
            section = pattern.sub(lambda match: line, section, count=1)
        else:
            section = section.replace("[app:main]\n",
                                      "[app:main]\n%s\n" % line, 1)
    return text[:start] + section + text[end:]
