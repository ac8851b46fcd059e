"""TLS verification on by default, CA bundles, and the insecure setting,
which logs a warning at start-up and on each connection."""

import logging

import pytest

from simplestack import errors
from simplestack.access import HostAllowList
from simplestack.adapters.base import Credentials
from simplestack.adapters.libvirt import LibvirtAdapter
from simplestack.adapters.vmware import VmwareAdapter
from simplestack.adapters.xen import XenAdapter
from tests.conftest import CANARY_PASSWORD
from tests.simulators.vcsim_fixtures import vcsim_simulator  # noqa: F401
from tests.test_timeouts import refused_port
from tests.xen_fixtures import xapi_simulator  # noqa: F401

LIBVIRT_LOGGER = "simplestack.adapters.libvirt"


def warnings_of(caplog, fragment):
    return [record for record in caplog.records
            if record.levelno == logging.WARNING
            and fragment in record.getMessage()]


# -- Xen and VMware ----------------------------------------------------------

def test_xen_insecure_warns_per_connection(xapi_simulator, caplog):  # noqa: F811,E501
    caplog.set_level(logging.WARNING, logger="simplestack.adapters.xen")
    config = XenAdapter.parse_settings("xen", {"insecure": "true"})
    assert len(warnings_of(caplog, "accepts any TLS certificate")) == 1
    caplog.clear()

    for _ in range(2):
        adapter = XenAdapter("xen", xapi_simulator.netloc, Credentials(
            xapi_simulator.username, xapi_simulator.password), config)
        adapter.open()
        try:
            # The development CA is not trusted: only insecure lets it in.
            assert len(adapter.list_hosts()) == 2
        finally:
            adapter.close()

    assert len(warnings_of(caplog, "without verifying its TLS "
                                   "certificate")) == 2


def test_vmware_insecure_warns_per_connection(vcsim_simulator, caplog):  # noqa: F811,E501
    caplog.set_level(logging.WARNING, logger="simplestack.adapters.vmware")
    config = VmwareAdapter.parse_settings("vmware", {"insecure": "true"})
    assert len(warnings_of(caplog, "accepts any TLS certificate")) == 1
    caplog.clear()

    for _ in range(2):
        adapter = VmwareAdapter("vmware", vcsim_simulator.netloc, Credentials(
            vcsim_simulator.username, vcsim_simulator.password), config)
        adapter.open()
        adapter.close()

    assert len(warnings_of(caplog, "without verifying its TLS "
                                   "certificate")) == 2


# -- libvirt TLS URIs --------------------------------------------------------

def libvirt_adapter(host, **settings):
    settings.setdefault("driver", "qemu")
    config = LibvirtAdapter.parse_settings("kvm", settings)
    return LibvirtAdapter("kvm", host, Credentials("root", CANARY_PASSWORD),
                          config)


def test_libvirt_default_uri_verifies():
    uri, remote = libvirt_adapter("10.0.0.1")._uri()

    assert remote
    assert uri == "qemu+tls://10.0.0.1/system"


def test_libvirt_pkipath_in_uri():
    adapter = libvirt_adapter("[fd00::1]:16514",
                              pkipath="/etc/simplestack/pki/kvm hosts")

    uri, _ = adapter._uri()

    assert uri == ("qemu+tls://[fd00::1]:16514/system"
                   "?pkipath=/etc/simplestack/pki/kvm%20hosts")


def test_libvirt_insecure_in_uri_after_query():
    adapter = libvirt_adapter(
        "h1", insecure="true",
        uri_template="qemu+tls://{host}/system?keyfile=/k.pem")

    uri, _ = adapter._uri()

    assert uri == "qemu+tls://h1/system?keyfile=/k.pem&no_verify=1"


def test_libvirt_tcp_and_local_uris_unchanged():
    tcp = libvirt_adapter("h1", uri_template="qemu+tcp://{host}/system")
    local = libvirt_adapter("localhost", local_uri="qemu:///system")

    assert tcp._uri() == ("qemu+tcp://h1/system", True)
    assert local._uri() == ("qemu:///system", False)


@pytest.mark.parametrize("settings, fragment", [
    ({"pkipath": "/pki", "uri_template": "qemu+tcp://{host}/system"},
     "TLS URIs only"),
    ({"insecure": "true", "uri_template": "qemu+ssh://{host}/system"},
     "TLS URIs only"),
    ({"pkipath": "relative/pki"}, "not an absolute path"),
    ({"pkipath": "/pki", "insecure": "true"}, "both set"),
    ({"insecure": "maybe"}, "insecure"),
    ({"connect_timeout": "0"}, "connect_timeout"),
])
def test_libvirt_bad_tls_setting(settings, fragment):
    with pytest.raises(ValueError) as raised:
        LibvirtAdapter.parse_settings("kvm", dict(settings, driver="qemu"))

    assert fragment in str(raised.value)


def test_libvirt_insecure_warns_per_connection(caplog):
    caplog.set_level(logging.WARNING, logger=LIBVIRT_LOGGER)
    config = LibvirtAdapter.parse_settings(
        "kvm", {"driver": "qemu", "insecure": "true"})
    assert len(warnings_of(caplog, "accepts any TLS certificate")) == 1
    caplog.clear()

    # Nobody listens on the port, so each open fails after its warning.
    for _ in range(2):
        adapter = LibvirtAdapter("kvm", "127.0.0.1:%d" % refused_port(),
                                 Credentials("root", CANARY_PASSWORD), config)
        with pytest.raises(errors.SimplestackError) as raised:
            adapter.open()
        assert CANARY_PASSWORD not in raised.value.message

    assert len(warnings_of(caplog, "without verifying its TLS "
                                   "certificate")) == 2


# -- hosts named by the hypervisor -------------------------------------------

def test_vmware_lease_host_checked():
    config = VmwareAdapter.parse_settings("vmware", {})
    config["allowed_hosts"] = HostAllowList.parse(
        "vmware", "allowed_hosts", "127.0.0.0/8 esx1.example.org")
    adapter = VmwareAdapter("vmware", "127.0.0.1:8989",
                            Credentials("root", CANARY_PASSWORD), config)

    with pytest.raises(errors.HostNotAllowed) as raised:
        adapter._device_connection("https://192.0.2.9/nfc/1/disk-0.vmdk")
    own, own_path = adapter._device_connection("https://*/nfc/1/disk-0.vmdk")
    listed, _ = adapter._device_connection(
        "https://ESX1.example.org:902/nfc/1/disk-0.vmdk")

    assert "192.0.2.9" in raised.value.message
    assert (own.host, own.port, own_path) == \
        ("127.0.0.1", 8989, "/nfc/1/disk-0.vmdk")
    assert (listed.host, listed.port) == ("esx1.example.org", 902)
