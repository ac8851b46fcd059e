"""XenAdapter, combined from the mixins of this package."""

from simplestack.adapters import base
from simplestack.adapters.xen.device_numbers import DeviceNumbersMixin
from simplestack.adapters.xen.disks import DisksMixin
from simplestack.adapters.xen.guest_records import GuestRecordsMixin
from simplestack.adapters.xen.guests import GuestsMixin
from simplestack.adapters.xen.hosts import HostsMixin
from simplestack.adapters.xen.images import ImagesMixin
from simplestack.adapters.xen.lookups import LookupsMixin
from simplestack.adapters.xen.networks import NetworksMixin
from simplestack.adapters.xen.nics import NicsMixin
from simplestack.adapters.xen.power import PowerMixin
from simplestack.adapters.xen.session import SessionMixin
from simplestack.adapters.xen.settings import SettingsMixin
from simplestack.adapters.xen.snapshots import SnapshotsMixin
from simplestack.adapters.xen.tags import TagsMixin
from simplestack.adapters.xen.tasks import TasksMixin


# No two mixins define the same name. They come before base.Adapter so that
# their methods override the defaults of base.Adapter.
class XenAdapter(SettingsMixin, SessionMixin, LookupsMixin, TasksMixin,
                 DeviceNumbersMixin, HostsMixin, GuestRecordsMixin,
                 GuestsMixin, PowerMixin, ImagesMixin, DisksMixin, NicsMixin,
                 NetworksMixin, SnapshotsMixin, TagsMixin, base.Adapter):
    """Adapter for XenServer and XCP-ng pools, through XAPI."""

    hypervisor_name = "Xen (XAPI)"

    def __init__(self, type_name, host, credentials, config):
        super().__init__(type_name, host, credentials, config)
        self._session = None
        self._endpoint = None
        self._uuids = {}
        self._named_refs = {}
