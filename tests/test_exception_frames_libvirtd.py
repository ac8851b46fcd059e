"""A failed request closes its libvirtd connection without the garbage
collector.

An error of ours keeps the libvirt exception as ``original``, whose
traceback holds the adapter's frames and, through a virDomain, the
connection. The host context clears those frames when the request ends;
with the garbage collector off, a connection left open shows that a frame
was missed (a lookup of an unknown snapshot once left one open).
"""

import gc

import pytest
from webtest import TestApp

from simplestack import main
from tests import backends
from tests.api.conftest import app_settings
from tests.conftest import make_token
from tests.libvirt_fixtures import libvirtd_client_ids, open_connection, remove_domain


pytestmark = pytest.mark.skipif(
    "qemu" not in backends.required_backends(),
    reason="needs libvirtd: list qemu in %s" % backends.BACKENDS_VARIABLE)


def test_unknown_snapshot_closes_connection():
    app = TestApp(main({}, **app_settings()), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})
    connection = open_connection("qemu")
    name = backends.unique_name("leak")
    domain = connection.defineXML(backends.qemu_domain_xml(
        name, backends.image_dir() / (name + ".qcow2")))
    gc.disable()
    try:
        before = libvirtd_client_ids()
        response = app.put_json("/qemu/localhost/guests/%s/snapshots/missing/revert"
                                % domain.UUIDString(), {}, status="*")
        assert response.status_int == 404
        assert libvirtd_client_ids() == before
    finally:
        gc.enable()
        remove_domain(domain)
        connection.close()
