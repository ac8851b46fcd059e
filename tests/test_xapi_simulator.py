"""The XAPI simulator, driven by the real XenAPI SDK (26.21.1) over HTTPS.

Most tests share the session-scoped ``xapi_simulator`` (HTTPS, 3 seeded
guests). ``plain_simulator`` is a second one over plain HTTP that models a
pool without dynamic memory control and Async tasks that take 0.5 s.
"""

import concurrent.futures
import contextlib
import hashlib
import http.client
import io
import os
import re
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import uuid
import xmlrpc.client

import pytest
import XenAPI

from tests.simulators import ca
from tests.simulators.fixtures import XapiSimulator, xapi_simulator  # noqa: F401

GIB = 1024 ** 3
MIB = 1024 ** 2


class CATransport(xmlrpc.client.SafeTransport):
    """An HTTPS transport that trusts the development CA, as an adapter would."""

    def __init__(self, ca_bundle):
        super().__init__(context=ssl.create_default_context(cafile=ca_bundle))


def transport_for(simulator):
    if simulator.http:
        return xmlrpc.client.Transport()
    return CATransport(simulator.ca_bundle)


def open_session(simulator, url=None, originator="simulator-tests"):
    session = XenAPI.Session(url or simulator.url, transport=transport_for(simulator))
    session.xenapi.login_with_password(simulator.username, simulator.password,
                                       "2.21", originator)
    return session


def raw_proxy(simulator, url=None):
    """An XML-RPC proxy without the SDK's session handling and retries."""
    return xmlrpc.client.ServerProxy(url or simulator.url,
                                     transport=transport_for(simulator))


def connection(simulator):
    parts = urllib.parse.urlsplit(simulator.url)
    if simulator.http:
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    return http.client.HTTPSConnection(
        parts.hostname, parts.port, timeout=30,
        context=ssl.create_default_context(cafile=simulator.ca_bundle))


@pytest.fixture(scope="module")
def plain_simulator():
    simulator = XapiSimulator("--http", "--no-dynamic-memory", "--task-delay", "0.5",
                              http=True).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def plain(plain_simulator):
    session = open_session(plain_simulator)
    try:
        yield session.xenapi
    finally:
        session.xenapi.session.logout()


@pytest.fixture
def xapi_session(xapi_simulator):
    session = open_session(xapi_simulator)
    try:
        yield session
    finally:
        session.xenapi.session.logout()


@pytest.fixture
def xapi(xapi_session):
    return xapi_session.xenapi


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


def test_member_rejects_login_as_slave(xapi_simulator):
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


def test_logout_invalidates_session(xapi_simulator):
    proxy = raw_proxy(xapi_simulator)
    login = proxy.session.login_with_password("root", "simulator", "2.21", "raw")
    session = login["Value"]
    assert login["Status"] == "Success"
    assert proxy.session.logout(session) == {"Status": "Success", "Value": ""}
    response = proxy.VM.get_all(session)
    assert response == {"Status": "Failure",
                      "ErrorDescription": ["SESSION_INVALID", session]}


def test_member_rejects_calls_with_valid_session(xapi_simulator):
    session = open_session(xapi_simulator)
    try:
        response = raw_proxy(xapi_simulator, xapi_simulator.member_url).VM.get_all(
            session._session)
        assert response["ErrorDescription"] == ["HOST_IS_SLAVE", "127.0.0.1"]
    finally:
        session.xenapi.session.logout()


def test_async_call_errors_are_synchronous(xapi):
    assert failure_of(xapi.Async.VM.frobnicate) == \
        ["MESSAGE_METHOD_UNKNOWN", "Async.VM.frobnicate"]
    assert failure_of(xapi.Async.VM.clean_shutdown) == \
        ["MESSAGE_PARAMETER_COUNT_MISMATCH", "Async.VM.clean_shutdown", "2", "1"]


def test_wrong_argument_type_is_field_type_error(xapi):
    vm = xapi.VM.get_by_name_label("sim-vm-001")[0]
    assert failure_of(xapi.VM.start, vm, "yes", False) == \
        ["FIELD_TYPE_ERROR", "start_paused"]


def test_malformed_body_gets_http_500(xapi_simulator):
    conn = connection(xapi_simulator)
    conn.request("POST", "/", body=b"<methodCall><methodName>VM.get_all",
                 headers={"Content-Type": "text/xml"})
    assert conn.getresponse().status == 500


def test_envelope_uses_bare_strings_and_xapi_datetimes(xapi_simulator):
    session = open_session(xapi_simulator)
    try:
        vm = session.xenapi.VM.get_by_name_label("sim-vm-002")[0]
        body = xmlrpc.client.dumps((session._session, vm), "VM.get_record").encode()
        conn = connection(xapi_simulator)
        conn.request("POST", "/", body=body, headers={"Content-Type": "text/xml"})
        response = conn.getresponse()
        text = response.read().decode()
    finally:
        session.xenapi.session.logout()
    assert response.status == 200
    assert "<fault>" not in text
    assert "<name>Status</name><value>Success</value>" in text
    assert "<name>domid</name><value>-1</value>" in text
    assert "<name>resident_on</name><value>OpaqueRef:NULL</value>" in text
    assert re.search(r"<name>snapshot_time</name><value><dateTime.iso8601>"
                     r"\d{8}T\d\d:\d\d:\d\dZ</dateTime.iso8601>", text)


# Implicit messages and the query grammar

def test_get_all_includes_templates_and_control_domains(xapi):
    records = xapi.VM.get_all_records()
    templates = [r for r in records.values() if r["is_a_template"] and not r["is_a_snapshot"]]
    control = [r for r in records.values() if r["is_control_domain"]]
    assert len(templates) >= 30
    assert all(r["is_default_template"] for r in templates
               if r["other_config"].get("default_template") == "true")
    assert len(control) == 2
    assert set(xapi.VM.get_all()) == set(records)


def test_query_grammar_filters_on_stored_text(xapi):
    guests = xapi.VM.get_all_records_where(
        'field "is_a_template" = "false" and field "is_control_domain" = "false"')
    assert {"sim-vm-001", "sim-vm-002", "sim-vm-003"} <= \
        {r["name_label"] for r in guests.values()}
    assert all(not r["is_a_template"] for r in guests.values())

    named = xapi.VM.get_all_where('field "name__label" = "sim-vm-002"')
    assert named == xapi.VM.get_by_name_label("sim-vm-002")
    either = xapi.VM.get_all_where('field "name__label" = "sim-vm-001" or '
                                   'field "name__label" = "sim-vm-003"')
    assert len(either) == 2
    not_halted = xapi.VM.get_all_records_where(
        'not (field "power_state" = "Halted") and field "is_control_domain" = "false"')
    assert all(r["power_state"] != "Halted" for r in not_halted.values())
    memory = xapi.VM.get_all_where('field "memory__static_max" = "%d"' % (512 * MIB))
    assert xapi.VM.get_by_name_label("sim-vm-001")[0] in memory


def test_query_errors(xapi):
    assert failure_of(xapi.VM.get_all_where, 'field "name__label" ==') == \
        ["INVALID_VALUE", "expr", 'field "name__label" ==']
    details = failure_of(xapi.VM.get_all_where, 'field "name_label" = "x"')
    assert details[0] == "INTERNAL_ERROR"


def test_lookups_raise_handle_and_uuid_errors(xapi):
    assert failure_of(xapi.VM.get_record, "OpaqueRef:nope") == \
        ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    missing = str(uuid.uuid4())
    assert failure_of(xapi.SR.get_by_uuid, missing) == ["UUID_INVALID", "SR", missing]
    assert failure_of(xapi.VM.set_power_state, "OpaqueRef:NULL", "Running")[0] == \
        "MESSAGE_METHOD_UNKNOWN"


def test_setters_and_map_and_set_messages(xapi):
    vm = xapi.VM.get_by_name_label("sim-vm-003")[0]
    name = unique("renamed")
    xapi.VM.set_name_label(vm, name)
    assert xapi.VM.get_by_name_label(name) == [vm]
    xapi.VM.set_name_label(vm, "sim-vm-003")

    key = unique("key")
    xapi.VM.add_to_other_config(vm, key, "1")
    assert failure_of(xapi.VM.add_to_other_config, vm, key, "2") == \
        ["MAP_DUPLICATE_KEY", "VM", "other_config", xapi.VM.get_uuid(vm), key]
    xapi.VM.remove_from_other_config(vm, key)
    assert key not in xapi.VM.get_other_config(vm)

    xapi.VM.add_tags(vm, "blue")
    xapi.VM.add_tags(vm, "blue")
    assert xapi.VM.get_tags(vm).count("blue") == 1
    xapi.VM.remove_tags(vm, "blue")
    assert "blue" not in xapi.VM.get_tags(vm)


def test_create_needs_constructor_fields(xapi):
    assert failure_of(xapi.VM.create, {"name_label": "incomplete"})[0] == \
        "FIELD_TYPE_ERROR"


def test_pool_hosts_and_metrics(xapi_session):
    xapi = xapi_session.xenapi
    pool = xapi.pool.get_all()[0]
    master = xapi.pool.get_master(pool)
    hosts = xapi.host.get_all_records()
    assert len(hosts) == 2
    assert hosts[master]["address"] == "127.0.0.1"
    member = [h for h in hosts if h != master][0]
    assert hosts[member]["address"] == "127.0.0.2"
    metrics = xapi.host_metrics.get_record(hosts[master]["metrics"])
    assert int(metrics["memory_free"]) < int(metrics["memory_total"])
    assert xapi.session.get_this_host(xapi_session._session) == master


# VM power states

def test_power_state_errors_name_expected_states(xapi):
    with guest(xapi) as vm:
        assert failure_of(xapi.VM.suspend, vm) == \
            ["VM_BAD_POWER_STATE", vm, "running", "halted"]
        assert failure_of(xapi.VM.hard_shutdown, vm) == \
            ["VM_BAD_POWER_STATE", vm, "paused, suspended, running", "halted"]
        assert failure_of(xapi.VM.resume, vm, False, False) == \
            ["VM_BAD_POWER_STATE", vm, "suspended", "halted"]
        xapi.VM.start(vm, False, False)
        assert failure_of(xapi.VM.unpause, vm) == \
            ["VM_BAD_POWER_STATE", vm, "paused", "running"]
        assert failure_of(xapi.VM.clone, vm, "copy") == \
            ["VM_BAD_POWER_STATE", vm, "halted", "running"]


def test_start_side_effects_and_shutdown(xapi):
    with guest(xapi) as vm:
        xapi.VM.start(vm, False, False)
        record = xapi.VM.get_record(vm)
        assert record["power_state"] == "Running"
        assert record["resident_on"] in xapi.host.get_all()
        assert int(record["domid"]) > 0
        assert vm in xapi.host.get_resident_VMs(record["resident_on"])
        assert all(xapi.VBD.get_currently_attached(v) for v in record["VBDs"])
        assert all(xapi.VIF.get_currently_attached(v) for v in record["VIFs"])
        assert xapi.VM_metrics.get_VCPUs_number(record["metrics"]) == "1"
        assert xapi.VM_guest_metrics.get_PV_drivers_detected(record["guest_metrics"])

        xapi.VM.clean_shutdown(vm)
        record = xapi.VM.get_record(vm)
        assert record["domid"] == "-1"
        assert record["guest_metrics"] == "OpaqueRef:NULL"
        assert not any(xapi.VBD.get_currently_attached(v) for v in record["VBDs"])


def test_pause_suspend_and_resume(xapi):
    with guest(xapi) as vm:
        xapi.VM.start(vm, True, False)
        assert xapi.VM.get_power_state(vm) == "Paused"
        xapi.VM.unpause(vm)
        xapi.VM.suspend(vm)
        assert xapi.VM.get_power_state(vm) == "Suspended"
        assert xapi.VM.get_resident_on(vm) == "OpaqueRef:NULL"
        xapi.VM.resume(vm, False, False)
        assert xapi.VM.get_power_state(vm) == "Running"
        xapi.VM.pause(vm)
        xapi.VM.hard_reboot(vm)
        assert xapi.VM.get_power_state(vm) == "Running"


def test_suspended_vm_keeps_devices_attached(xapi):
    """XAPI clears currently_attached only when a VM halts, so the devices
    of a suspended VM stay attached and device rules still apply."""
    with guest(xapi) as vm:
        xapi.VM.start(vm, False, False)
        xapi.VM.suspend(vm)
        vbd = [v for v in xapi.VM.get_VBDs(vm) if xapi.VBD.get_type(v) == "Disk"][0]
        vdi = xapi.VBD.get_VDI(vbd)
        vif = xapi.VM.get_VIFs(vm)[0]

        assert xapi.VBD.get_currently_attached(vbd) is True
        assert xapi.VIF.get_currently_attached(vif) is True
        assert failure_of(xapi.VBD.destroy, vbd)[0] == "OPERATION_NOT_ALLOWED"
        assert failure_of(xapi.VDI.resize, vdi, str(GIB)) == \
            ["VDI_IN_USE", vdi, "resize"]
        assert failure_of(xapi.VBD.unplug, vbd) == \
            ["VM_BAD_POWER_STATE", vm, "running", "suspended"]

        xapi.VM.hard_shutdown(vm)

        assert xapi.VBD.get_currently_attached(vbd) is False
        assert xapi.VIF.get_currently_attached(vif) is False


def test_templates_snapshots_and_dom0_refuse_operations(xapi):
    template = xapi.VM.get_by_name_label("Debian Bookworm 12")[0]
    assert failure_of(xapi.VM.start, template, False, False) == \
        ["VM_IS_TEMPLATE", template, "start"]
    assert failure_of(xapi.VM.destroy, template) == \
        ["VM_IS_TEMPLATE", template, "destroy"]
    snapshot = xapi.VM.get_by_name_label("sim-vm-001 snapshot")[0]
    assert failure_of(xapi.VM.start, snapshot, False, False) == \
        ["VM_IS_SNAPSHOT", snapshot, "start"]
    dom0 = [ref for ref, r in xapi.VM.get_all_records().items() if r["is_control_domain"]][0]
    assert failure_of(xapi.VM.clean_shutdown, dom0) == \
        ["OPERATION_NOT_ALLOWED", "This operation is not allowed on a control domain"]


def test_clean_shutdown_needs_guest_agent_on_hvm(xapi):
    with guest(xapi) as vm:
        xapi.VM.add_to_other_config(vm, "simulator-no-guest-agent", "true")
        xapi.VM.start(vm, False, False)
        assert failure_of(xapi.VM.clean_shutdown, vm) == ["VM_LACKS_FEATURE", vm]
        xapi.VM.hard_shutdown(vm)
        assert xapi.VM.get_power_state(vm) == "Halted"


def test_blocked_operation_comes_first(xapi):
    with guest(xapi) as vm:
        xapi.VM.add_to_blocked_operations(vm, "start", "maintenance")
        assert failure_of(xapi.VM.start, vm, False, False) == \
            ["OPERATION_BLOCKED", vm, "maintenance"]
        assert "start" not in xapi.VM.get_allowed_operations(vm)
        xapi.VM.remove_from_blocked_operations(vm, "start")
        assert "start" in xapi.VM.get_allowed_operations(vm)


def test_start_needs_free_host_memory(xapi):
    with guest(xapi, memory=100 * GIB) as vm:
        details = failure_of(xapi.VM.start, vm, False, False)
        assert details[0] == "HOST_NOT_ENOUGH_FREE_MEMORY"
        assert int(details[1]) > 100 * GIB
        assert int(details[2]) < 64 * GIB


# Memory and VCPUs

def test_memory_order_and_power_state(xapi):
    with guest(xapi) as vm:
        assert failure_of(xapi.VM.set_memory_limits, vm, str(GIB), str(512 * MIB),
                          str(GIB), str(GIB)) == ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
        xapi.VM.set_memory_limits(vm, str(256 * MIB), str(2 * GIB), str(GIB), str(2 * GIB))
        assert xapi.VM.get_memory_dynamic_min(vm) == str(GIB)
        xapi.VM.start(vm, False, False)
        assert failure_of(xapi.VM.set_memory_limits, vm, str(256 * MIB), str(GIB),
                          str(GIB), str(GIB)) == \
            ["VM_BAD_POWER_STATE", vm, "halted", "running"]
        xapi.VM.set_memory_dynamic_range(vm, str(GIB), str(GIB))
        assert xapi.VM_metrics.get_memory_actual(xapi.VM.get_metrics(vm)) == str(GIB)


def test_vcpu_constraints(xapi):
    with guest(xapi) as vm:
        assert failure_of(xapi.VM.set_VCPUs_at_startup, vm, "2") == \
            ["INVALID_VALUE", "VCPUs_at_startup", "2"]
        xapi.VM.set_VCPUs_max(vm, "4")
        xapi.VM.set_VCPUs_at_startup(vm, "2")
        assert failure_of(xapi.VM.set_VCPUs_max, vm, "1") == \
            ["INVALID_VALUE", "VCPUs_max", "1"]
        assert failure_of(xapi.VM.set_VCPUs_at_startup, vm, "0") == \
            ["INVALID_VALUE", "VCPUs_at_startup", "0"]
        xapi.VM.start(vm, False, False)
        assert failure_of(xapi.VM.set_VCPUs_max, vm, "8") == \
            ["VM_BAD_POWER_STATE", vm, "halted", "running"]
        xapi.VM.set_VCPUs_number_live(vm, "3")
        assert xapi.VM_metrics.get_VCPUs_number(xapi.VM.get_metrics(vm)) == "3"


def test_memory_must_be_pinned_without_dynamic_memory(plain):
    template = plain.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = plain.VM.clone(template, unique("pinned"))
    try:
        details = failure_of(plain.VM.set_memory_limits, vm, str(256 * MIB),
                             str(2 * GIB), str(GIB), str(2 * GIB))
        assert details[0] == "MEMORY_CONSTRAINT_VIOLATION_MAXPIN"
        plain.VM.set_memory_limits(vm, str(256 * MIB), str(GIB), str(GIB), str(GIB))
    finally:
        plain.VM.destroy(vm)


# Devices

def disk_vbd_record(vm, vdi, userdevice="1", **changes):
    record = {"VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": False,
              "mode": "RW", "type": "Disk", "unpluggable": True, "empty": False,
              "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}}
    record.update(changes)
    return record


def new_vdi(xapi, size=GIB, name=None):
    sr = xapi.pool.get_default_SR(xapi.pool.get_all()[0])
    return xapi.VDI.create({"name_label": name or unique("disk"), "SR": sr,
                            "virtual_size": str(size), "type": "user",
                            "sharable": False, "read_only": False, "other_config": {}})


def test_vbd_create_rules(xapi):
    with guest(xapi) as vm:
        vdi = new_vdi(xapi)
        try:
            assert failure_of(xapi.VBD.create, disk_vbd_record(
                vm, vdi, type="CD", mode="RW")) == ["VBD_CDS_MUST_BE_READONLY"]
            assert failure_of(xapi.VBD.create, disk_vbd_record(
                vm, "OpaqueRef:NULL", empty=True)) == \
                ["VBD_NOT_REMOVABLE_MEDIA", "in constructor"]
            assert failure_of(xapi.VBD.create, disk_vbd_record(vm, vdi, "0")) == \
                ["DEVICE_ALREADY_EXISTS", "0"]
            assert failure_of(xapi.VBD.create, disk_vbd_record(vm, vdi, "xvdz")) == \
                ["INVALID_DEVICE", "xvdz"]
            vbd = xapi.VBD.create(disk_vbd_record(vm, vdi, "autodetect"))
            assert xapi.VBD.get_userdevice(vbd) == "1"
        finally:
            for vbd in xapi.VDI.get_VBDs(vdi):
                xapi.VBD.destroy(vbd)
            xapi.VDI.destroy(vdi)


def test_cd_insert_and_eject(xapi):
    with guest(xapi) as vm:
        cd = xapi.VBD.create(disk_vbd_record(vm, "OpaqueRef:NULL", "3", type="CD",
                                             mode="RO", empty=True))
        iso_sr = xapi.SR.get_by_name_label("ISO library")[0]
        iso = xapi.SR.get_VDIs(iso_sr)[0]
        assert failure_of(xapi.VBD.eject, cd) == ["VBD_IS_EMPTY", cd]
        xapi.VBD.insert(cd, iso)
        assert failure_of(xapi.VBD.insert, cd, iso) == ["VBD_NOT_EMPTY", cd]
        xapi.VBD.eject(cd)
        assert xapi.VBD.get_empty(cd)
        disk = [v for v in xapi.VM.get_VBDs(vm) if xapi.VBD.get_type(v) == "Disk"][0]
        assert failure_of(xapi.VBD.eject, disk) == ["VBD_NOT_REMOVABLE_MEDIA", disk]


def test_hotplug_rules(xapi):
    with guest(xapi) as vm:
        vdi = new_vdi(xapi)
        vbd = xapi.VBD.create(disk_vbd_record(vm, vdi))
        assert failure_of(xapi.VBD.plug, vbd) == \
            ["VM_BAD_POWER_STATE", vm, "running", "halted"]
        xapi.VM.start(vm, False, False)
        assert failure_of(xapi.VBD.plug, vbd) == ["DEVICE_ALREADY_ATTACHED", vbd]
        assert failure_of(xapi.VBD.destroy, vbd)[0] == "OPERATION_NOT_ALLOWED"
        assert failure_of(xapi.VDI.destroy, vdi) == ["VDI_IN_USE", vdi, "destroy"]
        assert failure_of(xapi.VDI.resize, vdi, str(2 * GIB)) == \
            ["VDI_IN_USE", vdi, "resize"]
        xapi.VBD.unplug(vbd)
        assert failure_of(xapi.VBD.unplug, vbd) == ["DEVICE_ALREADY_DETACHED", vbd]
        xapi.VBD.destroy(vbd)
        xapi.VDI.resize(vdi, str(2 * GIB))
        assert xapi.VDI.get_virtual_size(vdi) == str(2 * GIB)
        assert failure_of(xapi.VDI.resize_online, vdi, str(3 * GIB)) == ["MESSAGE_REMOVED"]
        xapi.VDI.destroy(vdi)


def test_full_sr_fails_like_a_storage_backend(xapi):
    details = failure_of(new_vdi, xapi, 4096 * GIB)
    assert details == ["SR_BACKEND_FAILURE_44", "", "There is insufficient space", ""]


def test_vif_rules(xapi):
    with guest(xapi) as vm:
        network = xapi.VIF.get_network(xapi.VM.get_VIFs(vm)[0])
        record = {"device": "0", "network": network, "VM": vm, "MAC": "",
                  "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                  "qos_algorithm_params": {}}
        assert failure_of(xapi.VIF.create, record) == ["DEVICE_ALREADY_EXISTS", "0"]
        assert failure_of(xapi.VIF.create, dict(record, device="1", MAC="zz")) == \
            ["MAC_INVALID", "zz"]
        vif = xapi.VIF.create(dict(record, device="1"))
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", xapi.VIF.get_MAC(vif))
        assert xapi.VIF.get_MAC_autogenerated(vif)
        xapi.VM.start(vm, False, False)
        xapi.VIF.set_locking_mode(vif, "locked")
        xapi.VIF.set_ipv4_allowed(vif, ["192.0.2.7"])
        assert xapi.VIF.get_ipv4_allowed(vif) == ["192.0.2.7"]
        assert failure_of(xapi.VIF.destroy, vif)[0] == "OPERATION_NOT_ALLOWED"
        xapi.VIF.unplug(vif)
        xapi.VIF.destroy(vif)


def test_network_rules(xapi):
    record = {"name_label": unique("net"), "name_description": "", "MTU": "1500",
              "other_config": {}, "bridge": "xenbr0", "managed": True, "tags": []}
    assert failure_of(xapi.network.create, record) == ["BRIDGE_NAME_EXISTS", "xenbr0"]
    long_name = "x" * 16
    assert failure_of(xapi.network.create, dict(record, bridge=long_name)) == \
        ["INVALID_VALUE", "bridge", long_name]
    eth1 = xapi.network.get_by_name_label("Pool-wide network associated with eth1")[0]
    assert failure_of(xapi.network.destroy, eth1) == \
        ["NETWORK_CONTAINS_PIF"] + xapi.network.get_PIFs(eth1)

    network = xapi.network.create(dict(record, bridge=""))
    with guest(xapi) as vm:
        vif = xapi.VIF.create({"device": "1", "network": network, "VM": vm, "MAC": "",
                               "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                               "qos_algorithm_params": {}})
        xapi.VM.start(vm, False, False)
        assert failure_of(xapi.network.destroy, network) == ["NETWORK_CONTAINS_VIF", vif]
        xapi.VM.hard_shutdown(vm)
        # Unattached VIFs go with their network.
        xapi.network.destroy(network)
        assert failure_of(xapi.VIF.get_record, vif)[0] == "HANDLE_INVALID"


def test_vlan_creation_and_errors(xapi):
    pifs = xapi.PIF.get_all_records()
    eth1 = [ref for ref, r in pifs.items() if r["device"] == "eth1" and r["VLAN"] == "-1"][0]
    vlan100 = [ref for ref, r in pifs.items() if r["VLAN"] == "100"][0]
    network = xapi.network.create({"name_label": unique("vlan"), "name_description": "",
                                   "MTU": "1500", "other_config": {}, "bridge": "",
                                   "managed": True, "tags": []})
    try:
        assert failure_of(xapi.pool.create_VLAN_from_PIF, eth1, network, "4095") == \
            ["VLAN_TAG_INVALID", "4095"]
        assert failure_of(xapi.pool.create_VLAN_from_PIF, vlan100, network, "7") == \
            ["PIF_IS_VLAN", vlan100]
        assert failure_of(xapi.pool.create_VLAN_from_PIF, eth1, network, "100") == \
            ["VLAN_IN_USE", "eth1", "100"]
        created = xapi.pool.create_VLAN_from_PIF(eth1, network, "7")
        assert len(created) == 2
        assert {xapi.PIF.get_host(p) for p in created} == set(xapi.host.get_all())
        assert all(xapi.PIF.get_VLAN(p) == "7" for p in created)
        assert failure_of(xapi.pool.create_VLAN_from_PIF, eth1, network, "8")[0] == \
            "NETWORK_ALREADY_CONNECTED"
        assert failure_of(xapi.network.destroy, network)[0] == "NETWORK_CONTAINS_PIF"
        assert failure_of(xapi.PIF.destroy, eth1) == ["PIF_IS_PHYSICAL", eth1]
    finally:
        for pif in xapi.network.get_PIFs(network):
            xapi.PIF.destroy(pif)
        xapi.network.destroy(network)
    assert not [r for r in xapi.PIF.get_all_records().values() if r["VLAN"] == "7"]


# Clone, snapshot, revert, destroy

def test_template_clone_and_provision(xapi):
    template = xapi.VM.get_by_name_label("Debian Bookworm 12")[0]
    vm = xapi.VM.clone(template, unique("clone"))
    try:
        assert xapi.VM.get_is_a_template(vm)
        assert not xapi.VM.get_is_default_template(vm)
        assert xapi.VM.get_VBDs(vm) == []
        xapi.VM.provision(vm)
        vbds = xapi.VM.get_VBDs(vm)
        assert len(vbds) == 1
        assert xapi.VDI.get_virtual_size(xapi.VBD.get_VDI(vbds[0])) == str(10 * GIB)
    finally:
        vdis = [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(vm)]
        xapi.VM.destroy(vm)
        for vdi in vdis:
            xapi.VDI.destroy(vdi)


def test_snapshot_and_revert(xapi):
    with guest(xapi, memory=GIB) as vm:
        xapi.VM.start(vm, False, False)
        snapshot = xapi.VM.snapshot(vm, unique("snap"), [])
        record = xapi.VM.get_record(snapshot)
        assert record["is_a_snapshot"] and record["is_a_template"]
        assert record["snapshot_of"] == vm
        assert record["power_state"] == "Halted"
        assert snapshot in xapi.VM.get_snapshots(vm)

        xapi.VM.hard_shutdown(vm)
        xapi.VM.set_memory_limits(vm, str(512 * MIB), str(512 * MIB), str(512 * MIB),
                                  str(512 * MIB))
        xapi.VM.revert(snapshot)
        assert xapi.VM.get_memory_static_max(vm) == str(GIB)
        assert xapi.VM.get_power_state(vm) == "Halted"
        snapshot_vdis = [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(snapshot)
                         if xapi.VBD.get_type(v) == "Disk"]
        xapi.VM.destroy(snapshot)
        for vdi in snapshot_vdis:
            xapi.VDI.destroy(vdi)


def test_destroy_keeps_vdis(xapi):
    vm = new_vm(xapi)
    vdis = [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(vm)]
    vbds = xapi.VM.get_VBDs(vm)
    xapi.VM.destroy(vm)
    assert failure_of(xapi.VBD.get_record, vbds[0])[0] == "HANDLE_INVALID"
    for vdi in vdis:
        assert xapi.VDI.get_VBDs(vdi) == []
        xapi.VDI.destroy(vdi)


def test_vdi_destroy_takes_unattached_vbds(xapi):
    with guest(xapi) as vm:
        vdi = new_vdi(xapi)
        vbd = xapi.VBD.create(disk_vbd_record(vm, vdi))
        xapi.VDI.destroy(vdi)
        assert failure_of(xapi.VBD.get_record, vbd) == ["HANDLE_INVALID", "VBD", vbd]


# Async calls and tasks

def wait_for_task(xapi, task, timeout=10):
    deadline = time.monotonic() + timeout
    while xapi.task.get_status(task) in ("pending", "cancelling"):
        assert time.monotonic() < deadline, "task %s still pending" % task
        time.sleep(0.05)
    return xapi.task.get_record(task)


def task_value(record):
    return xmlrpc.client.loads("<methodResponse><params><param>%s</param></params>"
                               "</methodResponse>" % record["result"])[0][0]


def test_async_clone_returns_result_in_task(xapi):
    template = xapi.VM.get_by_name_label("Debian Bookworm 12")[0]
    name = unique("async")
    task = xapi.Async.VM.clone(template, name)
    assert task.startswith("OpaqueRef:")
    record = wait_for_task(xapi, task)
    assert record["status"] == "success"
    assert record["name_label"] == "Async.VM.clone"
    assert record["result"].startswith("<value>OpaqueRef:")
    vm = task_value(record)
    assert xapi.VM.get_name_label(vm) == name
    xapi.task.destroy(task)
    xapi.VM.destroy(vm)
    assert failure_of(xapi.task.get_record, task)[0] == "HANDLE_INVALID"


def test_async_failure_lands_on_task(xapi):
    vm = xapi.VM.get_by_name_label("sim-vm-002")[0]
    task = xapi.Async.VM.unpause(vm)
    record = wait_for_task(xapi, task)
    assert record["status"] == "failure"
    state = xapi.VM.get_power_state(vm).lower()
    assert record["error_info"] == ["VM_BAD_POWER_STATE", vm, "paused", state]
    xapi.task.destroy(task)


def test_task_cancel_and_current_operations(plain):
    with guest(plain) as vm:
        task = plain.Async.VM.start(vm, False, False)
        time.sleep(0.1)
        assert list(plain.VM.get_current_operations(vm).items()) == [(task, "start")]
        plain.task.cancel(task)
        record = wait_for_task(plain, task)
        assert record["status"] == "cancelled"
        assert record["error_info"] == ["TASK_CANCELLED", task]
        assert plain.VM.get_power_state(vm) == "Halted"
        assert plain.VM.get_current_operations(vm) == {}
        assert failure_of(plain.task.cancel, task)[0] == "OPERATION_NOT_ALLOWED"
        plain.task.destroy(task)


def test_conflicting_call_waits_for_running_operation(plain):
    with guest(plain) as vm:
        task = plain.Async.VM.start(vm, False, False)
        started = time.monotonic()
        # The task keeps "start" in current_operations for 0.5 s, so this
        # start waits for it and then finds the VM running.
        details = failure_of(plain.VM.start, vm, False, False)
        assert time.monotonic() - started >= 0.3
        assert details == ["VM_BAD_POWER_STATE", vm, "halted", "running"]
        assert wait_for_task(plain, task)["status"] == "success"
        plain.task.destroy(task)


def test_client_created_task_cancels_at_once(xapi):
    task = xapi.task.create("upload", "a client's own task")
    assert xapi.task.get_status(task) == "pending"
    assert xapi.task.get_progress(task) == 0.0
    xapi.task.cancel(task)
    assert xapi.task.get_error_info(task) == ["TASK_CANCELLED", task]
    xapi.task.destroy(task)


# Events

def test_event_from_empty_token_replays_every_object(xapi):
    batch = getattr(xapi.event, "from")(["VM", "host"], "", 1.0)
    events = batch["events"]
    assert {e["operation"] for e in events} == {"add"}
    vm_refs = {e["ref"] for e in events if e["class"] == "vm"}
    assert vm_refs == set(xapi.VM.get_all())
    assert batch["valid_ref_counts"]["host"] == 2
    assert all("snapshot" in e for e in events)


def test_event_from_token_reports_changes_and_waits(xapi):
    token = getattr(xapi.event, "from")(["vm"], "", 1.0)["token"]
    started = time.monotonic()
    quiet = getattr(xapi.event, "from")(["vm"], token, 0.3)
    assert quiet["events"] == []
    assert time.monotonic() - started >= 0.3

    vm = xapi.VM.get_by_name_label("sim-vm-003")[0]
    xapi.VM.add_tags(vm, "event")
    changed = getattr(xapi.event, "from")(["vm"], token, 5.0)
    assert [(e["operation"], e["ref"]) for e in changed["events"]] == [("mod", vm)]
    assert "event" in changed["events"][0]["snapshot"]["tags"]
    xapi.VM.remove_tags(vm, "event")

    record = {"name_label": unique("events"), "name_description": "", "MTU": "1500",
              "other_config": {}, "bridge": "", "managed": True, "tags": []}
    token = changed["token"]
    short_lived = xapi.network.create(record)
    xapi.network.destroy(short_lived)
    network = xapi.network.create(dict(record, name_label=unique("events")))
    batch = getattr(xapi.event, "from")(["network"], token, 1.0)
    assert [(e["operation"], e["ref"]) for e in batch["events"]] == [("add", network)]
    xapi.network.destroy(network)
    batch = getattr(xapi.event, "from")(["network"], batch["token"], 1.0)
    assert [(e["operation"], e["ref"]) for e in batch["events"]] == [("del", network)]
    assert "snapshot" not in batch["events"][0]
    assert failure_of(getattr(xapi.event, "from"), ["vm"], "garbage", 1.0) == \
        ["EVENT_FROM_TOKEN_PARSE_FAILURE", "garbage"]


# HTTP transfers

def transfer(simulator, method, path, body=None, headers=None, read=True):
    conn = connection(simulator)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read() if read else None
    return response, data


def upload_disk(simulator, xapi_session, vdi, data, fmt="raw"):
    """Upload a disk image and wait for its task: the 200 comes before the data is written."""
    xapi, session = xapi_session.xenapi, xapi_session._session
    task = xapi.task.create("upload", "")
    response, _ = transfer(simulator, "PUT", "/import_raw_vdi?session_id=%s&task_id=%s"
                           "&vdi=%s&format=%s" % (session, task, vdi, fmt), body=data)
    assert response.status == 200
    record = wait_for_task(xapi, task)
    xapi.task.destroy(task)
    assert record["status"] == "success", record["error_info"]


def read_raw(simulator, session, vdi, length, fmt="raw"):
    conn = connection(simulator)
    conn.request("GET", "/export_raw_vdi?session_id=%s&vdi=%s&format=%s" % (session, vdi, fmt))
    response = conn.getresponse()
    assert response.status == 200
    return response.read(length)


def test_xva_export_then_import_round_trip(xapi_simulator, xapi_session):
    xapi, session = xapi_session.xenapi, xapi_session._session
    with guest(xapi) as vm:
        disk = [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(vm)
                if xapi.VBD.get_type(v) == "Disk"][0]
        pattern = os.urandom(MIB) + b"\0" * (2 * MIB) + b"tail of the data"
        upload_disk(xapi_simulator, xapi_session, disk, pattern)

        task = xapi.task.create("export", "")
        conn = connection(xapi_simulator)
        conn.request("GET", "/export?session_id=%s&task_id=%s&ref=%s" % (session, task, vm))
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") is None
        archive = response.read()
        assert wait_for_task(xapi, task)["status"] == "success"
        xapi.task.destroy(task)

        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            names = tar.getnames()
            assert names[0] == "ova.xml"
            block = tar.extractfile(names[1]).read()
            checksum = tar.extractfile(names[2]).read().decode()
        assert re.fullmatch(r"Ref:\d+/00000000", names[1])
        assert names[2] == names[1] + ".checksum"
        assert hashlib.sha1(block).hexdigest() == checksum
        # Zero blocks between data are left out; the last block is always there.
        assert "%s/00000001" % names[1].split("/")[0] not in names
        assert "%s/00010239" % names[1].split("/")[0] in names

        task = xapi.task.create("import", "")
        response, _ = transfer(xapi_simulator, "PUT", "/import?session_id=%s&task_id=%s"
                               % (session, task), body=archive)
        assert response.status == 200
        record = wait_for_task(xapi, task)
        assert record["status"] == "success", record["error_info"]
        imported = task_value(record)[0]
        xapi.task.destroy(task)
        try:
            assert xapi.VM.get_name_label(imported) == xapi.VM.get_name_label(vm)
            assert xapi.VM.get_uuid(imported) != xapi.VM.get_uuid(vm)
            assert xapi.VM.get_power_state(imported) == "Halted"
            assert len(xapi.VM.get_VIFs(imported)) == 1
            copy = [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(imported)
                    if xapi.VBD.get_type(v) == "Disk"][0]
            assert copy != disk
            assert read_raw(xapi_simulator, session, copy, len(pattern)) == pattern
        finally:
            destroy_vm(xapi, imported)


def test_export_of_running_vm_fails_on_task(xapi_simulator, xapi_session):
    xapi, session = xapi_session.xenapi, xapi_session._session
    with guest(xapi) as vm:
        xapi.VM.start(vm, False, False)
        task = xapi.task.create("export", "")
        response, _ = transfer(xapi_simulator, "GET", "/export?session_id=%s&task_id=%s&uuid=%s"
                               % (session, task, xapi.VM.get_uuid(vm)))
        assert response.status == 500
        record = wait_for_task(xapi, task)
        assert record["status"] == "failure"
        assert record["error_info"] == \
            ["VM_BAD_POWER_STATE", vm, "halted, suspended", "running"]
        xapi.task.destroy(task)


def test_import_errors_land_on_task(xapi_simulator, xapi_session):
    xapi, session = xapi_session.xenapi, xapi_session._session
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("not-ova.xml")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    before = len(xapi.VM.get_all())
    task = xapi.task.create("import", "")
    response, _ = transfer(xapi_simulator, "PUT", "/import?session_id=%s&task_id=%s"
                           % (session, task), body=buffer.getvalue())
    assert response.status == 200
    assert wait_for_task(xapi, task)["error_info"] == \
        ["IMPORT_ERROR_UNEXPECTED_FILE", "ova.xml", "not-ova.xml"]
    xapi.task.destroy(task)
    assert len(xapi.VM.get_all()) == before

    # The simulator refuses a chunked upload as soon as it reads the
    # headers and then closes the connection, so the client sends no body:
    # a chunk still in flight would race the close and reset the socket.
    task = xapi.task.create("import", "")
    conn = connection(xapi_simulator)
    conn.putrequest("PUT", "/import?session_id=%s&task_id=%s" % (session, task))
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    assert conn.getresponse().status == 500
    assert xapi.task.get_error_info(task) == ["IMPORT_ERROR_CANNOT_HANDLE_CHUNKED"]
    xapi.task.destroy(task)


def test_transfers_need_a_session(xapi_simulator):
    response, _ = transfer(xapi_simulator, "GET", "/export?session_id=OpaqueRef:bad&ref=x")
    assert response.status == 401
    response, _ = transfer(xapi_simulator, "PUT", "/import", body=b"")
    assert response.status == 401


def test_raw_vdi_round_trip_through_vhd(xapi_simulator, xapi_session):
    xapi, session = xapi_session.xenapi, xapi_session._session
    source, target = new_vdi(xapi, 8 * MIB), new_vdi(xapi, 8 * MIB)
    try:
        pattern = b"\0" * (3 * MIB) + os.urandom(3 * MIB)
        upload_disk(xapi_simulator, xapi_session, source, pattern)
        image = read_raw(xapi_simulator, session, source, None, fmt="vhd")
        assert image[:8] == b"conectix"
        assert image[512:520] == b"cxsparse"
        # One 2 MiB block is unallocated: the image is smaller than the disk.
        assert len(image) < 8 * MIB
        upload_disk(xapi_simulator, xapi_session, target, image, fmt="vhd")
        assert read_raw(xapi_simulator, session, target, len(pattern)) == pattern
    finally:
        xapi.VDI.destroy(source)
        xapi.VDI.destroy(target)


# Statistics, faults, latency

def test_stats_count_calls_and_sessions(xapi_simulator):
    xapi_simulator.reset_stats()
    session = open_session(xapi_simulator, originator="stats-test")
    session.xenapi.VM.get_all()
    session.xenapi.VM.get_all()
    stats = xapi_simulator.stats()
    assert stats["calls"]["VM.get_all"] == 2
    assert stats["calls"]["session.login_with_password"] == 1
    assert stats["sessions"]["stats-test"] == 1
    session.xenapi.session.logout()
    stats = xapi_simulator.stats()
    assert "stats-test" not in stats["sessions"]
    assert stats["logouts"]["stats-test"] == 1
    assert xapi_simulator.reset_stats()["calls"] == {}


def test_fault_fails_limited_times(xapi_simulator, xapi):
    xapi_simulator.set_fault("VM.get_all", error=["SR_BACKEND_FAILURE_44", "", "full", ""],
                             times=2)
    try:
        for _ in range(2):
            assert failure_of(xapi.VM.get_all)[0] == "SR_BACKEND_FAILURE_44"
        assert xapi.VM.get_all()
    finally:
        xapi_simulator.clear_faults()


def test_fault_hangs_a_method(xapi_simulator, xapi):
    xapi_simulator.set_fault("pool.get_all", action="hang", seconds=0.5)
    try:
        started = time.monotonic()
        assert xapi.pool.get_all()
        assert time.monotonic() - started >= 0.5
    finally:
        xapi_simulator.clear_faults()


def test_fault_rules_are_validated(xapi_simulator):
    with pytest.raises(urllib.error.HTTPError) as caught:
        xapi_simulator.set_fault("VM.get_all", action="explode")
    assert caught.value.code == 400
    assert xapi_simulator.request("GET", "/simulator/faults") == []


@pytest.mark.parametrize("master", ["192.0.2.1", "10.0.0.1:443", "xen.example", ""])
def test_host_is_slave_fault_needs_loopback(xapi_simulator, master):
    """The service follows HOST_IS_SLAVE to the address it names, so a
    fault may name only a loopback master."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        xapi_simulator.set_fault("session.login_with_password",
                                 error=["HOST_IS_SLAVE", master])
    assert caught.value.code == 400
    assert xapi_simulator.request("GET", "/simulator/faults") == []


def test_host_is_slave_fault_on_loopback(xapi_simulator):
    try:
        for master in ("127.0.0.1", "127.0.0.3:8443", "[::1]:443", "localhost"):
            rules = xapi_simulator.set_fault("session.login_with_password",
                                             error=["HOST_IS_SLAVE", master])
            assert rules[-1]["error"] == ["HOST_IS_SLAVE", master]
    finally:
        xapi_simulator.clear_faults()


def test_latency_applies_to_every_call(xapi_simulator, xapi):
    xapi_simulator.set_latency(0.2)
    try:
        started = time.monotonic()
        xapi.pool.get_all()
        assert time.monotonic() - started >= 0.2
    finally:
        xapi_simulator.set_latency(0)


def test_concurrent_clients(xapi_simulator):
    def work(number):
        session = open_session(xapi_simulator, originator="concurrent")
        try:
            for _ in range(10):
                assert len(session.xenapi.host.get_all()) == 2
            return number
        finally:
            session.xenapi.session.logout()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(work, range(16))) == list(range(16))
    assert "concurrent" not in xapi_simulator.stats()["sessions"]


def test_sessions_over_the_limit_are_evicted(plain_simulator):
    proxy = raw_proxy(plain_simulator)
    sessions = [proxy.session.login_with_password("root", "simulator", "2.21", "leaky")
                ["Value"] for _ in range(501)]
    assert plain_simulator.stats()["sessions"]["leaky"] == 500
    assert proxy.pool.get_all(sessions[0])["ErrorDescription"] == \
        ["SESSION_INVALID", sessions[0]]
    for session in sessions[1:]:
        proxy.session.logout(session)


# The development CA and the command line

def test_dev_ca_is_created_once_under_concurrency(tmp_path, monkeypatch):
    monkeypatch.setattr(ca, "CA_DIR", str(tmp_path / "dev-ca"))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        bundles = set(pool.map(lambda _: open(ca.ca_bundle_path(), "rb").read(), range(4)))
    assert len(bundles) == 1
    assert sorted(os.listdir(tmp_path / "dev-ca")) == \
        [".lock", "ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]
    assert os.stat(tmp_path / "dev-ca" / "ca-key.pem").st_mode & 0o077 == 0
    # The server certificate verifies against the bundle for 127.0.0.1.
    server = ca.server_context()
    client = ca.client_context()
    with socket_pair_tls(server, client, "127.0.0.1") as peer:
        assert peer["subjectAltName"]


@contextlib.contextmanager
def socket_pair_tls(server_context, client_context, hostname):
    import socket
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept():
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    thread = threading.Thread(target=accept)
    thread.start()
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with client_context.wrap_socket(raw, server_hostname=hostname) as tls:
            yield tls.getpeercert()
            tls.sendall(b"x")
    thread.join(5)
    listener.close()


def test_command_line_rejects_non_loopback_address():
    result = subprocess.run([sys.executable, "-m", "tests.simulators", "xapi",
                             "--listen", "192.0.2.1:8443"],
                            capture_output=True, text=True, timeout=60,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 2
    assert "not an IPv4 loopback address" in result.stderr


def test_every_table_message_has_an_implementation():
    from tests.simulators.xapi import dispatch, simulator  # noqa: F401  (registers handlers)
    from tests.simulators.xapi.schema import MESSAGES
    # Simulator.call itself runs login and logout.
    sessions = {"session.login_with_password", "session.logout"}
    missing = [name for name, message in MESSAGES.items()
               if not message.implicit and not message.removed
               and name not in dispatch.HANDLERS and name not in sessions]
    assert missing == []
    assert len(MESSAGES) == 113
