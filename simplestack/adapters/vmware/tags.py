"""Guest tags, as vCenter custom attributes.

Each tag is its own custom attribute, called TAG_FIELD_PREFIX + the tag,
set to "1" on a tagged guest and to "" when the tag is removed. One
attribute per tag makes concurrent additions safe: a SetField call
changes one attribute only, so two requests never overwrite each other's
tag. Standalone ESXi hosts have no custom attributes.
"""

from pyVmomi import vim

from simplestack import errors
from simplestack.adapters.vmware.constants import TAG_FIELD_PREFIX

TAG_PATHS = ("name", "customValue")


class TagsMixin:
    """Methods of VmwareAdapter for guest tags."""

    def _fields_manager(self):
        manager = self.content.customFieldsManager
        if manager is None:
            raise errors.FeatureNotImplemented(
                "%s at %s cannot tag guests: custom attributes need vCenter"
                % (self.hypervisor_name, self.host))
        return manager

    def _tag_fields(self, manager):
        """Return {tag name: custom field key}."""
        fields = self._properties(manager, ("field",)).get("field") or []
        return {field.name[len(TAG_FIELD_PREFIX):]: field.key
                for field in fields
                if field.name.startswith(TAG_FIELD_PREFIX)}

    def _tags_of(self, found, fields):
        # govmomi's simulator appends a value for each SetField instead of
        # replacing it, so the last value of a key wins.
        values = {}
        for value in found.get("customValue") or []:
            values[value.key] = getattr(value, "value", "")
        return sorted(name for name, key in fields.items()
                      if values.get(key))

    def list_tags(self, guest_id):
        found = self._guest(guest_id, TAG_PATHS)
        manager = self._fields_manager()
        return self._tags_of(found, self._tag_fields(manager))

    def add_tag(self, guest_id, name):
        if not isinstance(name, str) or not name:
            raise errors.InvalidArguments("invalid tag %r; expected a "
                                          "non-empty string" % (name,))
        found = self._guest(guest_id, TAG_PATHS)
        manager = self._fields_manager()
        fields = self._tag_fields(manager)
        if name not in fields:
            try:
                field = manager.AddCustomFieldDef(
                    name=TAG_FIELD_PREFIX + name, moType=vim.VirtualMachine)
                fields[name] = field.key
            except errors.Conflict:
                # Another request defined it first.
                fields = self._tag_fields(manager)
        manager.SetField(entity=found.ref, key=fields[name], value="1")
        after = self._properties(found.ref, TAG_PATHS)
        return self._tags_of(after, self._tag_fields(manager))

    def delete_tag(self, guest_id, name):
        found = self._guest(guest_id, TAG_PATHS)
        manager = self._fields_manager()
        fields = self._tag_fields(manager)
        if name in fields and name in self._tags_of(found, fields):
            manager.SetField(entity=found.ref, key=fields[name], value="")
