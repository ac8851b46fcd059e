"""Attacks on the Xen adapter and the XAPI simulator that found faults.

Every test runs against one XAPI simulator that this module starts for
itself, so the pool changes made here reach no other test module. The
expected XAPI behaviour cited in the simulator tests comes from the
xapi-project/xen-api sources: ``destroy`` in ocaml/xapi/xapi_vm_helpers.ml
and the import handler in ocaml/xapi/import.ml.
"""

import contextlib
import http.client
import io
import ssl
import tarfile
import time
import urllib.parse

import pytest
import XenAPI
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from tests import backends
from tests.conftest import make_token
from tests.server import TESTING_INI
from tests.xen_fixtures import (  # noqa: F401 (xapi_simulator: a fixture)
    KIT_ORIGINATOR, CATransport, xapi_session, xapi_simulator)

MIB = 1024 ** 2

#: XAPI's other_config key that marks the templates shipped with XAPI.
DEFAULT_TEMPLATE_KEY = "default_template"

#: Seconds to wait for an import task of the simulator to end.
TASK_TIMEOUT = 30


@pytest.fixture(scope="module")
def xen_app(xapi_simulator):  # noqa: F811 (the fixture imported above)
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.hypervisor.xen.ca_bundle"] = \
        xapi_simulator.ca_bundle
    return main({}, **settings)


@pytest.fixture
def xen_api(xen_app, xapi_simulator):  # noqa: F811
    return TestApp(xen_app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            xapi_simulator.username, xapi_simulator.password)})


@pytest.fixture
def guests(xapi_simulator):  # noqa: F811
    """The path of the simulator's guests, /xen/127.0.0.1:PORT/guests."""
    return "/xen/%s/guests" % xapi_simulator.netloc


@pytest.fixture
def xapi(xapi_simulator):  # noqa: F811
    with xapi_session(xapi_simulator) as session:
        yield session


def default_template(xapi, exclude=("Other install media",)):
    """Return (ref, record) of a default template outside ``exclude``.

    "Other install media" is the adapter's default template for new guests,
    so the tests that damage a template leave it alone.
    """
    for ref, vm in sorted(xapi.VM.get_all_records().items(),
                          key=lambda item: item[1]["name_label"]):
        if vm["is_a_template"] and not vm["is_a_snapshot"] and \
                vm["other_config"].get(DEFAULT_TEMPLATE_KEY) == "true" and \
                vm["name_label"] not in exclude:
            return ref, vm
    raise AssertionError("the simulator has no default template")


def destroy_guest(xapi, name):
    """Destroy every VM named ``name`` with its disks, whatever its flags."""
    for ref in xapi.VM.get_by_name_label(name):
        record = xapi.VM.get_record(ref)
        with contextlib.suppress(XenAPI.Failure):
            xapi.VM.remove_from_blocked_operations(ref, "destroy")
        if record["power_state"] != "Halted":
            xapi.VM.hard_shutdown(ref)
        if record["is_a_template"] and not record["is_a_snapshot"]:
            xapi.VM.set_is_a_template(ref, False)
        vdis = [xapi.VBD.get_VDI(vbd) for vbd in record["VBDs"]
                if xapi.VBD.get_type(vbd) == "Disk"]
        for snapshot in record["snapshots"]:
            xapi.VM.destroy(snapshot)
        xapi.VM.destroy(ref)
        for vdi in vdis:
            with contextlib.suppress(XenAPI.Failure):
                xapi.VDI.destroy(vdi)


def rewrite_ova_xml(xva, replacements):
    """Return a copy of the XVA ``xva`` whose ova.xml has each (old, new)
    text of ``replacements`` replaced once; fail if one is missing."""
    source = tarfile.open(fileobj=io.BytesIO(xva))
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w",
                      format=tarfile.USTAR_FORMAT) as archive:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "ova.xml":
                text = data.decode("utf-8")
                for old, new in replacements:
                    assert old in text, old
                    text = text.replace(old, new, 1)
                data = text.encode("utf-8")
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return output.getvalue()


def xva_archive(members):
    """Return a tar archive of the (name, bytes) pairs of ``members``."""
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w",
                      format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return output.getvalue()


def upload_import(simulator, session_ref, task_ref, body):
    """Send ``body`` to the simulator's PUT /import handler; return the
    HTTP status."""
    parts = urllib.parse.urlsplit(simulator.url)
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port, timeout=TASK_TIMEOUT,
        context=ssl.create_default_context(cafile=simulator.ca_bundle))
    try:
        query = urllib.parse.urlencode({"session_id": session_ref,
                                        "task_id": task_ref})
        connection.request("PUT", "/import?" + query, body=body,
                           headers={"Content-Length": str(len(body))})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wait_for_task(xapi, task_ref):
    deadline = time.monotonic() + TASK_TIMEOUT
    while time.monotonic() < deadline:
        record = xapi.task.get_record(task_ref)
        if record["status"] not in ("pending", "cancelling"):
            return record
        time.sleep(0.05)
    raise AssertionError("task %s still pending after %d s"
                         % (task_ref, TASK_TIMEOUT))


# -- the adapter ----------------------------------------------------------


def test_default_template_is_no_guest(xen_api, guests, xapi):
    """A template that XAPI ships (other_config:default_template=true) is
    no guest, so /guests/<its uuid> must neither return nor change it.

    A PUT {"template": false} that gets through turns the shipped template
    into a guest: it then appears in GET /guests, DELETE destroys it, and
    guest creation can no longer use it.
    """
    ref, template = default_template(xapi)
    path = "%s/%s" % (guests, template["uuid"])
    try:
        fetched = xen_api.get(path, expect_errors=True)
        changed = xen_api.put_json(path, {"template": False},
                                   expect_errors=True)
        listed = [guest["id"] for guest in xen_api.get(guests).json]

        assert fetched.status_int == 404, fetched.text
        assert changed.status_int == 404, changed.text
        assert xapi.VM.get_is_a_template(ref) is True
        assert template["uuid"] not in listed
    finally:
        xapi.VM.set_is_a_template(ref, True)


def test_blocked_delete_changes_nothing(xen_api, guests, xapi):
    """DELETE of a guest whose destroy XAPI blocks (a blocked_operations
    entry, which protects a VM against accidental deletion) must fail
    before it changes anything.

    The adapter shuts the running guest down and destroys its snapshots
    with their disks before it calls VM.destroy. So when VM.destroy fails
    with OPERATION_BLOCKED, the response is 409 but the guest is already
    stopped and its snapshots are lost.
    """
    name = backends.unique_name("protected")
    created = xen_api.post_json(guests, {"name": name, "memory": 64,
                                         "hdd": 1})
    guest_id = created.json["id"]
    path = "%s/%s" % (guests, guest_id)
    try:
        snapshot = xen_api.post_json(path + "/snapshots",
                                     {"name": "keep"}).json
        xen_api.put_json(path + "/power", {"state": "start"})
        ref = xapi.VM.get_by_uuid(guest_id)
        xapi.VM.add_to_blocked_operations(ref, "destroy", "protected")

        deleted = xen_api.delete(path, expect_errors=True)

        assert deleted.status_int == 409, deleted.text
        assert deleted.json["hypervisor"]["code"] == "OPERATION_BLOCKED"
        assert xapi.VM.get_power_state(ref) == "Running"
        snapshots = [xapi.VM.get_uuid(item)
                     for item in xapi.VM.get_snapshots(ref)]
        assert snapshot["id"] in snapshots
    finally:
        destroy_guest(xapi, name)


def test_delete_shared_disk_keeps_vdi(xen_api, guests, xapi):
    """DELETE of a disk whose VDI another guest also uses (a sharable VDI)
    must leave that VDI, as DELETE of a whole guest does.

    Destroying the VDI removes the other guest's disk with it.
    """
    owner_name = backends.unique_name("disk-owner")
    sharer_name = backends.unique_name("disk-sharer")
    owner = xen_api.post_json(guests, {"name": owner_name, "memory": 64,
                                       "hdd": 1}).json
    sharer = xen_api.post_json(guests, {"name": sharer_name, "memory": 64,
                                        "hdd": 1}).json
    try:
        owner_ref = xapi.VM.get_by_uuid(owner["id"])
        owner_vbd = [vbd for vbd in xapi.VM.get_VBDs(owner_ref)
                     if xapi.VBD.get_type(vbd) == "Disk"][0]
        vdi = xapi.VBD.get_VDI(owner_vbd)
        xapi.VDI.set_sharable(vdi, True)
        xapi.VBD.create({
            "VM": xapi.VM.get_by_uuid(sharer["id"]), "VDI": vdi,
            "userdevice": "5", "bootable": False, "mode": "RW",
            "type": "Disk", "unpluggable": True, "empty": False,
            "other_config": {}, "qos_algorithm_type": "",
            "qos_algorithm_params": {}})

        deleted = xen_api.delete("%s/%s/disks/5" % (guests, sharer["id"]),
                                 expect_errors=True)
        owner_disks = xen_api.get("%s/%s/disks" % (guests,
                                                   owner["id"])).json

        assert deleted.status_int in (204, 409), deleted.text
        assert vdi in xapi.VDI.get_all(), "the shared VDI was destroyed"
        assert [disk["number"] for disk in owner_disks] == [0]
    finally:
        destroy_guest(xapi, sharer_name)
        destroy_guest(xapi, owner_name)


def test_import_of_snapshot_xva(xen_api, guests, xapi):
    """Importing an XVA whose VM record is a snapshot (is_a_snapshot and
    is_a_template set) must end in a 4xx that leaves nothing behind, or in
    a 201 whose Location GET finds.

    A 201 whose Location returns 404 leaves the imported VM in the pool,
    where no guest request can reach or delete it.
    """
    source_name = backends.unique_name("xva-source")
    imported_name = backends.unique_name("xva-snapshot")
    created = xen_api.post_json(guests, {"name": source_name, "memory": 64,
                                         "hdd": 1})
    try:
        xva = xen_api.get("%s/%s/export" % (guests, created.json["id"])).body
        crafted = rewrite_ova_xml(xva, [
            ("<name>is_a_snapshot</name><value><boolean>0</boolean>",
             "<name>is_a_snapshot</name><value><boolean>1</boolean>"),
            ("<name>is_a_template</name><value><boolean>0</boolean>",
             "<name>is_a_template</name><value><boolean>1</boolean>"),
        ])

        response = xen_api.post(
            "%s?name=%s" % (guests, imported_name), crafted,
            content_type="application/x-xva", expect_errors=True)

        if response.status_int == 201:
            found = xen_api.get(response.headers["Location"],
                                expect_errors=True)
            assert found.status_int == 200, found.text
        else:
            assert 400 <= response.status_int < 500, response.text
            assert xapi.VM.get_by_name_label(imported_name) == []
    finally:
        destroy_guest(xapi, imported_name)
        destroy_guest(xapi, source_name)


# -- the simulator's fidelity ---------------------------------------------


def test_sim_keeps_default_template_on_destroy(xapi):
    """XAPI's VM.destroy rejects any VM whose other_config has
    default_template=true with VM_CANNOT_DELETE_DEFAULT_TEMPLATE, also
    after VM.set_is_a_template(false), which leaves other_config
    unchanged. So the simulator must check the key on every VM, not on
    templates only.
    """
    ref, _template = default_template(xapi, exclude=(
        "Other install media", "Debian Bookworm 12"))
    xapi.VM.set_is_a_template(ref, False)
    assert xapi.VM.get_other_config(ref).get(DEFAULT_TEMPLATE_KEY) == "true"

    with pytest.raises(XenAPI.Failure) as raised:
        xapi.VM.destroy(ref)

    assert raised.value.details[0] == "VM_CANNOT_DELETE_DEFAULT_TEMPLATE"
    xapi.VM.set_is_a_template(ref, True)


@pytest.mark.parametrize("ova_xml", [
    b"<value><struct><member><name>version",
    b"\x00\xff" * 64,
], ids=["truncated-xml", "binary"])
def test_sim_malformed_ova_xml(xapi_simulator, ova_xml):  # noqa: F811
    """XAPI's import handler reports a failure without a more specific
    code, such as unreadable metadata, as IMPORT_ERROR [message].

    An INTERNAL_ERROR on the task instead makes the service return 502
    HypervisorError for what is the caller's broken image (400).
    """
    body = xva_archive([("ova.xml", ova_xml)])
    session = XenAPI.Session(xapi_simulator.url,
                             transport=CATransport(xapi_simulator.ca_bundle))
    session.xenapi.login_with_password(
        xapi_simulator.username, xapi_simulator.password, "1.0",
        KIT_ORIGINATOR)
    task_ref = session.xenapi.task.create("sstest malformed import", "")
    try:
        # XenAPI.Session keeps its session reference in _session.
        status = upload_import(xapi_simulator, session._session, task_ref,
                               body)
        record = wait_for_task(session.xenapi, task_ref)
    finally:
        session.xenapi.task.destroy(task_ref)
        session.xenapi.session.logout()

    assert status == 200
    assert record["status"] == "failure"
    assert record["error_info"][0] == "IMPORT_ERROR", record["error_info"]


def test_sim_suspend_keeps_devices_attached(xapi):
    """XAPI marks a VM's VBDs and VIFs detached only when the VM halts:
    force_state_reset_keep_current_operations in xapi_vm_lifecycle.ml
    clears currently_attached for Halted alone, and xenopsd events for a
    VM that is no longer resident are ignored.

    A suspended VM's saved memory still refers to its disks, so XAPI
    keeps currently_attached true and rejects VBD.destroy and VDI.resize
    on them. A simulator that detaches them lets the service delete or
    grow a disk of a suspended guest.
    """
    name = backends.unique_name("suspend")
    template = xapi.VM.get_by_name_label("Other install media")[0]
    vm = xapi.VM.clone(template, name)
    try:
        xapi.VM.set_is_a_template(vm, False)
        xapi.VM.set_memory_limits(vm, str(64 * MIB), str(64 * MIB),
                                  str(64 * MIB), str(64 * MIB))
        vdi = xapi.VDI.create({
            "name_label": name, "name_description": "",
            "SR": xapi.pool.get_default_SR(xapi.pool.get_all()[0]),
            "virtual_size": str(MIB), "type": "user", "sharable": False,
            "read_only": False, "other_config": {}, "xenstore_data": {},
            "sm_config": {}, "tags": []})
        vbd = xapi.VBD.create({
            "VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True,
            "mode": "RW", "type": "Disk", "unpluggable": True,
            "empty": False, "other_config": {}, "qos_algorithm_type": "",
            "qos_algorithm_params": {}})
        xapi.VM.start(vm, False, False)
        xapi.VM.suspend(vm)

        assert xapi.VM.get_power_state(vm) == "Suspended"
        assert xapi.VBD.get_currently_attached(vbd) is True
    finally:
        destroy_guest(xapi, name)


def test_sim_start_needs_enough_pcpus(xapi):
    """XAPI's VM.start fails with HOST_NOT_ENOUGH_PCPUS [vcpus, pcpus]
    when no host has as many physical CPUs as the VM has VCPUs, as the
    XAPI datamodel documents for that error. The simulated hosts have 16
    CPUs (cpu_info:cpu_count), so a 32-VCPU VM must not start.
    """
    name = backends.unique_name("pcpus")
    template = xapi.VM.get_by_name_label("Other install media")[0]
    vm = xapi.VM.clone(template, name)
    try:
        xapi.VM.set_is_a_template(vm, False)
        xapi.VM.set_memory_limits(vm, str(64 * MIB), str(64 * MIB),
                                  str(64 * MIB), str(64 * MIB))
        xapi.VM.set_VCPUs_max(vm, "32")
        xapi.VM.set_VCPUs_at_startup(vm, "32")
        cpu_counts = [int(xapi.host.get_cpu_info(host)["cpu_count"])
                      for host in xapi.host.get_all()]
        assert max(cpu_counts) < 32

        with pytest.raises(XenAPI.Failure) as raised:
            xapi.VM.start(vm, False, False)

        assert raised.value.details[0] == "HOST_NOT_ENOUGH_PCPUS"
    finally:
        destroy_guest(xapi, name)
