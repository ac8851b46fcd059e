"""Identifiers, names and the lookup of XAPI objects.

An identifier in the 36-character UUID form is looked up as a UUID only,
and any other identifier as a name, which must then name exactly one
object: XAPI does not keep names unique.
"""

import re

from simplestack import errors
from simplestack.adapters.guest_locks import name_lock
from simplestack.adapters.xen.constants import NULL_REF
from simplestack.adapters.xen.failures import NOT_FOUND_CODES, is_gone
from simplestack.adapters.xen.records import (
    is_guest, is_guest_or_user_template)

UUID_PATTERN = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    re.IGNORECASE)


def is_uuid(text):
    return isinstance(text, str) and bool(UUID_PATTERN.match(text))


def validate_name(kind, name):
    """Raise InvalidArguments unless ``name`` can name a guest or network.

    Names are also accepted in place of ids in URLs, so a name may not
    contain '/' or have the form of a UUID.
    """
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidArguments("invalid %s name %r; expected a "
                                      "non-empty string" % (kind, name))
    if "/" in name or any(ord(character) < 32 for character in name):
        raise errors.InvalidArguments(
            "invalid %s name %r; it may not contain '/' or control "
            "characters" % (kind, name))
    if is_uuid(name):
        raise errors.InvalidArguments(
            "invalid %s name %r; a name may not have the form of a UUID"
            % (kind, name))


class LookupsMixin:
    """Methods of XenAdapter that find XAPI objects and read records."""

    def _remember(self, ref, record):
        """Note the UUID of ``ref`` for error messages; return ``record``."""
        if isinstance(record, dict) and "uuid" in record:
            self._uuids[ref] = record["uuid"]
        return record

    def _record(self, cls, ref):
        return self._remember(ref, self._call(cls + ".get_record", ref))

    def _records(self, cls, refs):
        """Return {ref: record} for ``refs``, skipping NULL."""
        return {ref: self._record(cls, ref) for ref in refs
                if ref != NULL_REF}

    def _existing_records(self, cls, refs):
        """Return {ref: record} for the ``refs`` that still exist, skipping
        NULL."""
        records = {}
        for ref in refs:
            if ref == NULL_REF:
                continue
            try:
                records[ref] = self._record(cls, ref)
            except errors.SimplestackError as error:
                if not is_gone(error):
                    raise
        return records

    def _name_ref(self, cls, ref):
        """Mark ``ref``, an object of class ``cls``, as one that the request
        names, so that a not-found failure of a call on it is 404."""
        if ref != NULL_REF:
            self._named_refs[ref] = cls

    def _names_request_object(self, code, arguments):
        """Tell whether the failure ``code`` of a call with ``arguments`` is
        about an object that the request names.

        It is when the arguments hold a UUID that the request looks up or a
        reference marked by _name_ref. A not-found failure of any other
        call is too while a named object is gone, as when another request
        deletes the guest and its devices with it, which takes one call per
        named object to find out.
        """
        for argument in arguments:
            if isinstance(argument, str) and (
                    argument in self._named_refs or is_uuid(argument)):
                return True
        if code not in NOT_FOUND_CODES:
            return False
        for ref, cls in list(self._named_refs.items()):
            try:
                self._call(cls + ".get_uuid", ref)
            except errors.SimplestackError as error:
                if is_gone(error):
                    return True
        return False

    def _all_records(self, cls):
        return self._remember_all(self._call(cls + ".get_all_records"))

    def _records_where(self, cls, query, fields=None):
        """Return {ref: record} of the ``cls`` objects that match ``query``,
        an expression in XAPI's query grammar, with one call.

        ``fields`` names the fields to keep in the records, so that the
        response parser converts only those; without it records are whole.
        """
        transport = self.session.transport
        transport.record_fields = frozenset(fields) if fields else None
        try:
            records = self._call(cls + ".get_all_records_where", query)
        finally:
            transport.record_fields = None
        return self._remember_all(records)

    def _remember_all(self, records):
        for ref, record in records.items():
            self._remember(ref, record)
        return records

    def _load_classes(self, classes, fields=None):
        """Read every object of ``classes`` with one event.from call.

        An empty token makes XAPI return each object of the classes as an
        "add" event carrying its record. Returns {class: {ref: record}}
        with the class names as given. ``fields`` maps class names to the
        fields to keep in their records, so that the response parser
        converts only those; the records of other classes are whole.
        """
        requested = {cls.lower(): cls for cls in classes}
        loaded = {cls: {} for cls in classes}
        transport = self.session.transport
        transport.event_fields = {
            cls.lower(): frozenset(names)
            for cls, names in (fields or {}).items()} or None
        try:
            batch = self._call("event.from", list(classes), "", 0.0)
        finally:
            transport.event_fields = None
        for event in batch["events"]:
            cls = requested.get(str(event.get("class", "")).lower())
            if cls is None or event.get("operation") == "del" or \
                    "snapshot" not in event:
                continue
            loaded[cls][event["ref"]] = self._remember(event["ref"],
                                                       event["snapshot"])
        return loaded

    def _find(self, cls, kind, identifier, accept=None, accept_name=None):
        """Return (ref, record) of the ``cls`` object that ``identifier``
        names.

        ``accept`` filters the records found by UUID, ``accept_name``
        (default: ``accept``) those found by name.
        """
        identifier = str(identifier)
        if is_uuid(identifier):
            try:
                ref = self._call(cls + ".get_by_uuid", identifier.lower())
            except errors.EntityNotFound as error:
                raise errors.EntityNotFound(
                    "%s %s not found" % (kind, identifier), code=error.code,
                    params=error.params, original=error.original) from None
            self._name_ref(cls, ref)
            record = self._record(cls, ref)
            if accept is not None and not accept(record):
                raise errors.EntityNotFound("%s %s not found"
                                            % (kind, identifier))
            return ref, record

        refs = self._call(cls + ".get_by_name_label", identifier)
        accept_name = accept_name or accept
        found = [(ref, record) for ref, record in self._existing_records(
            cls, refs).items() if accept_name is None or accept_name(record)]
        if not found:
            raise errors.EntityNotFound("%s %s not found" % (kind, identifier))
        if len(found) > 1:
            raise errors.Conflict(
                "%d %ss are named %r; use the id instead"
                % (len(found), kind, identifier))
        self._name_ref(cls, found[0][0])
        return found[0]

    def _guest(self, guest_id):
        """Return (ref, record) of a guest.

        A UUID finds user templates too, since PUT ``template`` turns
        guests into templates and back; a name finds guests only.
        Snapshots, control domains and the templates shipped with XAPI are
        never guests.
        """
        return self._find("VM", "guest", guest_id,
                          accept=is_guest_or_user_template,
                          accept_name=is_guest)

    def _name_lock(self, name):
        """Return a context manager that holds the lock of guest name
        ``name`` on this host in the service processes of the machine, or
        does nothing for no name.

        XAPI allows several VMs with one name, so a request checks that a
        name is free and then takes it. Two requests for one name that
        interleave would both pass the check.
        NOTE: another XAPI client can still interleave.
        """
        return name_lock(self.type_name, self.host, name)

    def _check_guest_name_free(self, name, own_ref=None):
        refs = self._call("VM.get_by_name_label", name)
        for ref, vm in self._existing_records("VM", refs).items():
            if ref != own_ref and is_guest(vm):
                raise errors.Conflict("a guest named %r exists already (%s)"
                                      % (name, vm["uuid"]))

    def _storage(self, storage_id):
        return self._find("SR", "storage", storage_id)

    def _network(self, network_id):
        return self._find("network", "network", network_id)

    def _host(self, host_id):
        if not is_uuid(host_id):
            raise errors.EntityNotFound("host %s not found" % host_id)
        return self._find("host", "host", host_id)

    def _default_storage(self):
        """Return (ref, record) of the pool's default SR."""
        pools = list(self._all_records("pool").values())
        sr_ref = pools[0]["default_SR"] if pools else NULL_REF
        if sr_ref == NULL_REF:
            raise errors.InvalidArguments(
                "the pool of %s has no default storage; name a storage_id"
                % self.host)
        return sr_ref, self._record("SR", sr_ref)
