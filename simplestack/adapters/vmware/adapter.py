"""VmwareAdapter, combined from the mixins of this package."""

from simplestack.adapters import base
from simplestack.adapters.vmware.disks import DisksMixin
from simplestack.adapters.vmware.guest_records import GuestRecordsMixin
from simplestack.adapters.vmware.guests import GuestsMixin
from simplestack.adapters.vmware.hosts import HostsMixin
from simplestack.adapters.vmware.images import ImagesMixin
from simplestack.adapters.vmware.inventory import InventoryMixin
from simplestack.adapters.vmware.networks import NetworksMixin
from simplestack.adapters.vmware.nics import NicsMixin
from simplestack.adapters.vmware.power import PowerMixin
from simplestack.adapters.vmware.session import SessionMixin
from simplestack.adapters.vmware.settings import SettingsMixin
from simplestack.adapters.vmware.snapshots import SnapshotsMixin
from simplestack.adapters.vmware.tags import TagsMixin
from simplestack.adapters.vmware.tasks import TasksMixin


# No two mixins define the same name. They come before base.Adapter so that
# their methods override the defaults of base.Adapter.
class VmwareAdapter(SettingsMixin, SessionMixin, InventoryMixin, TasksMixin,
                    HostsMixin, NetworksMixin, GuestRecordsMixin,
                    GuestsMixin, PowerMixin, DisksMixin, NicsMixin,
                    SnapshotsMixin, TagsMixin, ImagesMixin, base.Adapter):
    """Adapter for vCenter and standalone ESXi hosts, through pyVmomi."""

    hypervisor_name = "VMware vSphere"

    def __init__(self, type_name, host, credentials, config):
        super().__init__(type_name, host, credentials, config)
        self._content = None
        self._stub = None
