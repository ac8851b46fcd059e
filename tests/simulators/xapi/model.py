"""The object store: records by class and ref, reverse references, events.

Every call runs under ``Database.lock``. Records hold Python values (int,
bool, float, str, datetime, list, dict); the wire module turns them into
XAPI's XML-RPC forms. Set fields that list the objects pointing back (such
as ``VM.VBDs``) are not stored: they are computed from an index kept up to
date on every change, as XAPI computes them from its database.
"""

import datetime
import threading
import uuid as uuid_module

from .errors import Failure
from .schema import CLASSES, NULL_REF, parse_default

# (class, set field) -> (class of the members, their field pointing back).
REVERSE_FIELDS = {
    ("VM", "VBDs"): ("VBD", "VM"),
    ("VM", "VIFs"): ("VIF", "VM"),
    ("VM", "snapshots"): ("VM", "snapshot_of"),
    ("VM", "children"): ("VM", "parent"),
    ("host", "resident_VMs"): ("VM", "resident_on"),
    ("host", "PIFs"): ("PIF", "host"),
    ("host", "PBDs"): ("PBD", "host"),
    ("VDI", "VBDs"): ("VBD", "VDI"),
    ("VDI", "snapshots"): ("VDI", "snapshot_of"),
    ("SR", "VDIs"): ("VDI", "SR"),
    ("SR", "PBDs"): ("PBD", "SR"),
    ("network", "VIFs"): ("VIF", "network"),
    ("network", "PIFs"): ("PIF", "network"),
    ("task", "subtasks"): ("task", "subtask_of"),
}

# (member class, pointer field) -> (target class, set field on the target).
POINTERS = {member: (target[0], target[1])
            for target, member in REVERSE_FIELDS.items()}

# class -> ((field name, computed from REVERSE_FIELDS), ...) in API order.
_RECORD_FIELDS = {cls: tuple((name, (cls, name) in REVERSE_FIELDS) for name in fields)
                  for cls, fields in CLASSES.items()}
_COMPUTED_FIELDS = {cls: tuple(name for name, computed in fields if computed)
                    for cls, fields in _RECORD_FIELDS.items()}

# Events kept for event.from; a token older than the oldest kept event
# gets EVENTS_LOST, as on a real host whose event buffer has wrapped.
MAX_EVENTS = 100000
# The event list may grow this far past MAX_EVENTS before its head is cut,
# so that one cut serves many events. Events past MAX_EVENTS are treated as
# dropped all the same (see events_after).
EVENT_TRIM_BATCH = 10000


def new_ref():
    return "OpaqueRef:%s" % uuid_module.uuid4()


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(
        tzinfo=None, microsecond=0)


class Database:
    def __init__(self):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.tables = {cls: {} for cls in CLASSES}
        self.uuids = {cls: {} for cls in CLASSES}
        # (member class, pointer field) -> {target ref: {member ref: None}}
        self.back_refs = {key: {} for key in POINTERS}
        self.event_counter = 0
        # [(id, class, ref, operation)], oldest first. The ids are
        # consecutive, so the event with id n is at n - self.events[0][0].
        self.events = []
        # ref -> id of its "add" event, kept after deletion so event.from can
        # leave out objects that came and went since a token.
        self.created_at = {}

    # Reading

    def exists(self, cls, ref):
        return ref in self.tables[cls]

    def get(self, cls, ref):
        """Return the stored record; raise HANDLE_INVALID for a bad ref."""
        try:
            return self.tables[cls][ref]
        except (KeyError, TypeError):
            raise Failure("HANDLE_INVALID", cls, ref) from None

    def field(self, cls, ref, name):
        record = self.get(cls, ref)
        if (cls, name) in REVERSE_FIELDS:
            return self.members(cls, ref, name)
        return record[name]

    def members(self, cls, ref, set_field):
        member_cls, pointer = REVERSE_FIELDS[(cls, set_field)]
        return list(self.back_refs[(member_cls, pointer)].get(ref, {}))

    def record(self, cls, ref):
        """Return a copy of the record as the API shows it, computed sets included."""
        stored = self.get(cls, ref)
        result = {}
        for name, computed in _RECORD_FIELDS[cls]:
            if computed:
                result[name] = self.members(cls, ref, name)
                continue
            value = stored[name]
            if type(value) is not str and isinstance(value, (list, dict)):
                value = _copy(value)
            result[name] = value
        return result

    def computed_fields(self, cls, ref):
        """Return the values of the record's computed set fields, in API order."""
        return tuple(self.members(cls, ref, name)
                     for name in _COMPUTED_FIELDS[cls])

    def all(self, cls):
        return list(self.tables[cls])

    def events_after(self, since):
        """Return the kept events with an id above ``since``, oldest first.

        Raise EVENTS_LOST when events after ``since`` were dropped: only
        the last MAX_EVENTS events count as kept.
        """
        if not self.events:
            return []
        oldest = max(self.events[0][0], self.event_counter - MAX_EVENTS + 1)
        if since < oldest - 1:
            raise Failure("EVENTS_LOST")
        return self.events[since + 1 - self.events[0][0]:]

    def by_uuid(self, cls, value):
        try:
            return self.uuids[cls][value]
        except (KeyError, TypeError):
            raise Failure("UUID_INVALID", cls, value) from None

    def find(self, cls, **conditions):
        """Return the refs whose fields equal all the given values."""
        return [ref for ref, record in self.tables[cls].items()
                if all(record.get(k) == v for k, v in conditions.items())]

    # Writing

    def create(self, cls, values, ref=None):
        """Store a new object, taking defaults from the field table."""
        ref = ref or new_ref()
        record = {}
        for name, field in CLASSES[cls].items():
            if (cls, name) in REVERSE_FIELDS:
                continue
            if name in values:
                record[name] = values[name]
            else:
                record[name] = parse_default(field.type, field.default)
        if not record.get("uuid"):
            record["uuid"] = str(uuid_module.uuid4())
        self.tables[cls][ref] = record
        self.uuids[cls][record["uuid"]] = ref
        for (member_cls, pointer) in POINTERS:
            if member_cls == cls:
                self._link(cls, pointer, ref, None, record[pointer])
        self._event(cls, ref, "add")
        self.created_at[ref] = self.event_counter
        return ref

    def set(self, cls, ref, **changes):
        record = self.get(cls, ref)
        for name, value in changes.items():
            if name not in record:
                raise KeyError("%s has no stored field %s" % (cls, name))
            old = record[name]
            record[name] = value
            if (cls, name) in POINTERS:
                self._link(cls, name, ref, old, value)
        self._event(cls, ref, "mod")

    def destroy(self, cls, ref):
        record = self.get(cls, ref)
        for (member_cls, pointer) in POINTERS:
            if member_cls == cls:
                self._link(cls, pointer, ref, record[pointer], None)
        del self.tables[cls][ref]
        self.uuids[cls].pop(record["uuid"], None)
        self._event(cls, ref, "del")

    def _link(self, cls, pointer, ref, old, new):
        index = self.back_refs[(cls, pointer)]
        target_cls, _ = POINTERS[(cls, pointer)]
        if old and old != NULL_REF:
            index.get(old, {}).pop(ref, None)
            if old in self.tables[target_cls] and old != new:
                self._event(target_cls, old, "mod")
        if new and new != NULL_REF:
            index.setdefault(new, {})[ref] = None
            if new in self.tables[target_cls] and old != new:
                self._event(target_cls, new, "mod")

    def _event(self, cls, ref, operation):
        self.event_counter += 1
        self.events.append((self.event_counter, cls, ref, operation))
        if len(self.events) > MAX_EVENTS + EVENT_TRIM_BATCH:
            del self.events[:len(self.events) - MAX_EVENTS]
        self.changed.notify_all()


def _copy(value):
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value
