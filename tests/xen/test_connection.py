"""Settings, TLS, login, logout and timeouts of the Xen adapter."""

import logging

import pytest

from simplestack import errors
from simplestack.adapters.base import Credentials
from simplestack.adapters.xen import XenAdapter
from simplestack.adapters.xen.session import to_wire
from tests.conftest import CANARY_PASSWORD
from tests.session_services import xen_open_sessions as open_sessions
from tests.simulators.fixtures import XapiSimulator
from tests.xen.conftest import make_adapter

GIB = 1024 ** 3


# -- settings ----------------------------------------------------------------

@pytest.mark.parametrize("settings, setting_name", [
    ({"scheme": "ftp"}, "scheme"),
    ({"insecure": "perhaps"}, "insecure"),
    ({"connect_timeout": "soon"}, "connect_timeout"),
    ({"read_timeout": "0"}, "read_timeout"),
    ({"originator": ""}, "originator"),
    ({"ca_bundle": "/x.pem", "insecure": "true"}, "insecure"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_setting_named(settings, setting_name):
    with pytest.raises(ValueError) as raised:
        XenAdapter.parse_settings("xen", settings)

    assert setting_name in str(raised.value)


def test_defaults_verify_tls():
    config = XenAdapter.parse_settings("xen", {})

    assert config["scheme"] == "https"
    assert config["insecure"] is False
    assert config["ca_bundle"] == ""
    assert config["originator"] == "simplestack"


def test_insecure_logged_per_connection(xapi_simulator, caplog):
    caplog.set_level(logging.WARNING, logger="simplestack.adapters.xen")
    adapter = make_adapter(xapi_simulator, ca_bundle="", insecure="true")
    assert any("insecure" in record.getMessage()
               for record in caplog.records)
    caplog.clear()

    adapter.open()
    try:
        assert adapter.list_hosts()
    finally:
        adapter.close()

    assert any("without verifying" in record.getMessage()
               for record in caplog.records)


# -- TLS ----------------------------------------------------------------------

def test_untrusted_certificate_is_unreachable(xapi_simulator):
    # Without ca_bundle the system CAs apply, and none of them signed the
    # simulator's development CA.
    adapter = make_adapter(xapi_simulator, ca_bundle="")

    with pytest.raises(errors.HypervisorUnreachable) as raised:
        adapter.open()

    assert "certificate verification failed" in raised.value.message
    assert open_sessions(xapi_simulator) == 0


def test_missing_ca_bundle_named(xapi_simulator, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    adapter = make_adapter(xapi_simulator, ca_bundle=missing)

    with pytest.raises(errors.HypervisorUnreachable) as raised:
        adapter.open()

    assert str(missing) in raised.value.message


# -- login and logout ---------------------------------------------------------

def test_close_logs_out(xapi_simulator):
    before = open_sessions(xapi_simulator)
    adapter = make_adapter(xapi_simulator)
    adapter.open()
    assert open_sessions(xapi_simulator) == before + 1

    adapter.close()
    adapter.close()  # closing twice is allowed

    assert open_sessions(xapi_simulator) == before


def test_login_sends_originator(xapi_simulator):
    adapter = make_adapter(xapi_simulator, originator="sstest-origin")
    adapter.open()
    try:
        sessions = xapi_simulator.stats()["sessions"]
        assert sessions.get("sstest-origin") == 1
    finally:
        adapter.close()
    assert "sstest-origin" not in xapi_simulator.stats()["sessions"]


def test_wrong_password_is_401_without_password(xapi_simulator):
    adapter = make_adapter(xapi_simulator, password=CANARY_PASSWORD)

    with pytest.raises(errors.HypervisorAuthenticationFailed) as raised:
        adapter.open()

    assert raised.value.code == "SESSION_AUTHENTICATION_FAILED"
    assert raised.value.message == \
        "Xen (XAPI) at %s rejected the credentials" % xapi_simulator.netloc
    assert CANARY_PASSWORD not in raised.value.message
    assert CANARY_PASSWORD not in str(raised.value.params)
    assert open_sessions(xapi_simulator) == 0
    adapter.close()


def test_member_refers_to_master(xapi_simulator):
    member = xapi_simulator.member_url.split("://", 1)[1].rstrip("/")
    adapter = make_adapter(xapi_simulator, host=member)
    adapter.open()
    try:
        pool = adapter.get_pool()
        assert adapter._endpoint.host == xapi_simulator.netloc
        assert pool["master"] == "127.0.0.1"
    finally:
        adapter.close()
    assert open_sessions(xapi_simulator) == 0


def test_plain_http_scheme():
    simulator = XapiSimulator(http=True).start()
    try:
        adapter = make_adapter(simulator, ca_bundle="", scheme="http")
        adapter.open()
        try:
            assert len(adapter.list_hosts()) == 2
        finally:
            adapter.close()
        assert open_sessions(simulator) == 0
    finally:
        simulator.stop()


def test_refused_connection_is_unreachable():
    config = XenAdapter.parse_settings("xen", {})
    # Port 1 on the loopback address refuses every connection.
    adapter = XenAdapter("xen", "127.0.0.1:1", Credentials("root", "x"),
                         config)

    with pytest.raises(errors.HypervisorUnreachable) as raised:
        adapter.open()

    assert "refused" in raised.value.message


def test_hanging_call_times_out(xapi_simulator):
    adapter = make_adapter(xapi_simulator, read_timeout=0.5)
    adapter.open()
    xapi_simulator.set_fault("host.get_all_records", "hang", seconds=5)
    try:
        with pytest.raises(errors.HypervisorTimeout) as raised:
            adapter.list_hosts()
    finally:
        xapi_simulator.clear_faults()
        adapter.close()

    assert "0.5 s" in raised.value.message


def test_calls_counts_requests(xapi_simulator):
    adapter = make_adapter(xapi_simulator)
    adapter.open()
    before = adapter.calls
    adapter.list_hosts()
    adapter.close()

    # The login, the call and the logout.
    assert before == 1
    assert adapter.calls == 3


# -- values on the wire -------------------------------------------------------

def test_ints_go_out_as_strings():
    assert to_wire(5 * GIB) == str(5 * GIB)
    assert to_wire({"size": 2, "flag": True, "items": [1, "a"]}) == \
        {"size": "2", "flag": True, "items": ["1", "a"]}
    assert to_wire(0.5) == 0.5


def test_none_never_goes_out():
    with pytest.raises(TypeError):
        to_wire({"name": None})


def test_memory_over_two_gib_accepted(adapter, make_guest):
    # XML-RPC ints are 32-bit: 4 GiB in bytes can only travel as a string.
    guest = make_guest(memory=4096)

    assert guest["memory"] == 4096
