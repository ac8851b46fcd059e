"""Fixtures of the Xen tests: adapters, guests and the service, all on the
session's XAPI simulator."""

import contextlib

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import errors, main
from tests import backends
from tests.conftest import make_token
from tests.server import TESTING_INI
from tests.xen_fixtures import (  # noqa: F401 (pytest fixtures)
    xapi_simulator,
    xen_iso_image,
    xen_kit,
    xen_network,
    xen_storage,
)


@pytest.fixture
def adapter(xen_kit):
    """An opened XenAdapter, closed after the test."""
    instance = xen_kit.make_adapter()
    instance.open()
    yield instance
    instance.close()


@pytest.fixture
def make_guest(adapter, xen_kit):
    """Create a stopped guest (64 MiB, a 1 GiB disk unless ``hdd`` says
    otherwise) and delete it after the test."""
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
    remover = xen_kit.make_adapter()
    remover.open()
    try:
        for guest_id in created:
            with contextlib.suppress(errors.EntityNotFound):
                remover.delete_guest(guest_id)
    finally:
        remover.close()


@pytest.fixture(scope="session")
def xen_app(xapi_simulator):
    """The service from testing.ini, trusting the simulator's CA."""
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.hypervisor.xen.ca_bundle"] = \
        xapi_simulator.ca_bundle
    return main({}, **settings)


@pytest.fixture
def xen_api(xen_app, xapi_simulator):
    """A WebTest client whose token logs in to the simulator."""
    return TestApp(xen_app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            xapi_simulator.username, xapi_simulator.password)})


@pytest.fixture(scope="session")
def xen_host(xapi_simulator):
    """The path prefix of the simulator's pool master: /xen/127.0.0.1:PORT."""
    return "/xen/" + xapi_simulator.netloc
