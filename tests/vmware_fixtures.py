"""VMware test resources: govmomi's vSphere simulator as a backend of the
shared suite, on two models.

Backend "vmware" is a vCenter (simulator model "vpx": a datacenter with a
standalone host and a cluster) and "vmware-esx" a standalone ESX host
(model "esx"). Each runs as a subprocess (tests/simulators/vcsim_fixtures.py)
whose datastores are folders of the test run. The kit reads the inventory
with pyVmomi over its own sessions, so its calls never count as the
adapter's, and reads datastore files straight from those folders.

Import the fixtures into a conftest.py to use them::

    from tests.vmware_fixtures import (  # noqa: F401
        vmware_simulators, vmware_kits)
"""

import contextlib
import os
import time
import urllib.parse

import pytest
from pyVmomi import vim, vmodl

from simplestack.adapters.base import Credentials
from simplestack.adapters.vmware import VmwareAdapter
from tests import backends
from tests.kits import GIB, BackendKit, Network, Storage
from tests.simulators.vcsim_fixtures import running_vcsim

MIB = 1024 ** 2

#: Shared-suite backend name by simulator model.
VMWARE_BACKENDS = {"vmware": "vpx", "vmware-esx": "esx"}

#: The standard port group that both simulator models have.
VM_NETWORK = "VM Network"


def container_items(content, object_type, paths):
    """Return [(ref, {path: value})] of every object of ``object_type``."""
    collector = vmodl.query.PropertyCollector
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [object_type], True)
    try:
        spec = collector.FilterSpec(
            objectSet=[collector.ObjectSpec(
                obj=view, skip=True, selectSet=[collector.TraversalSpec(
                    name="view", path="view", skip=False,
                    type=vim.view.ContainerView)])],
            propSet=[collector.PropertySpec(type=object_type,
                                            pathSet=list(paths))])
        result = content.propertyCollector.RetrievePropertiesEx(
            [spec], collector.RetrieveOptions())
    finally:
        view.Destroy()
    return [(item.obj, {prop.name: prop.val for prop in item.propSet or []})
            for item in (result.objects if result else [])]


class VmwareKit(BackendKit):
    """The shared suite's view of one vSphere simulator."""

    def __init__(self, backend, simulator):
        self.backend = backend
        self.simulator = simulator
        self.credentials = Credentials(simulator.username, simulator.password)

    def make_adapter(self, storage=None, network=None, host=None):
        settings = {"ca_bundle": self.simulator.ca_bundle}
        if storage is not None:
            settings["datastore"] = storage.name
        if network is not None:
            settings["network"] = network.name
        config = VmwareAdapter.parse_settings(self.backend, settings)
        return VmwareAdapter(self.backend, host or self.simulator.netloc,
                             self.credentials, config)

    def session(self):
        return self.simulator.session()

    def guest_names(self):
        with self.session() as service:
            items = container_items(service.RetrieveContent(),
                                    vim.VirtualMachine,
                                    ("name", "config.template"))
        return {values["name"] for _ref, values in items
                if not values.get("config.template")}

    def rename_guest(self, guest_id, name):
        with self.session() as service:
            content = service.RetrieveContent()
            ref = content.searchIndex.FindByUuid(None, guest_id, True, False)
            task = ref.Rename_Task(newName=name)
            deadline = time.monotonic() + 30
            # The simulator runs a rename at once, so this seldom polls.
            while task.info.state not in ("success", "error"):
                assert time.monotonic() < deadline, "Rename_Task timed out"
                time.sleep(0.01)
            assert task.info.state == "success", task.info.error

    def datastore_folder(self, storage):
        """Return the local folder of a simulated datastore."""
        with self.session() as service:
            items = container_items(service.RetrieveContent(), vim.Datastore,
                                    ("name", "summary.url"))
        for _ref, values in items:
            if values["name"] == storage.name:
                return urllib.parse.urlsplit(values["summary.url"]).path
        raise LookupError("datastore %s not found" % storage.name)

    def volumes(self, storage):
        """Return the sorted datastore paths of the disk files."""
        folder = self.datastore_folder(storage)
        found = []
        for root, _folders, files in os.walk(folder):
            for name in files:
                if name.endswith(".vmdk"):
                    relative = os.path.relpath(os.path.join(root, name),
                                               folder)
                    found.append("[%s] %s" % (storage.name, relative))
        return sorted(found)

    def storage_facts(self, storage):
        with self.session() as service:
            items = container_items(service.RetrieveContent(), vim.Datastore,
                                    ("name", "summary"))
        for _ref, values in items:
            if values["name"] == storage.name:
                summary = values["summary"]
                return {"type": summary.type,
                        "size": summary.capacity // GIB,
                        "used_space": (summary.capacity -
                                       summary.freeSpace) // GIB}
        raise LookupError("datastore %s not found" % storage.name)

    def pool_facts(self, adapter):
        with self.session() as service:
            content = service.RetrieveContent()
            hosts = container_items(content, vim.HostSystem,
                                    ("hardware.memorySize",))
            version = content.about.version
        total = sum(values["hardware.memorySize"] for _ref, values in hosts)
        return {"total_memory": total // MIB, "version": version,
                "master": adapter.host}

    def host_names(self):
        with self.session() as service:
            items = container_items(service.RetrieveContent(),
                                    vim.HostSystem, ("name",))
        return sorted(values["name"] for _ref, values in items)

    def remove_network(self, name):
        raise NotImplementedError("the VMware adapter creates no networks")

    # -- resources ------------------------------------------------------------

    def default_storage(self):
        adapter = self.make_adapter()
        adapter.open()
        try:
            record = adapter.list_storages()[0]
        finally:
            adapter.close()
        return Storage(record["id"], record["name"], None)

    def default_network(self):
        adapter = self.make_adapter()
        adapter.open()
        try:
            record = adapter.get_network(VM_NETWORK)
        finally:
            adapter.close()
        return Network(record["id"], record["name_label"], record["bridge"],
                       None)

    @contextlib.contextmanager
    def iso_image(self, storage, name=None):
        """Put an ISO file in a folder of ``storage`` and yield its
        datastore path, "[datastore] folder/name.iso"."""
        name = name or backends.unique_name("cd") + ".iso"
        folder_name = backends.unique_name("iso")
        folder = os.path.join(self.datastore_folder(storage), folder_name)
        os.makedirs(folder)
        path = os.path.join(folder, name)
        with open(path, "wb") as image:
            image.write(b"\0" * 2048)
        try:
            yield "[%s] %s/%s" % (storage.name, folder_name, name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                os.rmdir(folder)


# -- pytest fixtures ----------------------------------------------------------

@pytest.fixture(scope="session")
def vmware_simulators(tmp_path_factory):
    """One running simulator per model, started on first use: {model: it}."""
    running = {}
    with contextlib.ExitStack() as stack:
        def start(model):
            if model not in running:
                folder = tmp_path_factory.mktemp("vcsim-kit-%s" % model)
                running[model] = stack.enter_context(
                    running_vcsim(model, temporary_dir=folder))
            return running[model]
        yield start


@pytest.fixture(scope="session")
def vmware_kits(vmware_simulators):
    """A function that returns the kit of a VMware backend name."""
    kits = {}

    def kit(backend):
        if backend not in kits:
            kits[backend] = VmwareKit(
                backend, vmware_simulators(VMWARE_BACKENDS[backend]))
        return kits[backend]

    return kit
