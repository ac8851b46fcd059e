"""What the shared adapter suite needs from each backend: a backend kit.

The suite in tests/adapters runs the same tests against libvirt (test
driver, QEMU, LXC), Xen (the XAPI simulator) and VMware (govmomi's vSphere
simulator as a vCenter and as an ESX host). Each backend supplies a kit
(LibvirtKit in tests/libvirt_fixtures.py, XenKit in tests/xen_fixtures.py,
VmwareKit in tests/vmware_fixtures.py) with the methods of BackendKit, and
the handles below for the storage, network and ISO image that the tests
use. A test checks what the hypervisor holds through the kit, never
through the adapter under test.
"""

from collections import namedtuple

GIB = 1024 ** 3

#: A storage the tests create disks in: ``id`` and ``name`` as the adapter
#: reports them, ``native`` the backend's own object.
Storage = namedtuple("Storage", "id name native")

#: A network for guest NICs, isolated from any real network.
Network = namedtuple("Network", "id name bridge native")


class BackendKit:
    """The interface of a backend kit; every method raises here."""

    #: The backend name: "test", "qemu", "lxc", "xen", "vmware" or
    #: "vmware-esx".
    backend = None

    def make_adapter(self, storage=None, network=None, host=None):
        """Return an unopened adapter for the backend.

        ``storage`` and ``network`` become the adapter's defaults where it
        has such settings; ``host`` replaces the URL host.
        """
        raise NotImplementedError

    def guest_names(self):
        """Return the set of guest names on the hypervisor."""
        raise NotImplementedError

    def rename_guest(self, guest_id, name):
        """Rename the stopped guest ``guest_id`` to ``name`` with the
        hypervisor's own API, past the adapter's name checks."""
        raise NotImplementedError

    def volumes(self, storage):
        """Return the sorted ids of the disk volumes in ``storage``."""
        raise NotImplementedError

    def storage_facts(self, storage):
        """Return {"type", "size", "used_space"} of ``storage`` as the
        hypervisor reports them, sizes in GiB rounded down."""
        raise NotImplementedError

    def pool_facts(self, adapter):
        """Return {"total_memory" (MiB), "version", "master"}."""
        raise NotImplementedError

    def host_names(self):
        """Return the sorted names of the hosts."""
        raise NotImplementedError

    def remove_network(self, name):
        """Delete the network called ``name``, which a test created."""
        raise NotImplementedError
