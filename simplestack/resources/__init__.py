"""The traversal tree: root, hypervisor types and host contexts.

::

    Root
     └─ HypervisorTypeResource      /{hypervisor}
         └─ HostContext             /{hypervisor}/{host}
             ├─ hosts, storages, networks, guests   (collections)
             └─ ...                  see simplestack.resources.collections

Resources raise ``KeyError`` for a name that cannot exist (an unknown
hypervisor type, an unknown collection), which Pyramid turns into a 404.
They do no hypervisor I/O when built: the adapter checks whether guest
``abc`` exists when a view calls it.
"""

import logging
import re

from simplestack import access, errors
from simplestack.resources.base import RequestResource
from simplestack.resources.host import HostContext
from simplestack.text import has_forbidden_character

logger = logging.getLogger(__name__)

# A host name, an IPv4 address or a bracketed IPv6 address, with an
# optional port.
HOST_PATTERN = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)


class Root(RequestResource):
    """The tree's root: one child per configured hypervisor type."""

    def __init__(self, request):
        super().__init__("", None, request)
        self.hypervisor_types = request.registry.settings[
            "simplestack.hypervisor_types"]

    def __getitem__(self, name):
        # The caller token comes first, so that a caller without one gets
        # its 401 whatever else is wrong with the path or the headers.
        access.check_caller_token(self.request)
        # Only configured types: a URL never names a module to import.
        hypervisor_type = self.hypervisor_types[name]
        return HypervisorTypeResource(name, self, hypervisor_type)


def check_path_segments(path):
    """Reject segments that traversal would resolve or libvirt cannot take.

    Traversal drops ``.`` and pops ``..``, so ``/kvm/./guests`` would make
    "guests" the host; a NUL or another control character can never be part
    of an id. Both are rejected before any resource is built.
    """
    for segment in path.split("/"):
        if segment in (".", ".."):
            raise errors.InvalidArguments(
                "invalid path %r: '.' and '..' segments are not allowed"
                % path)
        # Fast path: in ASCII, the control characters are exactly the
        # characters that str.isprintable() rejects.
        if segment.isascii() and segment.isprintable():
            continue
        if has_forbidden_character(segment):
            raise errors.InvalidArguments(
                "invalid path segment %r: control characters, U+FFFE and "
                "U+FFFF are not allowed" % segment)


def root_factory(request):
    check_path_segments(request.path_info)
    return Root(request)


class HypervisorTypeResource(RequestResource):
    def __init__(self, name, parent, hypervisor_type):
        super().__init__(name, parent, parent.request)
        self.hypervisor_type = hypervisor_type

    def __getitem__(self, host):
        match = HOST_PATTERN.match(host)
        if match is None:
            raise errors.InvalidArguments(
                "invalid host %r in the URL: expected a host name or an "
                "address, with an optional :port" % host)
        port = match.group("port")
        if port is not None and not 0 < int(port) < 65536:
            raise errors.InvalidArguments(
                "invalid port %s in host %r: expected 1 to 65535"
                % (port, host))
        # Before the host context parses the hypervisor credentials and
        # before the adapter resolves or connects to anything.
        access.check_host(self.hypervisor_type, host)
        return HostContext(host, self)
