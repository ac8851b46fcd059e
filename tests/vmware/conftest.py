"""Fixtures of the VMware tests: adapters, guests and the service, on the
session's vSphere simulators.

``vcsim_simulator`` is parametrized over the simulator's models, so every
test here runs on a vCenter ("vpx") and on a standalone ESX host ("esx").
"""

import contextlib

import pytest
from pyramid.paster import get_appsettings
from pyVmomi import vim
from webtest import TestApp

from simplestack import errors, main
from simplestack.adapters.base import Credentials
from simplestack.adapters.vmware import VmwareAdapter
from tests import backends
from tests.conftest import make_token
from tests.server import TESTING_INI
from tests.simulators.vcsim_fixtures import vcsim_simulator  # noqa: F401
from tests.vmware_fixtures import VmwareKit, container_items


def make_adapter(simulator, host=None, password=None, **settings):
    """Return an unopened VmwareAdapter for ``simulator``."""
    settings.setdefault("ca_bundle", simulator.ca_bundle)
    config = VmwareAdapter.parse_settings("vmware", {
        key: str(value) for key, value in settings.items()})
    return VmwareAdapter("vmware", host or simulator.netloc, Credentials(
        simulator.username,
        simulator.password if password is None else password), config)


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
    instance = make_adapter(vcsim_simulator)
    instance.open()
    yield instance
    instance.close()


@pytest.fixture
def make_guest(adapter, vcsim_simulator):
    """Create a stopped guest (64 MiB, and a 1 GiB disk unless ``hdd`` is
    given) and delete it after the test."""
    created = []

    def create(**spec):
        spec.setdefault("name", backends.unique_name("guest"))
        spec.setdefault("memory", 64)
        spec.setdefault("hdd", 1)
        if spec["hdd"] is None:
            del spec["hdd"]
        record = adapter.create_guest(spec)
        created.append(record["id"])
        return record

    yield create
    remover = make_adapter(vcsim_simulator)
    remover.open()
    try:
        for guest_id in created:
            with contextlib.suppress(errors.EntityNotFound):
                remover.delete_guest(guest_id)
    finally:
        remover.close()


@pytest.fixture
def vmware_app(vcsim_simulator):
    """The service from testing.ini, trusting the simulator's CA."""
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.hypervisor.vmware.ca_bundle"] = \
        vcsim_simulator.ca_bundle
    return main({}, **settings)


@pytest.fixture
def vmware_api(vmware_app, vcsim_simulator):
    """A WebTest client whose token logs in to the simulator."""
    return TestApp(vmware_app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            vcsim_simulator.username, vcsim_simulator.password)})


@pytest.fixture
def vmware_host(vcsim_simulator):
    """The path prefix of the simulator: /vmware/127.0.0.1:PORT."""
    return "/vmware/" + vcsim_simulator.netloc
