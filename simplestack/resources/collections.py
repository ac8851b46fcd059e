"""Collections and items below a host context.

::

    HostContext
     ├─ hosts/{id}                 Host
     ├─ storages/{id}              Storage
     ├─ networks/{id}              Network
     └─ guests/{id}                Guest
         ├─ disks/{id}             Disk
         ├─ network_interfaces/{mac}  NetworkInterface
         ├─ snapshots/{id}         Snapshot
         ├─ tags/{name}            Tag
         └─ media_device           MediaDevice

An item only carries its id; views ask the adapter for the record.
"""

import re

from simplestack.resources.base import Resource


class HostChild(Resource):
    """A node below a host context; gives access to the context's adapter."""

    def __init__(self, name, parent):
        super().__init__(name, parent)
        self.host_context = parent.host_context if isinstance(
            parent, HostChild) else parent

    @property
    def adapter(self):
        return self.host_context.adapter

    @property
    def request(self):
        return self.host_context.request


class Item(HostChild):
    """A member of a collection, named by its id in the URL."""

    children = {}

    @property
    def item_id(self):
        return self.__name__

    def __getitem__(self, name):
        return self.children[name](name, self)


class Collection(HostChild):
    item_class = Item

    def __getitem__(self, item_id):
        if not item_id:
            raise KeyError(item_id)
        return self.item_class(self.normalize_id(item_id), self)

    def normalize_id(self, item_id):
        return item_id


class Host(Item):
    pass


class Hosts(Collection):
    item_class = Host


class Storage(Item):
    pass


class Storages(Collection):
    item_class = Storage


class Network(Item):
    pass


class Networks(Collection):
    item_class = Network


class Disk(Item):
    pass


class Disks(Collection):
    item_class = Disk


MAC_PATTERN = re.compile(r"^[0-9a-f]{2}([:-]?)(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}$")


class NetworkInterface(Item):
    pass


class NetworkInterfaces(Collection):
    item_class = NetworkInterface

    def normalize_id(self, item_id):
        # MACs are reported lower-case with colons; accept any case and
        # dashes or no separator in URLs.
        lowered = item_id.lower()
        if not MAC_PATTERN.match(lowered):
            return item_id
        digits = lowered.replace(":", "").replace("-", "")
        return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


class Snapshot(Item):
    pass


class Snapshots(Collection):
    item_class = Snapshot


class Tag(Item):
    pass


class Tags(Collection):
    item_class = Tag


class MediaDevice(HostChild):
    def __getitem__(self, name):
        raise KeyError(name)


class Guest(Item):
    children = {
        "disks": Disks,
        "network_interfaces": NetworkInterfaces,
        "snapshots": Snapshots,
        "tags": Tags,
        "media_device": MediaDevice,
    }

    @property
    def guest_id(self):
        return self.__name__


class Guests(Collection):
    item_class = Guest


HOST_CHILDREN = {
    "hosts": Hosts,
    "storages": Storages,
    "networks": Networks,
    "guests": Guests,
}


def guest_of(resource):
    """Return the Guest resource above ``resource``."""
    while resource is not None and not isinstance(resource, Guest):
        resource = resource.__parent__
    return resource
