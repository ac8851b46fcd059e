"""Fixtures of the Xen tests: adapters, guests and the service, all on the
session's XAPI simulator."""

import pytest

from simplestack.adapters.xen import XenAdapter
from tests import adapter_fixtures
from tests.session_services import client, service
from tests.xen_fixtures import (  # noqa: F401 (pytest fixtures)
    xapi_simulator,
    xen_iso_image,
    xen_kit,
    xen_network,
    xen_storage,
)


def make_adapter(simulator, host=None, password=None, **settings):
    """Return an unopened XenAdapter for ``simulator``."""
    return adapter_fixtures.make_adapter(
        XenAdapter, "xen", simulator, host, password, **settings)


@pytest.fixture
def adapter(xen_kit):
    """An opened XenAdapter, closed after the test."""
    yield from adapter_fixtures.opened_adapter(xen_kit.make_adapter())


@pytest.fixture
def make_guest(adapter, xen_kit):
    """Create a stopped guest (64 MiB, a 1 GiB disk unless ``hdd`` says
    otherwise) and delete it after the test."""
    yield from adapter_fixtures.guest_maker(adapter, xen_kit.make_adapter)


@pytest.fixture(scope="session")
def xen_app(xapi_simulator):
    """The service from testing.ini, trusting the simulator's CA."""
    return service("xen", xapi_simulator)


@pytest.fixture
def xen_api(xen_app, xapi_simulator):
    """A WebTest client whose token logs in to the simulator."""
    return client(xen_app, xapi_simulator)


@pytest.fixture(scope="session")
def xen_host(xapi_simulator):
    """The path prefix of the simulator's pool master: /xen/127.0.0.1:PORT."""
    return "/xen/" + xapi_simulator.netloc
