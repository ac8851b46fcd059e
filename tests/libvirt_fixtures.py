"""libvirt test resources for the adapter and API tests.

Every object made here is named with the ``sstest-`` prefix, so
``scripts/libvirtd clean`` removes what a crashed run leaves behind. Each
helper is a context manager that removes what it made, and the pytest
fixtures at the end wrap them per backend (``test``, ``qemu``, ``lxc``).

Import the fixtures into a conftest.py to use them::

    from tests.libvirt_fixtures import (  # noqa: F401
        backend_connection, storage_pool, libvirt_iso_image, isolated_network)
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import libvirt
import pytest

from simplestack.adapters.libvirt import LibvirtAdapter
from simplestack.adapters.base import Credentials
from tests import backends
from tests.kits import GIB, BackendKit, Network, Storage

# Hypervisor type and adapter settings per backend. QEMU guests use TCG
# ("qemu") so the tests also run where /dev/kvm is missing.
ADAPTER_TYPES = {
    "test": "test",
    "qemu": "qemu",
    "lxc": "lxc",
}

# The host part of the URL that opens each backend's URI.
ADAPTER_HOSTS = {
    "test": "default",
    "qemu": "localhost",
    "lxc": "localhost",
}

TEST_CREDENTIALS = Credentials("root", "sstest-unused-password")


def _discard_error(context, error):
    """Drop libvirt's stderr report; the tests see the exception."""


libvirt.registerErrorHandler(_discard_error, None)


def open_connection(backend):
    """Open a libvirt connection to ``backend``'s URI.

    Raise an AssertionError naming the backend when it is unreachable, so a
    listed backend fails the run instead of skipping it.
    """
    uri = backends.backend_uri(backend)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as error:
        raise AssertionError(
            "backend %s (%s) is unreachable: %s. Start the daemons with "
            "scripts/libvirtd start, or remove %s from %s."
            % (backend, uri, error.get_error_message(), backend,
               backends.BACKENDS_VARIABLE)) from error


def adapter_settings(backend, pool_name=None, network_name=None):
    """Return the INI-style settings of ``backend`` for LibvirtAdapter."""
    settings = {"driver": "qemu" if backend == "qemu" else backend}
    if backend == "qemu":
        settings["domain_type"] = "qemu"
    if backend == "lxc":
        settings["container_root"] = str(backends.lxc_rootfs())
    if pool_name:
        settings["storage_pool"] = pool_name
    if network_name:
        settings["network"] = network_name
    return settings


def make_adapter(backend, pool_name=None, network_name=None, host=None):
    """Build an unopened LibvirtAdapter for ``backend``."""
    type_name = ADAPTER_TYPES[backend]
    config = LibvirtAdapter.parse_settings(
        type_name, adapter_settings(backend, pool_name, network_name))
    return LibvirtAdapter(type_name, host or ADAPTER_HOSTS[backend],
                          TEST_CREDENTIALS, config)


# -- storage pools -----------------------------------------------------------

def _pool_xml(name, path):
    return ("<pool type='dir'><name>%s</name><target><path>%s</path>"
            "</target></pool>" % (escape(name), escape(str(path))))


@contextlib.contextmanager
def temporary_pool(connection, label="pool"):
    """Create a transient directory pool under the test image folder.

    On the test driver the folder is never touched: its pools are fake.
    """
    name = backends.unique_name(label)
    path = backends.image_dir() / name
    real = connection.getType() != "TEST"
    if real:
        path.mkdir(mode=0o755, parents=True)
    pool = connection.storagePoolCreateXML(_pool_xml(name, path), 0)
    try:
        yield pool
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            for volume in pool.listAllVolumes(0):
                volume.delete(0)
        with contextlib.suppress(libvirt.libvirtError):
            pool.destroy()
        if real:
            shutil.rmtree(path, ignore_errors=True)


def make_iso(path, label="SSTEST"):
    """Write a small ISO 9660 image to ``path`` with genisoimage."""
    with tempfile.TemporaryDirectory(prefix="sstest-") as folder:
        with open(os.path.join(folder, "README.TXT"), "w") as readme:
            readme.write("simplestack test image\n")
        subprocess.run(
            ["genisoimage", "-quiet", "-V", label, "-o", str(path), folder],
            check=True)


@contextlib.contextmanager
def iso_volume(connection, pool, name=None):
    """Put an ISO image in ``pool`` and yield its volume name.

    On real backends the file is made with genisoimage and the pool is
    refreshed; the test driver gets an empty volume of that name.
    """
    name = name or backends.unique_name("cd") + ".iso"
    if connection.getType() == "TEST":
        volume = pool.createXML(
            "<volume><name>%s</name><capacity>1048576</capacity>"
            "<target><format type='raw'/></target></volume>" % escape(name),
            0)
    else:
        folder = _pool_path(pool)
        make_iso(os.path.join(folder, name))
        pool.refresh(0)
        volume = pool.storageVolLookupByName(name)
    try:
        yield name
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            volume.delete(0)


def _pool_path(pool):
    from xml.etree import ElementTree
    return ElementTree.fromstring(pool.XMLDesc(0)).findtext("target/path")


def volume_names(pool):
    """Return the names of the volumes in ``pool``, refreshed first."""
    if pool.connect().getType() != "TEST":
        pool.refresh(0)
    return sorted(volume.name() for volume in pool.listAllVolumes(0))


# -- networks ----------------------------------------------------------------

@contextlib.contextmanager
def temporary_network(connection, label="net"):
    """Create a transient isolated network (no <forward>, no IP).

    Its bridge is named after the network: "sstest-" and six hex digits
    stay within Linux's 15-character interface names.
    """
    name = backends.unique_name(label)
    bridge = "sstest-" + name.rsplit("-", 1)[1][:6]
    network = connection.networkCreateXML(
        "<network><name>%s</name><bridge name=%s/></network>"
        % (escape(name), quoteattr(bridge)))
    try:
        yield network
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            network.destroy()


# -- LXC containers ----------------------------------------------------------

@contextlib.contextmanager
def lxc_container(connection, name=None, start=False):
    """Define (and optionally start) a busybox container, then remove it."""
    name = name or backends.unique_name("ct")
    domain = connection.defineXML(backends.lxc_domain_xml(name))
    try:
        if start:
            domain.create()
        yield domain
    finally:
        remove_domain(domain)


def remove_domain(domain):
    """Destroy and undefine ``domain``, ignoring a domain already gone."""
    with contextlib.suppress(libvirt.libvirtError):
        if domain.isActive():
            domain.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        domain.undefine()


def remove_network(connection, name):
    """Destroy and undefine the network ``name``, ignoring a network that
    is missing or already stopped."""
    with contextlib.suppress(libvirt.libvirtError):
        network = connection.networkLookupByName(name)
        if network.isActive():
            network.destroy()
        network.undefine()


# -- libvirtd clients ----------------------------------------------------------

def libvirtd_client_ids(pid=None):
    """Return the ids of libvirtd's clients that run in process ``pid``.

    Reads ``virt-admin srv-clients-list libvirtd`` and each client's
    ``unix_process_id``; ``pid`` defaults to this process.
    """
    pid = os.getpid() if pid is None else pid
    listing = subprocess.run(
        ["virt-admin", "srv-clients-list", "libvirtd"], check=True,
        capture_output=True, text=True, timeout=30).stdout
    ids = []
    for line in listing.splitlines()[2:]:
        fields = line.split()
        if not fields or not fields[0].isdigit():
            continue
        info = subprocess.run(
            ["virt-admin", "client-info", "libvirtd", fields[0]],
            capture_output=True, text=True, timeout=30)
        for info_line in info.stdout.splitlines():
            key, _, value = info_line.partition(":")
            if key.strip() == "unix_process_id" and \
                    value.strip() == str(pid):
                ids.append(int(fields[0]))
    return sorted(ids)


def wait_for_state(adapter, guest_id, expected, timeout=10.0):
    """Poll the guest until its state is ``expected``; return the last one."""
    deadline = time.monotonic() + timeout
    state = adapter.get_guest(guest_id)["state"]
    while state != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        state = adapter.get_guest(guest_id)["state"]
    return state


# -- the shared suite's kit ---------------------------------------------------

def storage_handle(pool):
    return Storage(pool.UUIDString().lower(), pool.name(), pool)


def network_handle(network):
    return Network(network.UUIDString().lower(), network.name(),
                   network.bridgeName(), network)


class LibvirtKit(BackendKit):
    """The shared suite's view of a libvirt backend."""

    def __init__(self, backend, connection):
        self.backend = backend
        self.connection = connection

    def make_adapter(self, storage=None, network=None, host=None):
        return make_adapter(self.backend,
                            storage.name if storage is not None else None,
                            network.name if network is not None else None,
                            host)

    def guest_names(self):
        return {domain.name() for domain in self.connection.listAllDomains(0)}

    def rename_guest(self, guest_id, name):
        # LXC has no virDomainRename, so the definition is replaced.
        domain = self.connection.lookupByUUIDString(guest_id)
        definition = ET.fromstring(domain.XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        definition.find("name").text = name
        domain.undefine()
        self.connection.defineXML(ET.tostring(definition, encoding="unicode"))

    def volumes(self, storage):
        return volume_names(storage.native)

    def storage_facts(self, storage):
        _state, capacity, allocation, _available = storage.native.info()
        return {"type": "dir", "size": capacity // GIB,
                "used_space": allocation // GIB}

    def pool_facts(self, adapter):
        return {"total_memory": self.connection.getInfo()[1],
                "version": "9.0.0",
                "master": adapter.host.partition(":")[0]}

    def host_names(self):
        return [self.connection.getHostname()]

    def remove_network(self, name):
        network = self.connection.networkLookupByName(name)
        network.destroy()
        network.undefine()


# -- pytest fixtures -----------------------------------------------------------

@pytest.fixture(scope="session")
def backend_connection(backend):
    """A libvirt connection to the backend, open for the whole session.

    For the test driver it also keeps test:///default's state alive.
    """
    connection = open_connection(backend)
    yield connection
    with contextlib.suppress(libvirt.libvirtError):
        connection.close()


@pytest.fixture(scope="session")
def storage_pool(backend_connection):
    """A transient sstest- directory pool for the session's volumes."""
    with temporary_pool(backend_connection) as pool:
        yield pool


@pytest.fixture(scope="session")
def iso_pool(backend_connection):
    """A second sstest- pool for ISO images."""
    with temporary_pool(backend_connection, "isos") as pool:
        yield pool


@pytest.fixture
def libvirt_iso_image(backend_connection, iso_pool):
    """The volume name of an ISO image in ``iso_pool``."""
    with iso_volume(backend_connection, iso_pool) as name:
        yield name


@pytest.fixture(scope="session")
def isolated_network(backend_connection):
    """A transient isolated sstest- network."""
    with temporary_network(backend_connection) as network:
        yield network
