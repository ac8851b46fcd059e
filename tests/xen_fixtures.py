"""Xen test resources: the XAPI simulator as a backend of the shared suite.

The simulator runs as a subprocess (tests/simulators/fixtures.py). The kit
reads and prepares the pool with the real XenAPI SDK over its own
sessions, originator "sstest", so its calls never count as the adapter's.
Every object made here is named with the ``sstest-`` prefix.

Import the fixtures into a conftest.py to use them::

    from tests.xen_fixtures import (  # noqa: F401
        xen_kit, xen_storage, xen_network, xen_iso_image)
"""

import contextlib
import ssl
import xmlrpc.client

import pytest
import XenAPI

from simplestack.adapters.base import Credentials
from simplestack.adapters.xen import XenAdapter
from tests import backends
from tests.kits import GIB, BackendKit, Network, Storage
from tests.simulators.fixtures import xapi_simulator  # noqa: F401

MIB = 1024 ** 2

#: Originator of the kit's own sessions.
KIT_ORIGINATOR = "sstest"

#: The ISO SRs of the simulated pool.
ISO_LIBRARY = "ISO library"
TOOLS_ISO_SR = "XenServer Tools"


class CATransport(xmlrpc.client.SafeTransport):
    """An HTTPS transport that trusts the simulator's development CA."""

    def __init__(self, ca_bundle):
        super().__init__(context=ssl.create_default_context(cafile=ca_bundle))


@contextlib.contextmanager
def xapi_session(simulator, originator=KIT_ORIGINATOR):
    """Yield ``session.xenapi`` of a new session, logged out afterwards."""
    session = XenAPI.Session(simulator.url,
                             transport=CATransport(simulator.ca_bundle))
    session.xenapi.login_with_password(simulator.username,
                                       simulator.password, "1.0", originator)
    try:
        yield session.xenapi
    finally:
        session.xenapi.session.logout()


def is_guest(vm):
    return not (vm["is_a_template"] or vm["is_a_snapshot"]
                or vm["is_control_domain"])


class XenKit(BackendKit):
    """The shared suite's view of the XAPI simulator."""

    backend = "xen"

    def __init__(self, simulator):
        self.simulator = simulator
        self.config = XenAdapter.parse_settings(
            "xen", {"ca_bundle": simulator.ca_bundle})
        self.credentials = Credentials(simulator.username,
                                       simulator.password)

    def session(self):
        return xapi_session(self.simulator)

    def make_adapter(self, storage=None, network=None, host=None):
        # The Xen adapter has no default storage or network settings: new
        # disks go to the pool's default SR, which is the suite's storage.
        return XenAdapter("xen", host or self.simulator.netloc,
                          self.credentials, self.config)

    def guest_names(self):
        with self.session() as xapi:
            return {vm["name_label"] for vm in
                    xapi.VM.get_all_records().values() if is_guest(vm)}

    def rename_guest(self, guest_id, name):
        with self.session() as xapi:
            xapi.VM.set_name_label(xapi.VM.get_by_uuid(guest_id), name)

    def volumes(self, storage):
        with self.session() as xapi:
            return sorted(xapi.VDI.get_uuid(vdi)
                          for vdi in xapi.SR.get_VDIs(storage.native))

    def storage_facts(self, storage):
        with self.session() as xapi:
            sr = xapi.SR.get_record(storage.native)
        return {"type": sr["type"],
                "size": int(sr["physical_size"]) // GIB,
                "used_space": int(sr["physical_utilisation"]) // GIB}

    def pool_facts(self, adapter):
        with self.session() as xapi:
            pool = list(xapi.pool.get_all_records().values())[0]
            master = xapi.host.get_record(pool["master"])
            total = sum(int(xapi.host_metrics.get_memory_total(
                xapi.host.get_metrics(host))) for host in xapi.host.get_all())
        return {"total_memory": total // MIB,
                "version": master["software_version"]["product_version"],
                "master": master["address"]}

    def host_names(self):
        with self.session() as xapi:
            return sorted(host["name_label"] for host in
                          xapi.host.get_all_records().values())

    def remove_network(self, name):
        with self.session() as xapi:
            for ref in xapi.network.get_by_name_label(name):
                xapi.network.destroy(ref)

    # -- resources ------------------------------------------------------------

    def default_storage(self):
        with self.session() as xapi:
            pool = list(xapi.pool.get_all_records().values())[0]
            sr = xapi.SR.get_record(pool["default_SR"])
        return Storage(sr["uuid"], sr["name_label"], pool["default_SR"])

    @contextlib.contextmanager
    def temporary_network(self, label="net"):
        """Create an isolated network (no PIF), then destroy it."""
        name = backends.unique_name(label)
        with self.session() as xapi:
            ref = xapi.network.create({
                "name_label": name, "name_description": "", "MTU": "1500",
                "other_config": {}, "tags": []})
            record = xapi.network.get_record(ref)
        try:
            yield Network(record["uuid"], name, record["bridge"], ref)
        finally:
            with self.session() as xapi, contextlib.suppress(XenAPI.Failure):
                xapi.network.destroy(ref)

    @contextlib.contextmanager
    def iso_image(self, name=None, sr_name=ISO_LIBRARY):
        """Put an ISO image (a VDI) in an ISO SR and yield its name."""
        name = name or backends.unique_name("cd") + ".iso"
        with self.session() as xapi:
            sr = xapi.SR.get_by_name_label(sr_name)[0]
            ref = xapi.VDI.create({
                "name_label": name, "name_description": "", "SR": sr,
                "virtual_size": str(MIB), "type": "user", "sharable": False,
                "read_only": True, "other_config": {}, "xenstore_data": {},
                "sm_config": {}, "tags": []})
        try:
            yield name
        finally:
            with self.session() as xapi, contextlib.suppress(XenAPI.Failure):
                xapi.VDI.destroy(ref)


# -- pytest fixtures ----------------------------------------------------------

@pytest.fixture(scope="session")
def xen_kit(xapi_simulator):
    return XenKit(xapi_simulator)


@pytest.fixture(scope="session")
def xen_storage(xen_kit):
    return xen_kit.default_storage()


@pytest.fixture(scope="session")
def xen_network(xen_kit):
    with xen_kit.temporary_network() as network:
        yield network


@pytest.fixture
def xen_iso_image(xen_kit):
    with xen_kit.iso_image() as name:
        yield name
