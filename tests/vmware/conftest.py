"""Fixtures of the VMware tests: adapters, guests and the service, on the
session's vSphere simulators.

``vcsim_simulator`` is parametrized over the simulator's models, so every
test here runs on a vCenter ("vpx") and on a standalone ESX host ("esx").
"""

import pytest
from pyVmomi import vim

from simplestack.adapters.vmware import VmwareAdapter
from tests import adapter_fixtures
from tests.session_services import client, service
from tests.simulators.vcsim_fixtures import vcsim_simulator  # noqa: F401
from tests.vmware_fixtures import VmwareKit, container_items


def make_adapter(simulator, host=None, password=None, **settings):
    """Return an unopened VmwareAdapter for ``simulator``."""
    return adapter_fixtures.make_adapter(
        VmwareAdapter, "vmware", simulator, host, password, **settings)


def open_sessions(simulator):
    """Return the number of sessions on the simulator besides the one that
    counts them."""
    with simulator.session() as service:
        content = service.RetrieveContent()
        sessions = content.sessionManager.sessionList
    return len(sessions) - 1


def vm_ref(service, name):
    """Return the VirtualMachine called ``name``, found through a kit
    session."""
    for ref, values in container_items(service.RetrieveContent(),
                                       vim.VirtualMachine, ("name",)):
        if values["name"] == name:
            return ref
    raise LookupError("VM %s not found" % name)


@pytest.fixture
def vmware_kit(vcsim_simulator):
    return VmwareKit("vmware-" + vcsim_simulator.model, vcsim_simulator)


@pytest.fixture
def adapter(vcsim_simulator):
    """An opened VmwareAdapter, closed after the test."""
    yield from adapter_fixtures.opened_adapter(make_adapter(vcsim_simulator))


@pytest.fixture
def make_guest(adapter, vcsim_simulator):
    """Create a stopped guest (64 MiB, and a 1 GiB disk unless ``hdd`` is
    given) and delete it after the test."""
    yield from adapter_fixtures.guest_maker(
        adapter, lambda: make_adapter(vcsim_simulator))


@pytest.fixture
def vmware_app(vcsim_simulator):
    """The service from testing.ini, trusting the simulator's CA."""
    return service("vmware", vcsim_simulator)


@pytest.fixture
def vmware_api(vmware_app, vcsim_simulator):
    """A WebTest client whose token logs in to the simulator."""
    return client(vmware_app, vcsim_simulator)


@pytest.fixture
def vmware_host(vcsim_simulator):
    """The path prefix of the simulator: /vmware/127.0.0.1:PORT."""
    return "/vmware/" + vcsim_simulator.netloc
