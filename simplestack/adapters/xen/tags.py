"""Guest tags, kept in the VM's own ``tags`` set."""

from simplestack import errors


class TagsMixin:
    """Methods of XenAdapter for guest tags. XAPI's add_tags and
    remove_tags change the set atomically, so concurrent requests lose no
    tag."""

    def list_tags(self, guest_id):
        ref, _vm = self._guest(guest_id)
        return sorted(self._call("VM.get_tags", ref))

    def add_tag(self, guest_id, name):
        if not isinstance(name, str) or not name:
            raise errors.InvalidArguments("invalid tag %r; expected a "
                                          "non-empty string" % (name,))
        ref, _vm = self._guest(guest_id)
        self._call("VM.add_tags", ref, name, vm=ref)
        return sorted(self._call("VM.get_tags", ref))

    def delete_tag(self, guest_id, name):
        ref, _vm = self._guest(guest_id)
        self._call("VM.remove_tags", ref, name, vm=ref)
