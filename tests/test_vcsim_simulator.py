"""govmomi's vSphere simulator, run by our launcher and driven by pyVmomi 9.1.1.0.

Tests that take ``vcsim_simulator`` run on both models: a vCenter ("vpx")
and a standalone ESX host ("esx"). Each needs the Debian packages golang-go
and golang-github-vmware-govmomi-dev, and the first one builds the launcher
(about 15 s with a cold Go cache).
"""

import base64
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from pyVim.connect import SmartConnect
from pyVmomi import vim, vmodl

from tests.simulators.__main__ import main as simulators_main
from tests.simulators.vcsim import build
from tests.simulators.vcsim_fixtures import vcsim_simulator  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK_TIMEOUT = 30

# The machines each model creates with govmomi's default of two per resource pool.
MODEL_VMS = {
    "vpx": {"DC0_H0_VM0", "DC0_H0_VM1", "DC0_C0_RP0_VM0", "DC0_C0_RP0_VM1"},
    "esx": {"ha-host_VM0", "ha-host_VM1"},
}
MODEL_HOSTS = {
    "vpx": {"DC0_H0", "DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"},
    "esx": {"localhost.localdomain"},
}
API_TYPES = {"vpx": "VirtualCenter", "esx": "HostAgent"}


def retrieve(service, kind, paths):
    """Read ``paths`` of every ``kind`` object in one RetrievePropertiesEx call.

    Returns {object: {path: value}}. Unset properties are left out.
    """
    content = service.content
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    collector = vmodl.query.PropertyCollector
    spec = collector.FilterSpec(
        objectSet=[collector.ObjectSpec(
            obj=view, skip=True,
            selectSet=[collector.TraversalSpec(name="view", path="view",
                                               skip=False, type=vim.view.ContainerView)])],
        propSet=[collector.PropertySpec(type=kind, pathSet=paths)])
    try:
        result = content.propertyCollector.RetrievePropertiesEx(
            [spec], collector.RetrieveOptions())
        assert result.token is None, "the test expects every object in one page"
        return {item.obj: {prop.name: prop.val for prop in item.propSet}
                for item in result.objects}
    finally:
        view.Destroy()


def wait_for_task(service, task):
    """Poll the task's state through the PropertyCollector until it ends.

    Returns {"info.state": ..., "info.error": ...}. pyVim's WaitForTask reads
    ``task.info``, which raises TypeError in pyVmomi 9.1.1.0 for the
    simulator's snapshot tasks because their info.entity is the snapshot.
    """
    collector = vmodl.query.PropertyCollector
    spec = collector.FilterSpec(
        objectSet=[collector.ObjectSpec(obj=task)],
        propSet=[collector.PropertySpec(type=vim.Task,
                                        pathSet=["info.state", "info.error"])])
    deadline = time.monotonic() + TASK_TIMEOUT
    while True:
        result = service.content.propertyCollector.RetrievePropertiesEx(
            [spec], collector.RetrieveOptions())
        values = {prop.name: prop.val for prop in result.objects[0].propSet}
        if values["info.state"] in ("success", "error"):
            return values
        assert time.monotonic() < deadline, "task %s timed out" % task
        time.sleep(0.01)


def guest_by_name(service, name):
    for vm, values in retrieve(service, vim.VirtualMachine, ["name"]).items():
        if values["name"] == name:
            return vm
    raise LookupError("no virtual machine named %r" % name)


@pytest.fixture
def powered_off_clone(vcsim_simulator):
    """Clone a model VM, powered off, under a unique name; destroy it afterwards."""
    name = "sstest-" + uuid.uuid4().hex[:8]
    with vcsim_simulator.session() as service:
        source = guest_by_name(service, sorted(MODEL_VMS[vcsim_simulator.model])[0])
        folder = retrieve(service, vim.VirtualMachine, ["parent"])[source]["parent"]
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=False)
        outcome = wait_for_task(service, source.CloneVM_Task(folder, name, spec))
        assert outcome["info.state"] == "success", outcome.get("info.error")
        clone = guest_by_name(service, name)
        try:
            yield service, clone
        finally:
            values = retrieve(service, vim.VirtualMachine, ["runtime.powerState"])
            if clone in values:  # A test may have destroyed it.
                if values[clone]["runtime.powerState"] != "poweredOff":
                    wait_for_task(service, clone.PowerOffVM_Task())
                wait_for_task(service, clone.Destroy_Task())


def rest_login(simulator, username, password):
    """POST a vAPI session with HTTP Basic credentials; return the HTTP status."""
    url = simulator.url.replace("/sdk", "/rest/com/vmware/cis/session")
    credentials = base64.b64encode(("%s:%s" % (username, password)).encode()).decode()
    request = urllib.request.Request(url, method="POST",
                                     headers={"Authorization": "Basic " + credentials})
    try:
        with urllib.request.urlopen(request, context=simulator.ssl_context(),
                                    timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# -- connection and login -------------------------------------------------------

def test_fixture_attributes(vcsim_simulator):
    assert vcsim_simulator.model in ("vpx", "esx")
    assert vcsim_simulator.host == "127.0.0.1"
    assert vcsim_simulator.url == "https://127.0.0.1:%d/sdk" % vcsim_simulator.port
    assert vcsim_simulator.netloc == "127.0.0.1:%d" % vcsim_simulator.port
    assert os.path.isfile(vcsim_simulator.ca_bundle)


def test_login_verifies_tls(vcsim_simulator):
    with vcsim_simulator.session() as service:
        about = service.content.about
    assert about.apiType == API_TYPES[vcsim_simulator.model]


def test_unknown_ca_rejected(vcsim_simulator):
    # The system store does not contain the development CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        SmartConnect(host=vcsim_simulator.host, port=vcsim_simulator.port,
                     user=vcsim_simulator.username, pwd=vcsim_simulator.password,
                     sslContext=ssl.create_default_context())


@pytest.mark.parametrize("field", ["username", "password"])
def test_wrong_credentials_invalid_login(vcsim_simulator, field):
    credentials = {"username": vcsim_simulator.username,
                   "password": vcsim_simulator.password}
    credentials[field] = "wrong-" + credentials[field]
    with pytest.raises(vim.fault.InvalidLogin):
        with vcsim_simulator.session(**credentials):
            pass


def test_rest_login_strict(vcsim_simulator):
    simulator = vcsim_simulator
    if simulator.model == "esx":
        # An ESX host serves no vAPI endpoints.
        assert rest_login(simulator, simulator.username, simulator.password) == 404
        return
    assert rest_login(simulator, simulator.username, simulator.password) == 200
    assert rest_login(simulator, simulator.username, "wrong") == 401
    assert rest_login(simulator, "wrong", simulator.password) == 401


# -- inventory ----------------------------------------------------------------------

def test_inventory_one_retrieve(vcsim_simulator):
    with vcsim_simulator.session() as service:
        guests = retrieve(service, vim.VirtualMachine,
                          ["name", "config.uuid", "config.instanceUuid",
                           "runtime.powerState", "snapshot"])
        hosts = retrieve(service, vim.HostSystem, ["name"])

    by_name = {values["name"]: values for values in guests.values()}
    assert MODEL_VMS[vcsim_simulator.model] <= set(by_name)
    for name in MODEL_VMS[vcsim_simulator.model]:
        assert by_name[name]["runtime.powerState"] == "poweredOn", name
        assert uuid.UUID(by_name[name]["config.uuid"]), name
        # A VM without snapshots has no "snapshot" value, and no error.
        assert "snapshot" not in by_name[name], name
    uuids = [values["config.uuid"] for values in guests.values()]
    assert len(set(uuids)) == len(uuids)
    assert {values["name"] for values in hosts.values()} == MODEL_HOSTS[vcsim_simulator.model]


def test_find_by_bios_uuid(vcsim_simulator):
    with vcsim_simulator.session() as service:
        guests = retrieve(service, vim.VirtualMachine, ["config.uuid"])
        vm, values = next(iter(guests.items()))
        search = service.content.searchIndex
        found = search.FindByUuid(None, values["config.uuid"], True, False)
        missing = search.FindByUuid(None, str(uuid.uuid4()), True, False)
    assert found == vm
    assert missing is None


# -- power and faults ---------------------------------------------------------------

def test_power_on_and_off(powered_off_clone):
    service, vm = powered_off_clone

    outcome = wait_for_task(service, vm.PowerOnVM_Task())
    assert outcome["info.state"] == "success"
    state = retrieve(service, vim.VirtualMachine, ["runtime.powerState"])[vm]
    assert state["runtime.powerState"] == "poweredOn"

    outcome = wait_for_task(service, vm.PowerOffVM_Task())
    assert outcome["info.state"] == "success"
    state = retrieve(service, vim.VirtualMachine, ["runtime.powerState"])[vm]
    assert state["runtime.powerState"] == "poweredOff"


def test_power_off_twice_invalid_state(powered_off_clone):
    service, vm = powered_off_clone

    outcome = wait_for_task(service, vm.PowerOffVM_Task())

    assert outcome["info.state"] == "error"
    error = outcome["info.error"]
    assert isinstance(error, vim.fault.InvalidPowerState)
    assert error.requestedState == "poweredOff"
    assert error.existingState == "poweredOff"


def test_missing_object_fault(powered_off_clone):
    service, vm = powered_off_clone
    wait_for_task(service, vm.Destroy_Task())

    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vm.PowerOnVM_Task()


@pytest.mark.parametrize("method", ["RebootGuest", "StandbyGuest", "ExportVm"])
def test_missing_methods(vcsim_simulator, method):
    with vcsim_simulator.session() as service:
        vm = guest_by_name(service, sorted(MODEL_VMS[vcsim_simulator.model])[0])
        with pytest.raises(vmodl.fault.MethodNotFound) as raised:
            getattr(vm, method)()
    assert raised.value.method == method


# -- the launcher and its command line ----------------------------------------------

def test_build_reuses_binary():
    binary = build.build()

    assert build.build() == binary
    assert os.path.basename(binary) == "vcsim-" + build.source_hash()
    assert os.access(binary, os.X_OK)


def test_command_serves_esx(tmp_path):
    # 127.0.0.3 is outside the stored certificate, so the CA issues one for it.
    command = [sys.executable, "-m", "tests.simulators", "vcsim",
               "--listen", "127.0.0.3:0", "--esx", "--vms", "3"]
    environment = dict(os.environ, TMPDIR=str(tmp_path))
    process = subprocess.Popen(command, cwd=ROOT, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        login = process.stdout.readline().strip()
        bundle = process.stdout.readline().strip()
        assert url.startswith("https://127.0.0.3:"), (url, process.stderr.read())
        assert login == "log in as: root / simulator"
        assert bundle.startswith("CA bundle: ")
        assert os.listdir(tmp_path), "the datastore folder is under TMPDIR"

        port = urllib.parse.urlsplit(url).port
        context = ssl.create_default_context(cafile=bundle.split(": ", 1)[1])
        service = SmartConnect(host="127.0.0.3", port=port, user="root",
                               pwd="simulator", sslContext=context)
        guests = retrieve(service, vim.VirtualMachine, ["name"])
        service.content.sessionManager.Logout()
        assert len(guests) == 3
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert returncode == 0
    assert os.listdir(tmp_path) == []


def test_port_in_use_exits_2(vcsim_simulator, tmp_path):
    command = build.launcher_command(build.build(),
                                     (vcsim_simulator.host, vcsim_simulator.port),
                                     model=vcsim_simulator.model)
    result = subprocess.run(command, env=dict(os.environ, TMPDIR=str(tmp_path)),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1:%d" % vcsim_simulator.port in result.stderr
    assert result.stdout == ""
    assert os.listdir(tmp_path) == []


def test_command_rejects_other_hosts(capsys):
    with pytest.raises(SystemExit) as raised:
        simulators_main(["vcsim", "--listen", "192.0.2.1:443"])
    assert raised.value.code == 2
    assert "not an IPv4 loopback address" in capsys.readouterr().err
