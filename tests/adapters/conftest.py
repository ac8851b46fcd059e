"""Fixtures of the shared adapter suite: one adapter per test and backend.

The suite runs once per backend that SIMPLESTACK_TEST_BACKENDS lists
(``test`` alone when it is unset), and always against the simulated
backends, which the fixtures start: ``xen`` (the XAPI simulator), and
``vmware`` and ``vmware-esx`` (govmomi's vSphere simulator as a vCenter
and as a standalone ESX host). A
listed backend that is unreachable fails the fixture: it is never skipped.

Each backend supplies a kit (see tests/kits.py) and the storage, network
and ISO image that the tests use. A test that applies to some backends
only names them with ``@pytest.mark.backends("test", "qemu", "lxc")``.
"""


import pytest

from tests import backends
from tests.adapter_fixtures import delete_guests
from tests.libvirt_fixtures import (  # noqa: F401 (pytest fixtures)
    LibvirtKit,
    backend_connection,
    iso_pool,
    isolated_network,
    libvirt_iso_image,
    network_handle,
    storage_handle,
    storage_pool,
)
from tests.vmware_fixtures import (  # noqa: F401 (pytest fixtures)
    VMWARE_BACKENDS,
    vmware_kits,
    vmware_simulators,
)
from tests.xen_fixtures import (  # noqa: F401 (pytest fixtures)
    xapi_simulator,
    xen_iso_image,
    xen_kit,
    xen_network,
    xen_storage,
)

#: Backends served by simulators that the tests start themselves.
SIMULATED_BACKENDS = ("xen",) + tuple(VMWARE_BACKENDS)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "backends(*names): run the test on these backends only")


def pytest_generate_tests(metafunc):
    if "backend" not in metafunc.fixturenames:
        return
    names = backends.required_backends() + list(SIMULATED_BACKENDS)
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None:
        names = [name for name in names if name in marker.args]
    metafunc.parametrize("backend", names, scope="session")


@pytest.fixture(scope="session")
def kit(backend, request):
    """The backend's kit: adapters, and checks of what the hypervisor holds."""
    if backend == "xen":
        return request.getfixturevalue("xen_kit")
    if backend in VMWARE_BACKENDS:
        return request.getfixturevalue("vmware_kits")(backend)
    return LibvirtKit(backend, request.getfixturevalue("backend_connection"))


@pytest.fixture(scope="session")
def storage(backend, request):
    """The storage of the session's disks (a tests.kits.Storage)."""
    if backend == "xen":
        return request.getfixturevalue("xen_storage")
    if backend in VMWARE_BACKENDS:
        return request.getfixturevalue("kit").default_storage()
    return storage_handle(request.getfixturevalue("storage_pool"))


@pytest.fixture(scope="session")
def network(backend, request):
    """An isolated network of the session (a tests.kits.Network)."""
    if backend == "xen":
        return request.getfixturevalue("xen_network")
    if backend in VMWARE_BACKENDS:
        return request.getfixturevalue("kit").default_network()
    return network_handle(request.getfixturevalue("isolated_network"))


@pytest.fixture
def iso_image(backend, request):
    """The name of an ISO image that exists for this test only."""
    if backend in VMWARE_BACKENDS:
        kit = request.getfixturevalue("kit")
        with kit.iso_image(request.getfixturevalue("storage")) as name:
            yield name
    elif backend == "xen":
        yield request.getfixturevalue("xen_iso_image")
    else:
        yield request.getfixturevalue("libvirt_iso_image")


@pytest.fixture
def adapter(kit, storage, network):
    """A fresh opened adapter whose defaults are the session's storage and
    network; closed after the test."""
    instance = kit.make_adapter(storage, network)
    instance.open()
    yield instance
    instance.close()


@pytest.fixture
def cleanup(kit):
    """Guests to delete after the test, by id, through a separate adapter.

    A test registers each guest it creates with ``cleanup.append(id)``;
    guests the test already deleted are skipped.
    """
    guest_ids = []
    yield guest_ids
    if not guest_ids:
        return
    delete_guests(kit.make_adapter(), guest_ids)


@pytest.fixture
def make_guest(adapter, backend, cleanup):
    """Create a guest through the adapter and delete it after the test.

    Takes the keys of ``create_guest``'s spec. ``name`` defaults to a fresh
    sstest- name. Guests other than containers get a 1 GiB disk unless
    ``hdd`` is given, and ``hdd=None`` means no disk.
    """
    def create(**spec):
        spec.setdefault("name", backends.unique_name("guest"))
        spec.setdefault("memory", 64)
        if backend != "lxc":
            spec.setdefault("hdd", 1)
        if spec.get("hdd") is None:
            spec.pop("hdd", None)
        record = adapter.create_guest(spec)
        cleanup.append(record["id"])
        return record

    return create
