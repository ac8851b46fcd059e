"""LibvirtAdapter, combined from the mixins of this package."""

from simplestack.adapters import base
from simplestack.adapters.libvirt.calls import CallsMixin
from simplestack.adapters.libvirt.connection import ConnectionMixin
from simplestack.adapters.libvirt.devices import DevicesMixin
from simplestack.adapters.libvirt.domain_xml import DomainXmlMixin
from simplestack.adapters.libvirt.guest_records import GuestRecordsMixin
from simplestack.adapters.libvirt.guests import GuestsMixin
from simplestack.adapters.libvirt.hosts import HostsMixin
from simplestack.adapters.libvirt.images import ImagesMixin
from simplestack.adapters.libvirt.locks import LocksMixin
from simplestack.adapters.libvirt.lookups import LookupsMixin
from simplestack.adapters.libvirt.networks import NetworksMixin
from simplestack.adapters.libvirt.nics import NicsMixin
from simplestack.adapters.libvirt.power import PowerMixin
from simplestack.adapters.libvirt.settings import SettingsMixin
from simplestack.adapters.libvirt.snapshots import SnapshotsMixin
from simplestack.adapters.libvirt.tags import TagsMixin
from simplestack.adapters.libvirt.volumes import VolumesMixin

HYPERVISOR_NAMES = {
    "kvm": "libvirt (KVM)",
    "qemu": "libvirt (QEMU)",
    "lxc": "libvirt (LXC)",
    "hyperv": "libvirt (Hyper-V)",
    "test": "libvirt (test driver)",
}


# No two mixins define the same name. They come before base.Adapter so that
# their methods override the defaults of base.Adapter.
class LibvirtAdapter(SettingsMixin, ConnectionMixin, CallsMixin,
                     LookupsMixin, DomainXmlMixin, HostsMixin,
                     GuestRecordsMixin, GuestsMixin, PowerMixin,
                     ImagesMixin, DevicesMixin, NicsMixin, NetworksMixin,
                     SnapshotsMixin, TagsMixin, VolumesMixin, LocksMixin,
                     base.Adapter):
    """Adapter for the libvirt drivers QEMU, LXC, test and Hyper-V."""

    def __init__(self, type_name, host, credentials, config):
        super().__init__(type_name, host, credentials, config)
        self.hypervisor_name = HYPERVISOR_NAMES.get(
            type_name, "libvirt (%s)" % type_name)
        self.driver = config["driver"]
        self._conn = None
        self._owns_connection = True
