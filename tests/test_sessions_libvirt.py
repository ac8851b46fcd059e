"""Connection reuse on libvirt: local QEMU through libvirtd, and the test
driver, which is never pooled.

``virt-admin`` lists libvirtd's clients by process id, which shows how many
connections the service holds. The QEMU tests run when
SIMPLESTACK_TEST_BACKENDS lists qemu (``scripts/test`` does).
"""

import logging

import pytest
from webtest import TestApp

from simplestack import main
from simplestack.sessions import sessions_of
from tests import backends
from tests.api.conftest import app_settings
from tests.conftest import make_token
from tests.libvirt_fixtures import libvirtd_client_ids

needs_qemu = pytest.mark.skipif(
    "qemu" not in backends.required_backends(),
    reason="SIMPLESTACK_TEST_BACKENDS does not list qemu")


def service(type_name, **type_settings):
    settings = {"simplestack.hypervisor.%s.%s" % (type_name, key): value
                for key, value in type_settings.items()}
    app = main({}, **app_settings(**settings))
    return app, TestApp(app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


@pytest.fixture
def pooled_qemu():
    app, api = service("qemu", session_reuse="true")
    yield app, api
    sessions_of(app.registry).shutdown()


@needs_qemu
def test_qemu_connection_is_reused(pooled_qemu):
    app, api = pooled_qemu
    before = len(libvirtd_client_ids())
    for _ in range(3):
        api.get("/qemu/localhost/guests")
    assert len(libvirtd_client_ids()) == before + 1
    assert sessions_of(app.registry).idle_count() == 1

    sessions_of(app.registry).shutdown()
    assert len(libvirtd_client_ids()) == before


@needs_qemu
def test_local_tokens_share_one_connection(pooled_qemu):
    """libvirtd's local socket checks the service's own user, not the
    token, so every token shares the pooled connections to it."""
    app, api = pooled_qemu
    before = len(libvirtd_client_ids())
    for number in range(5):
        api.get("/qemu/localhost/guests", headers={
            "x-simplestack-hypervisor-token": make_token(
                username="user-%d" % number)})

    assert len(libvirtd_client_ids()) == before + 1
    assert sessions_of(app.registry).idle_count() == 1


@needs_qemu
def test_closed_pooled_connection_is_replaced(pooled_qemu):
    app, api = pooled_qemu
    api.get("/qemu/localhost/guests")
    manager = sessions_of(app.registry)
    [[entry]] = manager._idle.values()
    # The connection closes under the pooled adapter, as it would when
    # libvirtd restarts and keepalive notices.
    entry.adapter._conn.close()

    response = api.get("/qemu/localhost/guests")
    assert response.status_int == 200
    assert manager.idle_count() == 1
    assert manager.slots_taken("qemu", "localhost") == 1


def test_test_driver_is_never_pooled(caplog):
    app, api = service("test", session_reuse="true")
    with caplog.at_level(logging.WARNING, logger="simplestack.sessions"):
        api.get("/test/default/guests")
        api.get("/test/default/guests")
    manager = sessions_of(app.registry)
    assert manager.idle_count() == 0
    assert manager.slots_taken("test", "default") == 0
    warnings = [record.getMessage() for record in caplog.records
                if "cannot reuse connections" in record.getMessage()]
    assert len(warnings) == 1
