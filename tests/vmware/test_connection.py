"""Settings, TLS, login, logout and timeouts of the VMware adapter."""

import logging
import socket
import threading

import pytest

from simplestack import errors
from simplestack.adapters.vmware import VmwareAdapter
from simplestack.adapters.vmware.session import split_host
from tests.conftest import CANARY_PASSWORD
from tests.vmware.conftest import make_adapter, open_sessions


# -- settings ----------------------------------------------------------------

@pytest.mark.parametrize("settings, setting_name", [
    ({"insecure": "perhaps"}, "insecure"),
    ({"connect_timeout": "soon"}, "connect_timeout"),
    ({"read_timeout": "0"}, "read_timeout"),
    ({"task_timeout": "-1"}, "task_timeout"),
    ({"guest_os": ""}, "guest_os"),
    ({"ca_bundle": "/x.pem", "insecure": "true"}, "insecure"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_setting_named(settings, setting_name):
    with pytest.raises(ValueError) as raised:
        VmwareAdapter.parse_settings("vmware", settings)

    assert setting_name in str(raised.value)


def test_defaults_verify_tls():
    config = VmwareAdapter.parse_settings("vmware", {})

    assert config["insecure"] is False
    assert config["ca_bundle"] == ""


def test_insecure_logged_per_connection(vcsim_simulator, caplog):
    caplog.set_level(logging.WARNING, logger="simplestack.adapters.vmware")
    adapter = make_adapter(vcsim_simulator, ca_bundle="", insecure="true")
    assert any("insecure" in record.getMessage()
               for record in caplog.records)
    caplog.clear()

    adapter.open()
    adapter.close()

    assert any("without verifying" in record.getMessage()
               for record in caplog.records)


def test_untrusted_certificate_is_unreachable(vcsim_simulator):
    # The system CAs do not include the development CA, and the host is a
    # loopback address, for which pyVmomi would skip verification if the
    # adapter gave it no SSL context.
    adapter = make_adapter(vcsim_simulator, ca_bundle="")

    with pytest.raises(errors.HypervisorUnreachable) as raised:
        adapter.open()

    assert "certificate verification failed" in raised.value.message
    assert "ca_bundle" in raised.value.message


def test_missing_ca_bundle_named(vcsim_simulator, tmp_path):
    missing = str(tmp_path / "none.pem")
    adapter = make_adapter(vcsim_simulator, ca_bundle=missing)

    with pytest.raises(errors.HypervisorUnreachable) as raised:
        adapter.open()

    assert missing in raised.value.message


def test_close_logs_out(vcsim_simulator):
    before = open_sessions(vcsim_simulator)
    adapter = make_adapter(vcsim_simulator)
    adapter.open()
    assert open_sessions(vcsim_simulator) == before + 1

    adapter.close()
    adapter.close()

    assert open_sessions(vcsim_simulator) == before


def test_error_path_logs_out(vcsim_simulator):
    before = open_sessions(vcsim_simulator)
    adapter = make_adapter(vcsim_simulator)
    adapter.open()

    with pytest.raises(errors.EntityNotFound):
        adapter.get_guest("00000000-0000-4000-8000-000000000000")
    adapter.close()

    assert open_sessions(vcsim_simulator) == before


def test_wrong_password_is_401_without_password(vcsim_simulator):
    adapter = make_adapter(vcsim_simulator, password=CANARY_PASSWORD)

    with pytest.raises(errors.HypervisorAuthenticationFailed) as raised:
        adapter.open()

    assert raised.value.code == "InvalidLogin"
    assert raised.value.message == (
        "VMware vSphere at %s rejected the credentials"
        % vcsim_simulator.netloc)
    assert CANARY_PASSWORD not in raised.value.message
    assert CANARY_PASSWORD not in repr(raised.value.params)
    assert CANARY_PASSWORD not in repr(adapter.credentials)


def test_refused_connection_is_unreachable(vcsim_simulator):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = make_adapter(vcsim_simulator, host="127.0.0.1:%d" % port)

    with pytest.raises(errors.HypervisorUnreachable) as raised:
        adapter.open()

    assert "connection refused" in raised.value.message


def test_silent_server_times_out(vcsim_simulator):
    # A server that accepts connections and never replies, so the TLS
    # handshake, part of the connection, never ends.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = []
    thread = threading.Thread(
        target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    adapter = make_adapter(vcsim_simulator, connect_timeout="0.5",
                           host="127.0.0.1:%d" % listener.getsockname()[1])
    try:
        with pytest.raises(errors.HypervisorTimeout) as raised:
            adapter.open()
    finally:
        thread.join(5)
        for connection, _address in accepted:
            connection.close()
        listener.close()

    assert "0.5 s" in raised.value.message


def test_calls_counts_requests(vcsim_simulator):
    adapter = make_adapter(vcsim_simulator)
    adapter.open()
    try:
        # RetrieveServiceContent and Login.
        assert adapter.calls == 2
        before = adapter.calls
        adapter.list_hosts()
        # CreateContainerView and RetrievePropertiesEx.
        assert adapter.calls - before == 2
    finally:
        adapter.close()
    # Logout.
    assert adapter.calls == 5


@pytest.mark.parametrize("host, name, port", [
    ("10.0.0.1", "10.0.0.1", 443),
    ("10.0.0.1:8443", "10.0.0.1", 8443),
    ("[fd00::1]:9443", "fd00::1", 9443),
    ("vc.example.org", "vc.example.org", 443),
])
def test_host_and_port_split(host, name, port):
    assert split_host(host) == (name, port)
