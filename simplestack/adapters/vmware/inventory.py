"""Reading properties in bulk, and finding objects by id or name.

Every read goes through the PropertyCollector: one RetrievePropertiesEx
over a container view returns the requested properties of every object
of some types, and one over an object returns that object's. pyVmomi's
lazy attributes cost a round trip each, and govmomi's simulator drops the
connection when one reads an unset property through them.

An identifier in the 36-character UUID form is looked up as a UUID only,
and any other identifier as a name, which must then name exactly one
object: vSphere keeps names unique per folder only.
"""

import re
from typing import NamedTuple

from pyVmomi import vim, vmodl

from simplestack import errors
from simplestack.adapters.vmware.constants import derived_id

UUID_PATTERN = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    re.IGNORECASE)

PropertyCollector = vmodl.query.PropertyCollector


def is_uuid(text):
    return isinstance(text, str) and bool(UUID_PATTERN.match(text))


def validate_name(kind, name):
    """Raise InvalidArguments unless ``name`` can name a guest.

    Names are also accepted in place of ids in URLs, so a name may not
    contain '/' or have the form of a UUID. vSphere limits names to 80
    characters.
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
    if len(name) > 80:
        raise errors.InvalidArguments(
            "invalid %s name %r; vSphere names have at most 80 characters"
            % (kind, name))


class Reference(NamedTuple):
    """A managed object reference property to follow in a retrieval: the
    property ``path`` of objects of ``source_type`` refers to an object of
    ``target_type``, whose properties ``target_paths`` are read."""

    source_type: type
    path: str
    target_type: type
    target_paths: tuple[str, ...]


class Found(dict):
    """The properties of one object (path to value), with ``ref``, its
    managed object reference."""

    def __init__(self, ref, properties):
        super().__init__(properties)
        self.ref = ref


class InventoryMixin:
    """Methods of VmwareAdapter that read properties and find objects."""

    def _retrieve(self, paths_by_type, root=None, references=()):
        """Return {type: [Found]} for every object of the types under
        ``root`` (default: the root folder), with one container view and
        one RetrievePropertiesEx, plus one ContinueRetrievePropertiesEx
        per further page when the server pages the result.

        Each Reference in ``references`` also reads objects outside the
        view, such as a host's HostNetworkSystem, in the same call. They
        are grouped under Reference.target_type.
        """
        content = self.content
        view_types = list(paths_by_type)
        view = content.viewManager.CreateContainerView(
            root or content.rootFolder, view_types, True)
        # The view belongs to the session and ends with it, at logout.
        # NOTE: a reference path such as "configManager.networkSystem" is
        # nested. govmomi 0.24's simulator follows it, but it has not been
        # run against a real vCenter or ESXi.
        hops = [PropertyCollector.TraversalSpec(
            name="reference-%d" % index, type=reference.source_type,
            path=reference.path, skip=False)
            for index, reference in enumerate(references)]
        traversal = PropertyCollector.TraversalSpec(
            name="view", path="view", skip=False,
            type=vim.view.ContainerView, selectSet=hops)
        property_specs = [PropertyCollector.PropertySpec(
            type=object_type, pathSet=list(paths))
            for object_type, paths in paths_by_type.items()]
        property_specs += [PropertyCollector.PropertySpec(
            type=reference.target_type, pathSet=list(reference.target_paths))
            for reference in references]
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(
                obj=view, skip=True, selectSet=[traversal])],
            propSet=property_specs)
        found = self._collect(spec)
        types = view_types + [reference.target_type
                              for reference in references]
        grouped = {object_type: [] for object_type in types}
        for item in found:
            for object_type in types:
                if isinstance(item.ref, object_type):
                    grouped[object_type].append(item)
                    break
        return grouped

    def _properties(self, ref, paths):
        """Return the properties ``paths`` of one object as a Found; unset
        ones are absent."""
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=ref, skip=False)],
            propSet=[PropertyCollector.PropertySpec(
                type=type(ref), pathSet=list(paths))])
        found = self._collect(spec)
        if not found:
            raise errors.EntityNotFound("the %s no longer exists"
                                        % type(ref)._wsdlName)
        return found[0]

    def _collect(self, spec):
        collector = self.content.propertyCollector
        result = collector.RetrievePropertiesEx(
            [spec], PropertyCollector.RetrieveOptions())
        found = []
        while result is not None:
            for item in result.objects:
                found.append(Found(item.obj, {
                    prop.name: prop.val for prop in item.propSet or []}))
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
        return found

    # -- ids and lookups -----------------------------------------------------

    def _object_id(self, ref):
        return derived_id(self.instance_uuid, ref._moId)

    def _pick(self, kind, identifier, items, name_of=None):
        """Return the one item of ``items`` (Found) that ``identifier``
        names: its derived id in any case, or its unique name."""
        name_of = name_of or (lambda item: item.get("name"))
        if not isinstance(identifier, str):
            raise errors.EntityNotFound("%s %r not found" % (kind, identifier))
        if is_uuid(identifier):
            wanted = identifier.lower()
            matches = [item for item in items
                       if self._object_id(item.ref) == wanted]
        else:
            matches = [item for item in items if name_of(item) == identifier]
        if not matches:
            raise errors.EntityNotFound("%s %s not found" % (kind, identifier))
        if len(matches) > 1:
            raise errors.Conflict(
                "%d %ss are called %s; use the id" % (len(matches), kind,
                                                      identifier))
        return matches[0]
