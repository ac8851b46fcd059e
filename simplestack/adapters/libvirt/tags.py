"""Guest tags, kept in the adapter's own element of the domain metadata."""

import threading
import xml.etree.ElementTree as ET

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt.constants import (
    METADATA_NAMESPACE, METADATA_PREFIX)
from simplestack.adapters.libvirt.domain_xml import _to_xml

# libvirt has no atomic change of domain metadata, so tag updates, which
# read the tags and write them back, take this lock.
_tags_lock = threading.Lock()


class TagsMixin:
    """Methods of LibvirtAdapter for guest tags."""

    def list_tags(self, guest_id):
        return sorted(self._describe(self._domain(guest_id)).tags)

    def _write_tags(self, domain, tags):
        root = ET.Element("tags")
        for tag in sorted(tags):
            ET.SubElement(root, "tag").text = tag
        self._call(domain.setMetadata, libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                   _to_xml(root), METADATA_PREFIX, METADATA_NAMESPACE,
                   self._device_flags(domain), domain=domain)

    def add_tag(self, guest_id, name):
        if not isinstance(name, str) or not name:
            raise errors.InvalidArguments("invalid tag %r; expected a "
                                          "non-empty string" % (name,))
        domain = self._domain(guest_id)
        # NOTE: the lock serializes the read and the write of the tags in
        # this process only; two service processes can still lose a tag.
        with _tags_lock:
            tags = self._describe(domain).tags
            if name not in tags:
                tags.add(name)
                self._write_tags(domain, tags)
        return sorted(tags)

    def delete_tag(self, guest_id, name):
        domain = self._domain(guest_id)
        with _tags_lock:
            tags = self._describe(domain).tags
            if name in tags:
                tags.discard(name)
                self._write_tags(domain, tags)
