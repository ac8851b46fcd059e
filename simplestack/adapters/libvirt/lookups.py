"""Identifiers and the lookup of domains, pools, networks and volumes.

An identifier in the 36-character UUID form is looked up as a UUID only,
and any other identifier as a name.
"""

import re

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt.constants import STATE_MAP
from simplestack.adapters.libvirt.domain_xml import DomainDescription

UUID_PATTERN = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    re.IGNORECASE)


def _is_uuid(text):
    """Tell whether ``text`` is a UUID in the 36-character form libvirt
    parses; braces and ``urn:uuid:`` prefixes are names, not UUIDs."""
    return isinstance(text, str) and bool(UUID_PATTERN.match(text))


def _validate_name(kind, name):
    """Raise InvalidArguments unless ``name`` can name a libvirt object.

    libvirt rejects '/' in domain and network names. A name in UUID form
    is rejected too, because the adapter reads such an id as a UUID only.
    "." and ".." are rejected too: libvirt 9.0's QEMU driver names folders
    after a domain, such as /var/lib/libvirt/qemu/snapshot/<name>, and a
    failed define of a domain named ".." left libvirtd with folders of
    /var/lib/libvirt/qemu deleted.
    """
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidArguments("invalid %s name %r; expected a "
                                      "non-empty string" % (kind, name))
    if "/" in name or any(ord(character) < 32 for character in name):
        raise errors.InvalidArguments(
            "invalid %s name %r; it may not contain '/' or control "
            "characters" % (kind, name))
    if name in (".", ".."):
        raise errors.InvalidArguments(
            "invalid %s name %r; libvirt names files and folders after it, "
            "so it may not be '.' or '..'" % (kind, name))
    if _is_uuid(name):
        raise errors.InvalidArguments(
            "invalid %s name %r; a name may not have the form of a UUID"
            % (kind, name))
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidArguments(
            "invalid %s name %r; it is not valid Unicode" % (kind, name))


# The maximum suffix the adapter appends to a guest name to name a file:
# "-disk<number>-<try>.qcow2" for disk volumes (see
# DevicesMixin._free_volume_name), with disk numbers below 100000.
# libvirt's own files add less (".xml.new" to the definition).
LONGEST_NAME_SUFFIX = "-disk99999-99.qcow2"

#: Maximum file name length of Linux file systems such as ext4 and XFS, in
#: bytes.
MAX_FILE_NAME_BYTES = 255

#: Maximum guest name length in UTF-8 bytes, so that the file names derived
#: from it fit in MAX_FILE_NAME_BYTES.
MAX_GUEST_NAME_BYTES = MAX_FILE_NAME_BYTES - len(LONGEST_NAME_SUFFIX)


def _validate_guest_name(name):
    """Raise InvalidArguments unless ``name`` can name a guest and the
    files that libvirt and the adapter name after it."""
    _validate_name("guest", name)
    _check_name_bytes("guest", name, MAX_GUEST_NAME_BYTES, "disk image files")


def _check_name_bytes(kind, name, maximum, files):
    """Raise InvalidArguments when ``name`` is over ``maximum`` bytes in
    UTF-8, because ``files`` are named after the object."""
    size = len(name.encode("utf-8"))
    if size > maximum:
        raise errors.InvalidArguments(
            "invalid %s name: it is %d bytes long in UTF-8, and at most "
            "%d fit, because %s are named after the %s within the file "
            "system's limit of %d bytes"
            % (kind, size, maximum, files, kind, MAX_FILE_NAME_BYTES))


#: The suffix of the longest file name that libvirt 9.0 derives from the
#: name of a network that the API makes: it writes the definition to
#: NAME.xml.new, then renames it. Networks with DHCP also get dnsmasq
#: files such as NAME.hostsfile, but the API makes networks without DHCP.
NETWORK_FILE_SUFFIX = ".xml.new"

#: Maximum network name length in UTF-8 bytes, so that the file names
#: derived from it fit in MAX_FILE_NAME_BYTES.
MAX_NETWORK_NAME_BYTES = MAX_FILE_NAME_BYTES - len(NETWORK_FILE_SUFFIX)


def _validate_network_name(name):
    """Raise InvalidArguments unless ``name`` can name a new network and
    the files that libvirt names after it."""
    _validate_name("network", name)
    _check_name_bytes("network", name, MAX_NETWORK_NAME_BYTES,
                      "libvirt's network files")


def _validate_volume_name(kind, name):
    """Raise InvalidArguments unless ``name`` can name a volume file.

    A volume's path is its pool's folder joined with its name, so the
    name must be one file name: "." and ".." name folders.
    """
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidArguments("invalid %s name %r; expected a "
                                      "non-empty string" % (kind, name))
    if "/" in name or name in (".", "..") or any(
            ord(character) < 32 for character in name):
        raise errors.InvalidArguments(
            "invalid %s name %r; it is a file name, so it may not be '.' or "
            "'..' or contain '/' or control characters" % (kind, name))
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise errors.InvalidArguments(
            "invalid %s name %r; it is not valid Unicode" % (kind, name))
    if size > MAX_FILE_NAME_BYTES:
        raise errors.InvalidArguments(
            "invalid %s name: it is %d bytes long in UTF-8, more than the "
            "%d of a file name" % (kind, size, MAX_FILE_NAME_BYTES))


class LookupsMixin:
    """Methods of LibvirtAdapter that find libvirt objects by identifier."""

    def _lookup(self, kind, identifier, by_uuid, by_name):
        """Find a domain, pool or network by UUID or, failing the UUID
        form, by name.

        A UUID is never tried as a name: a guest named with another
        guest's former UUID must not answer for it.
        """
        identifier = str(identifier)
        try:
            if _is_uuid(identifier):
                return self._call(by_uuid, identifier.lower())
            return self._call(by_name, identifier)
        except errors.EntityNotFound as error:
            raise errors.EntityNotFound(
                "%s %s not found" % (kind, identifier),
                original=error.original)
        except errors.HypervisorError as error:
            # libvirt rejects a name it can never hold (VIR_ERR_INVALID_ARG)
            # instead of reporting it missing.
            if error.original is not None and (
                    error.original.get_error_code()
                    == libvirt.VIR_ERR_INVALID_ARG):
                raise errors.EntityNotFound(
                    "%s %s not found" % (kind, identifier),
                    original=error.original)
            raise

    def _domain(self, guest_id):
        return self._lookup("guest", guest_id, self.conn.lookupByUUIDString,
                            self.conn.lookupByName)

    def _describe(self, domain, inactive=False, secure=False):
        """Parse the domain's XML: the persistent definition when
        ``inactive``, with secrets such as VNC passwords when ``secure``
        (needed for XML that is defined again)."""
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        if secure:
            flags |= libvirt.VIR_DOMAIN_XML_SECURE
        return DomainDescription(
            self._call(domain.XMLDesc, flags, domain=domain))

    def _all_descriptions(self):
        """Yield (domain, description) for the definitions of every domain.

        A running persistent domain yields its live and its persistent
        definition, because a device may be in one only. A domain deleted
        during the scan is skipped.

        NOTE: libvirt 9.0 has no bulk call for domain XML, so this costs one
        or two XMLDesc calls per domain on the connection.
        """
        for domain in self._call(self.conn.listAllDomains, 0):
            try:
                yield domain, self._describe(domain)
                if self._call(domain.isActive, domain=domain) and \
                        self._call(domain.isPersistent, domain=domain):
                    yield domain, self._describe(domain, inactive=True)
            except errors.EntityNotFound:
                continue

    def _state(self, domain):
        state, _reason = self._call(domain.state, domain=domain)
        return STATE_MAP.get(state, "UNKNOWN")

    def _pool(self, storage_id):
        return self._lookup("storage", storage_id,
                            self.conn.storagePoolLookupByUUIDString,
                            self.conn.storagePoolLookupByName)

    def _default_pool(self, storage_id=None):
        if storage_id is not None:
            return self._pool(storage_id)
        name = self.config["storage_pool"]
        try:
            return self._call(self.conn.storagePoolLookupByName, name)
        except errors.EntityNotFound as error:
            raise errors.HypervisorError(
                "the storage pool %r of the storage_pool setting does not "
                "exist on %s" % (name, self.host), original=error.original)

    def _network(self, network_id):
        return self._lookup("network", network_id,
                            self.conn.networkLookupByUUIDString,
                            self.conn.networkLookupByName)

    def _volume_by_path(self, path):
        """Return the storage volume at ``path``, or None when none is."""
        try:
            return self._call(self.conn.storageVolLookupByPath, path)
        except errors.EntityNotFound:
            return None

    def _volumes_named(self, name):
        """Return every volume called ``name``, across all pools."""
        found = []
        for pool in self._call(self.conn.listAllStoragePools,
                               libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            try:
                found.append(self._call(pool.storageVolLookupByName, name))
            except errors.EntityNotFound:
                continue
        return found

    def _hostname(self):
        return self._call(self.conn.getHostname)
