"""Fixtures of the shared adapter suite: one adapter per test and backend.

The suite runs once per backend that SIMPLESTACK_TEST_BACKENDS lists
(``test`` alone when it is unset). A listed backend that is unreachable
fails the fixture: it is never skipped.
"""

import contextlib

import pytest

from simplestack import errors
from tests import backends
from tests.libvirt_fixtures import (  # noqa: F401 (pytest fixtures)
    backend_connection,
    iso_image,
    iso_pool,
    isolated_network,
    make_adapter,
    storage_pool,
)


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends.required_backends(),
                             scope="session")


@pytest.fixture
def adapter(backend, backend_connection, storage_pool, isolated_network):
    """A fresh opened adapter whose defaults are the session's pool and
    network; closed after the test."""
    instance = make_adapter(backend, storage_pool.name(),
                            isolated_network.name())
    instance.open()
    yield instance
    instance.close()


@pytest.fixture
def cleanup(backend):
    """Guests to delete after the test, by id, through a separate adapter.

    A test registers each guest it creates with ``cleanup.append(id)``;
    guests the test already deleted are skipped.
    """
    guest_ids = []
    yield guest_ids
    if not guest_ids:
        return
    remover = make_adapter(backend)
    remover.open()
    try:
        for guest_id in guest_ids:
            with contextlib.suppress(errors.EntityNotFound):
                remover.delete_guest(guest_id)
    finally:
        remover.close()


@pytest.fixture
def make_guest(adapter, cleanup):
    """Create a guest through the adapter and delete it after the test.

    Takes the keys of ``create_guest``'s spec. ``name`` defaults to a fresh
    sstest- name. Guests other than containers get a 1 GiB disk unless
    ``hdd`` is given, and ``hdd=None`` means no disk.
    """
    def create(**spec):
        spec.setdefault("name", backends.unique_name("guest"))
        spec.setdefault("memory", 64)
        if adapter.driver != "lxc":
            spec.setdefault("hdd", 1)
        if spec.get("hdd") is None:
            spec.pop("hdd", None)
        record = adapter.create_guest(spec)
        cleanup.append(record["id"])
        return record

    return create
