"""Method lookup, argument checks and the implicit messages of every class.

Dispatch follows XAPI's order: the method must exist
(``MESSAGE_METHOD_UNKNOWN``), the argument count must match
(``MESSAGE_PARAMETER_COUNT_MISMATCH [method, expected, received]``, counts
including the session argument), the session must be valid on this host
(``SESSION_INVALID``, or ``HOST_IS_SLAVE`` on a pool member), and then the
arguments are unmarshalled by their declared types and the operation runs.
"""

import datetime
import xmlrpc.client

from . import query
from .errors import Failure
from .schema import CLASSES, ENUMS, MESSAGES, NULL_REF, Message, parse_type

# Explicit (non-generated) handlers: "Class.method" -> fn(sim, session, *args).
HANDLERS = {}

# Classes with generated create and destroy messages; other classes are made
# and removed by the server itself (hosts, metrics, PIFs) or by explicit
# messages (task.create).
CONSTRUCTIBLE = {"VM", "VBD", "VDI", "VIF", "network", "PBD"}

# Messages that take no session argument.
SESSIONLESS = {"session.login_with_password"}

INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1


def handler(name):
    """Register the function as the implementation of message ``name``."""
    def register(function):
        HANDLERS[name] = function
        return function
    return register


def _implicit_messages():
    """Build the generated messages of every class from the field table."""
    messages = {}

    def add(name, params, result):
        if isinstance(result, str):
            result = parse_type(result)
        messages[name] = Message(name, tuple(params), result, (), True, False)

    for cls, fields in CLASSES.items():
        ref = "%s ref" % cls
        self_param = (parse_type(ref), "self")
        if cls != "session":
            add("%s.get_all" % cls, [], "%s set" % ref)
            add("%s.get_all_records" % cls, [], "(%s -> %s record) map" % (ref, cls))
            add("%s.get_all_where" % cls, [(("string",), "expr")], "%s set" % ref)
            add("%s.get_all_records_where" % cls, [(("string",), "expr")],
                "(%s -> %s record) map" % (ref, cls))
        add("%s.get_record" % cls, [self_param], "%s record" % cls)
        add("%s.get_by_uuid" % cls, [(("string",), "uuid")], ref)
        if "name_label" in fields:
            add("%s.get_by_name_label" % cls, [(("string",), "label")], "%s set" % ref)
        for field in fields.values():
            add("%s.get_%s" % (cls, field.name), [self_param], field.type)
            if not field.writable:
                continue
            add("%s.set_%s" % (cls, field.name), [self_param, (field.type, "value")],
                "void")
            if field.type[0] == "map":
                add("%s.add_to_%s" % (cls, field.name),
                    [self_param, (field.type[1], "key"), (field.type[2], "value")], "void")
                add("%s.remove_from_%s" % (cls, field.name),
                    [self_param, (field.type[1], "key")], "void")
            elif field.type[0] == "set":
                add("%s.add_%s" % (cls, field.name),
                    [self_param, (field.type[1], "value")], "void")
                add("%s.remove_%s" % (cls, field.name),
                    [self_param, (field.type[1], "value")], "void")
        if cls in CONSTRUCTIBLE:
            add("%s.create" % cls, [(("record", cls), "args")], ref)
            add("%s.destroy" % cls, [self_param], "void")
    return messages


# Every message the simulator serves: the generated ones, then the table's,
# whose entries replace generated ones of the same name.
ALL_MESSAGES = _implicit_messages()
ALL_MESSAGES.update(MESSAGES)
# PIF.destroy is missing from the table; XAPI still serves it for VLAN PIFs.
ALL_MESSAGES["PIF.destroy"] = Message(
    "PIF.destroy", ((parse_type("PIF ref"), "self"),), parse_type("void"),
    ("PIF_IS_PHYSICAL",), False, False)


def lookup(method):
    """Return (message, is_async) or raise MESSAGE_METHOD_UNKNOWN."""
    name, is_async = method, False
    if method.startswith("Async."):
        name, is_async = method[len("Async."):], True
    message = ALL_MESSAGES.get(name)
    if message is None or (is_async and name in SESSIONLESS):
        raise Failure("MESSAGE_METHOD_UNKNOWN", method)
    return message, is_async


def expected_counts(message):
    """Return the argument counts a call may have, session included."""
    if message.name == "session.login_with_password":
        # version and originator have defaults in the datamodel.
        return (2, 3, 4)
    return (len(message.params) + 1,)


# Unmarshalling of arguments by declared type

def coerce(kind, value, name):
    """Convert an XML-RPC value to the declared type; FIELD_TYPE_ERROR if it cannot be."""
    tag = kind[0]
    try:
        if tag in ("string", "ref"):
            if not isinstance(value, str):
                raise TypeError
            return value
        if tag == "int":
            if isinstance(value, bool):
                raise TypeError
            number = int(value, 10) if isinstance(value, str) else value
            if not isinstance(number, int) or not INT64_MIN <= number <= INT64_MAX:
                raise TypeError
            return number
        if tag == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            return float(value)
        if tag == "bool":
            if not isinstance(value, bool):
                raise TypeError
            return value
        if tag == "datetime":
            if isinstance(value, xmlrpc.client.DateTime):
                value = value.value
            return datetime.datetime.strptime(value.replace("-", ""), "%Y%m%dT%H:%M:%SZ")
        if tag == "enum":
            if not isinstance(value, str):
                raise TypeError
            if kind[1] not in ENUMS:
                # An enum the simulator does not list: taken as sent.
                return value
            for canonical in ENUMS[kind[1]]:
                if canonical.lower() == value.lower():
                    return canonical
            raise TypeError
        if tag == "set":
            if not isinstance(value, list):
                raise TypeError
            return [coerce(kind[1], item, name) for item in value]
        if tag == "map":
            if not isinstance(value, dict):
                raise TypeError
            return {_map_key(kind[1], key, name): coerce(kind[2], item, name)
                    for key, item in value.items()}
        if tag == "record":
            if not isinstance(value, dict):
                raise TypeError
            return value
        return value
    except (TypeError, ValueError, AttributeError):
        raise Failure("FIELD_TYPE_ERROR", name) from None


def _map_key(kind, key, name):
    # Struct keys are strings on the wire; int keys stay decimal strings.
    if kind[0] == "int":
        return str(coerce(kind, key, name))
    return coerce(kind, key, name)


def coerce_record(cls, values):
    """Unmarshal a record for ``create``: constructor fields, defaults applied."""
    result = {}
    for field in CLASSES[cls].values():
        if not field.in_constructor:
            continue
        if field.name in values:
            result[field.name] = coerce(field.type, values[field.name], field.name)
        elif field.default == "":
            raise Failure("FIELD_TYPE_ERROR", field.name)
    return result


# Generated messages

def run_implicit(sim, message, args):
    cls, _, method = message.name.partition(".")
    db = sim.db
    if method == "get_all":
        return db.all(cls)
    if method == "get_all_records":
        return {ref: db.record(cls, ref) for ref in db.all(cls)}
    if method in ("get_all_where", "get_all_records_where"):
        node = query.parse(args[0])
        columns = {query.column_name(name): name for name in CLASSES[cls]}
        refs = [ref for ref in db.all(cls)
                if query.matches(node, db.record(cls, ref), columns)]
        if method == "get_all_where":
            return refs
        # The text of each record is reused while the record is unchanged,
        # as event.from reuses it (marshalled.py).
        return {ref: sim.marshalled.record(cls, ref) for ref in refs}
    if method == "get_record":
        return db.record(cls, args[0])
    if method == "get_by_uuid":
        return db.by_uuid(cls, args[0])
    if method == "get_by_name_label":
        return db.find(cls, name_label=args[0])
    if method == "create":
        return sim.create_object(cls, coerce_record(cls, args[0]))
    if method == "destroy":
        db.get(cls, args[0])
        db.destroy(cls, args[0])
        return None

    for prefix in ("get_", "set_", "add_to_", "remove_from_", "add_", "remove_"):
        if method.startswith(prefix) and method[len(prefix):] in CLASSES[cls]:
            field = method[len(prefix):]
            break
    else:
        raise Failure("MESSAGE_METHOD_UNKNOWN", message.name)
    ref = args[0]
    if prefix == "get_":
        return db.field(cls, ref, field)
    current = db.field(cls, ref, field)
    if prefix == "set_":
        db.set(cls, ref, **{field: args[1]})
    elif prefix == "add_to_":
        if args[1] in current:
            raise Failure("MAP_DUPLICATE_KEY", cls, field,
                          db.get(cls, ref)["uuid"], args[1])
        current = dict(current)
        current[args[1]] = args[2]
        db.set(cls, ref, **{field: current})
    elif prefix == "remove_from_":
        current = {k: v for k, v in current.items() if k != args[1]}
        db.set(cls, ref, **{field: current})
    elif prefix == "add_":
        if args[1] not in current:
            db.set(cls, ref, **{field: current + [args[1]]})
    elif prefix == "remove_":
        db.set(cls, ref, **{field: [v for v in current if v != args[1]]})
    if cls == "VM":
        # blocked_operations and other_config change what the VM allows.
        from .vm import refresh_allowed_operations
        refresh_allowed_operations(sim, ref)
    return None


def unmarshal(message, args):
    return [coerce(kind, value, name)
            for (kind, name), value in zip(message.params, args)]


def check_ref(db, cls, ref):
    """Raise HANDLE_INVALID unless ``ref`` names an object of ``cls``."""
    if ref == NULL_REF or not db.exists(cls, ref):
        raise Failure("HANDLE_INVALID", cls, ref)
