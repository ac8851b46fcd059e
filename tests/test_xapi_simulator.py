"""The XAPI simulator, driven by the real XenAPI SDK (26.21.1) over HTTPS."""

import contextlib
import http.client
import ssl
import time
import uuid
import xmlrpc.client

import pytest
import XenAPI

from tests.simulators.fixtures import xapi_simulator  # noqa: F401

GIB = 1024 ** 3
MIB = 1024 ** 2


class CATransport(xmlrpc.client.SafeTransport):
    """An HTTPS transport that trusts the development CA, as an adapter would."""

    def __init__(self, ca_bundle):
        super().__init__(context=ssl.create_default_context(cafile=ca_bundle))


def open_session(simulator, url=None, originator="simulator-tests"):
    session = XenAPI.Session(url or simulator.url,
                             transport=CATransport(simulator.ca_bundle))
    session.xenapi.login_with_password(simulator.username, simulator.password,
                                       "2.21", originator)
    return session


@pytest.fixture
def xapi(xapi_simulator):
    session = open_session(xapi_simulator)
    try:
        yield session.xenapi
    finally:
        session.xenapi.session.logout()


def failure_of(call, *args):
    with pytest.raises(XenAPI.Failure) as caught:
        call(*args)
    return caught.value.details


def unique(prefix="sim-test"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def new_vm(xapi, memory=512 * MIB, vcpus=1):
    """Clone a default template into a halted guest with one disk and one NIC."""
    template = xapi.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = xapi.VM.clone(template, unique("vm"))
    xapi.VM.provision(vm)
    xapi.VM.set_is_a_template(vm, False)
    xapi.VM.set_memory_limits(vm, str(memory), str(memory), str(memory), str(memory))
    network = xapi.network.get_by_name_label("Pool-wide network associated with eth0")[0]
    xapi.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": "",
                     "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                     "qos_algorithm_params": {}})
    return vm


def destroy_vm(xapi, vm):
    if xapi.VM.get_power_state(vm) != "Halted":
        xapi.VM.hard_shutdown(vm)
    vdis = [xapi.VBD.get_VDI(vbd) for vbd in xapi.VM.get_VBDs(vm)
            if xapi.VBD.get_type(vbd) == "Disk"]
    xapi.VM.destroy(vm)
    for vdi in vdis:
        xapi.VDI.destroy(vdi)


@contextlib.contextmanager
def guest(xapi, **settings):
    vm = new_vm(xapi, **settings)
    try:
        yield vm
    finally:
        destroy_vm(xapi, vm)


# Sessions and dispatch

def test_login_returns_session_with_originator(xapi_simulator):
    session = open_session(xapi_simulator, originator="login-test")
    try:
        record = session.xenapi.session.get_record(session._session)
        assert record["originator"] == "login-test"
        assert xapi_simulator.stats()["sessions"]["login-test"] == 1
    finally:
        session.xenapi.session.logout()
    assert "login-test" not in xapi_simulator.stats()["sessions"]


def test_login_with_wrong_password_fails(xapi_simulator):
    session = XenAPI.Session(xapi_simulator.url,
                             transport=CATransport(xapi_simulator.ca_bundle))
    details = failure_of(session.xenapi.login_with_password, "root", "wrong",
                         "2.21", "tests")
    assert details == ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"]


def test_member_answers_host_is_slave(xapi_simulator):
    session = XenAPI.Session(xapi_simulator.member_url,
                             transport=CATransport(xapi_simulator.ca_bundle))
    details = failure_of(session.xenapi.login_with_password, "root", "simulator",
                         "2.21", "tests")
    assert details == ["HOST_IS_SLAVE", "127.0.0.1"]


def test_parameter_count_mismatch_counts_session(xapi):
    vm = xapi.VM.get_by_name_label("sim-vm-001")[0]
    assert failure_of(xapi.VM.start, vm) == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "4", "2"]


def test_unknown_method_is_named(xapi):
    assert failure_of(xapi.VM.frobnicate) == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]


def test_int64_values_arrive_as_strings(xapi):
    vm = xapi.VM.get_by_name_label("sim-vm-001")[0]
    assert xapi.VM.get_memory_static_max(vm) == str(512 * MIB)
    assert xapi.VM.get_domid(xapi.VM.get_by_name_label("sim-vm-002")[0]) == "-1"


def test_power_cycle_and_bad_power_state(xapi):
    with guest(xapi) as vm:
        assert failure_of(xapi.VM.clean_shutdown, vm) == \
            ["VM_BAD_POWER_STATE", vm, "running", "halted"]
        xapi.VM.start(vm, False, False)
        assert xapi.VM.get_power_state(vm) == "Running"
        assert failure_of(xapi.VM.destroy, vm) == \
            ["VM_BAD_POWER_STATE", vm, "halted, suspended", "running"]
        xapi.VM.clean_shutdown(vm)
        assert xapi.VM.get_resident_on(vm) == "OpaqueRef:NULL"
