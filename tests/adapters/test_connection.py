"""Connection handling, settings and error translation of the libvirt
adapter. The Xen adapter's are in tests/xen/test_connection.py."""

import subprocess
import sys
import textwrap

import libvirt
import pytest

from simplestack import errors
from simplestack.adapters.base import Credentials
from simplestack.adapters.libvirt import LibvirtAdapter
from tests import backends
from tests.libvirt_fixtures import (
    TEST_CREDENTIALS,
    libvirtd_client_ids,
    make_adapter,
)

REMOTE_PASSWORD = "sstest-secret-7d3a"

pytestmark = pytest.mark.backends("test", "qemu", "lxc")


def test_close_releases_connection(backend, backend_connection):
    adapter = make_adapter(backend)
    adapter.open()
    connection = adapter.conn
    assert connection.getURI() == backends.backend_uri(backend)

    adapter.close()
    adapter.close()  # closing twice is allowed

    with pytest.raises(libvirt.libvirtError):
        connection.getURI()


def test_close_ends_libvirtd_client(backend, backend_connection):
    if backend == "test":
        # test:///default runs inside this process, without libvirtd.
        adapter = make_adapter(backend)
        adapter.open()
        adapter.close()
        assert adapter._conn is None
        return
    before = libvirtd_client_ids()

    adapter = make_adapter(backend)
    adapter.open()
    during = libvirtd_client_ids()
    adapter.close()
    after = libvirtd_client_ids()

    assert len(during) == len(before) + 1
    assert after == before


def test_test_driver_state_outlives_requests():
    # A fresh process has no other connection to test:///default, so only
    # the adapter's process-wide connection can keep the guest alive.
    script = textwrap.dedent("""
        from simplestack.adapters.base import Credentials
        from simplestack.adapters.libvirt import LibvirtAdapter

        config = LibvirtAdapter.parse_settings("test", {"driver": "test"})

        def request():
            adapter = LibvirtAdapter("test", "default",
                                     Credentials("u", "p"), config)
            adapter.open()
            return adapter

        first = request()
        guest = first.create_guest({"name": "sstest-kept", "memory": 64})
        first.close()

        second = request()
        print(second.get_guest(guest["id"])["name"])
        second.close()
    """)
    result = subprocess.run([sys.executable, "-c", script],
                            capture_output=True, text=True, timeout=60,
                            cwd=backends.Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sstest-kept"


def test_calls_counts_binding_calls(adapter):
    before = adapter.calls
    adapter.list_hosts()
    assert adapter.calls > before


def test_hyperv_driver_missing():
    config = LibvirtAdapter.parse_settings(
        "hyperv", {"driver": "hyperv", "uri_template": "hyperv://{host}/"})
    adapter = LibvirtAdapter("hyperv", "127.0.0.1", TEST_CREDENTIALS, config)

    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.open()

    assert "no driver for hyperv URIs" in raised.value.message
    assert isinstance(raised.value.original, libvirt.libvirtError)


def test_unreachable_host_hides_password():
    config = LibvirtAdapter.parse_settings("qemu", {
        "driver": "qemu", "uri_template": "qemu+tcp://{host}/system"})
    # Port 1 on the loopback address refuses every connection.
    adapter = LibvirtAdapter("qemu", "127.0.0.1:1",
                             Credentials("root", REMOTE_PASSWORD), config)

    with pytest.raises(errors.HypervisorUnreachable) as raised:
        adapter.open()

    assert "127.0.0.1:1" in raised.value.message
    assert REMOTE_PASSWORD not in raised.value.message
    assert REMOTE_PASSWORD not in str(raised.value.original)


def test_unknown_test_host():
    adapter = make_adapter("test", host="no-such-host")

    with pytest.raises(errors.EntityNotFound) as raised:
        adapter.open()

    assert "no-such-host" in raised.value.message


def test_test_host_from_file(tmp_path):
    seed = tmp_path / "sstest-seed.xml"
    seed.write_text(
        "<node><domain type='test'><name>sstest-seeded</name>"
        "<memory>65536</memory><os><type>hvm</type></os></domain></node>")
    config = LibvirtAdapter.parse_settings(
        "test", {"driver": "test", "hosts": "seeded=%s" % seed})
    adapter = LibvirtAdapter("test", "seeded", TEST_CREDENTIALS, config)
    adapter.open()
    try:
        names = [guest["name"] for guest in adapter.list_guests()]
    finally:
        adapter.close()

    assert names == ["sstest-seeded"]


@pytest.mark.parametrize("settings, setting_name", [
    ({"driver": "xen"}, "driver"),
    ({"driver": "qemu", "domain_type": "hvm"}, "domain_type"),
    ({"driver": "qemu", "uri_template": "qemu+tls://example/system"},
     "uri_template"),
    ({"driver": "qemu", "timeout": "soon"}, "timeout"),
    ({"driver": "qemu", "timeout": "-1"}, "timeout"),
    ({"driver": "test", "hosts": "no-equals-sign"}, "hosts"),
    ({"driver": "test", "hosts": "a=/no/such/file.xml"}, "hosts"),
    ({"driver": "test", "colour": "blue"}, "colour"),
])
def test_bad_setting_named(settings, setting_name):
    with pytest.raises(ValueError) as raised:
        LibvirtAdapter.parse_settings("sometype", settings)

    assert setting_name in str(raised.value)


def test_local_host_with_port_is_local():
    adapter = make_adapter("qemu", host="localhost:16509")

    assert adapter._uri() == ("qemu:///system", False)


def test_remote_host_fills_template():
    config = LibvirtAdapter.parse_settings("qemu", {"driver": "qemu"})
    adapter = LibvirtAdapter("qemu", "10.0.0.1:16514", TEST_CREDENTIALS,
                             config)

    assert adapter._uri() == ("qemu+tls://10.0.0.1:16514/system", True)


def test_remote_uri_with_keepalive(backend, backend_connection):
    if backend == "test":
        return  # the test driver has no remote transport
    # The unix transport replaces a remote host here. The URL host is not
    # in local_hosts, so the adapter takes the openAuth and keepalive path.
    scheme = "qemu" if backend == "qemu" else "lxc"
    path = "system" if backend == "qemu" else ""
    config = LibvirtAdapter.parse_settings(backend, {
        "driver": backend,
        "uri_template": "%s+unix:///%s?sstest-host={host}" % (scheme, path),
        "timeout": "3",
    })
    adapter = LibvirtAdapter(backend, "sstest-remote", TEST_CREDENTIALS,
                             config)
    adapter.open()
    try:
        assert adapter._uri()[1] is True
        assert adapter.conn.isAlive() == 1
        assert adapter.list_hosts()[0]["address"] == "sstest-remote"
    finally:
        adapter.close()
