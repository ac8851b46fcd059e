"""Field types shared by the request schemas, and the response records.

Colander's own scalar types are lenient (``Boolean`` reads "banana" as
true, ``Int`` accepts "12"). A JSON API should reject a wrong type rather
than guess, so the request schemas use the strict types below. Each type
also provides its JSON Schema form, from which the OpenAPI document is built.
"""

import ipaddress
import re

import colander

from simplestack.text import has_forbidden_character


class JSONType(colander.SchemaType):
    """A strict JSON scalar type; ``nullable`` also accepts ``null``."""

    json_type = None
    python_types = ()
    type_name = ""

    def __init__(self, nullable=False):
        self.nullable = nullable

    def serialize(self, node, appstruct):
        return appstruct

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        if cstruct is None:
            if self.nullable:
                return None
            raise colander.Invalid(node, "must not be null")
        if not self.accepts_type(cstruct):
            raise colander.Invalid(
                node, "must be %s, got %s" % (self.type_name, json_name(cstruct)))
        return cstruct

    def accepts_type(self, value):
        """Tell whether ``value`` has this JSON type (null aside); JSON's
        true and false are not integers here, as they are in Python."""
        return (isinstance(value, self.python_types)
                and isinstance(value, bool) == (self.python_types == (bool,)))

    def json_schema(self):
        schema = {"type": self.json_type}
        if self.nullable:
            schema["nullable"] = True
        return schema


class Integer(JSONType):
    json_type = "integer"
    python_types = (int,)
    type_name = "an integer"


class Boolean(JSONType):
    json_type = "boolean"
    python_types = (bool,)
    type_name = "true or false"


class String(JSONType):
    json_type = "string"
    python_types = (str,)
    type_name = "a string"

    def deserialize(self, node, cstruct):
        value = super().deserialize(node, cstruct)
        if isinstance(value, str):
            check_encodable(node, value)
        return value


def check_encodable(node, text):
    """Reject lone surrogates: JSON allows "\\ud800", UTF-8 cannot carry it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise colander.Invalid(
            node, "must be valid Unicode text (it has a lone surrogate)"
        ) from None


# Characters that XML 1.0 cannot carry (surrogates aside): C0 controls
# other than tab, line feed and carriage return, and U+FFFE and U+FFFF.
# Object keys and values reach hypervisors inside XML (XAPI's XML-RPC).
XML_FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def check_xml_text(node, text):
    """Reject text that an XML document cannot contain."""
    if XML_FORBIDDEN_CHARACTERS.search(text):
        raise colander.Invalid(
            node, "must not contain control characters other than tab, "
                  "line feed and carriage return")


class Object(JSONType):
    """A free-form JSON object whose values are strings."""

    json_type = "object"
    python_types = (dict,)
    type_name = "an object"

    def deserialize(self, node, cstruct):
        value = super().deserialize(node, cstruct)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(item, str):
                    raise colander.Invalid(
                        node, "value of %r must be a string, got %s"
                        % (key, json_name(item)))
                check_encodable(node, key)
                check_encodable(node, item)
                check_xml_text(node, key)
                check_xml_text(node, item)
        return value

    def json_schema(self):
        schema = super().json_schema()
        schema["additionalProperties"] = {"type": "string"}
        return schema


class AnyOf(colander.SchemaType):
    """A value of the first listed schema node that accepts it.

    An invalid value gets the error of the one choice whose JSON type it
    has, such as "0 is less than minimum value 1" for ``0`` where an
    integer or an object is allowed. A value of no choice's type gets a
    type error that names every choice.
    """

    def __init__(self, *choices):
        self.choices = choices

    def serialize(self, node, appstruct):
        return appstruct

    def deserialize(self, node, cstruct):
        if cstruct is colander.null:
            return colander.null
        typed = [choice for choice in self.choices
                 if choice_accepts_type(choice, cstruct)]
        if not typed:
            names = [choice_type_name(choice) for choice in self.choices]
            # "true or false, or a string" keeps the choices apart.
            separator = ", or " if any(" or " in name for name in names) \
                else " or "
            raise colander.Invalid(node, "must be %s, got %s" % (
                separator.join(names), json_name(cstruct)))
        if len(typed) == 1:
            try:
                return typed[0].deserialize(cstruct)
            except colander.Invalid as exc:
                raise invalid_of_choice(node, exc) from None
        messages = []
        for choice in typed:
            try:
                return choice.deserialize(cstruct)
            except colander.Invalid as exc:
                messages.append("; ".join(
                    str(text) for text in exc.asdict().values()))
        raise colander.Invalid(
            node, "must be one of: %s" % " | ".join(messages))


def choice_accepts_type(choice, value):
    """Tell whether ``value`` has the JSON type of the schema node
    ``choice``; a type without a JSON form accepts every value."""
    node_type = choice.typ
    if isinstance(node_type, JSONType):
        if value is None:
            return node_type.nullable
        return node_type.accepts_type(value)
    if isinstance(node_type, colander.Mapping):
        return isinstance(value, dict)
    if isinstance(node_type, colander.Sequence):
        return isinstance(value, list)
    return True


def choice_type_name(choice):
    """Name the JSON type of the schema node ``choice`` for messages."""
    node_type = choice.typ
    if isinstance(node_type, JSONType):
        return node_type.type_name
    if isinstance(node_type, colander.Mapping):
        return "an object"
    if isinstance(node_type, colander.Sequence):
        return "an array"
    return "a value of another type"


def invalid_of_choice(node, exc):
    """Move the error ``exc`` of an unnamed choice node to ``node``, so
    that its message and the paths of its fields (``cpus.vcpus_max``)
    name the request's field."""
    error = colander.Invalid(node, exc.msg)
    for child in exc.children:
        error.add(child)
    return error


def json_name(value):
    """Return the JSON type name of a decoded value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# -- reusable validators -----------------------------------------------------

def printable_name(node, value):
    """Reject control characters and what XML cannot carry: names end up
    in hypervisor XML and logs."""
    if value is None:
        return
    if has_forbidden_character(value):
        raise colander.Invalid(
            node, "must not contain control characters, line separators, "
                  "U+FFFE or U+FFFF")
    if value != value.strip():
        raise colander.Invalid(
            node, "must not start or end with white space")


def url_segment(node, value):
    """Reject a value that could not come back as one URL path segment."""
    if value in (".", "..") or "/" in value:
        raise colander.Invalid(
            node, "must not contain '/' or be '.' or '..'")


def not_dot_segment(node, value):
    """Reject "." and "..", which clients remove from URL paths
    (RFC 3986, section 5.2.4), so a path could never name the object."""
    if value in (".", ".."):
        raise colander.Invalid(
            node, "must not be '.' or '..', which URL paths cannot carry "
                  "as a segment")


MAC_PATTERN = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


def unicast_mac(node, value):
    if not MAC_PATTERN.match(value):
        raise colander.Invalid(
            node, "must be a MAC address such as 52:54:00:12:34:56")
    if int(value[:2], 16) & 1:
        raise colander.Invalid(node, "must be a unicast MAC address")
    if value.replace(":", "") == "000000000000":
        raise colander.Invalid(node, "must not be 00:00:00:00:00:00")


def ip_address_list(version):
    def validate(node, value):
        for item in value:
            try:
                address = ipaddress.ip_address(item)
            except ValueError:
                raise colander.Invalid(
                    node, "%r is not an IP address" % item) from None
            if address.version != version:
                raise colander.Invalid(
                    node, "%r is not an IPv%d address" % (item, version))
    return validate


# -- field factories ----------------------------------------------------------

def name_field(required=True, nullable=False, description="Display name",
               segment=False, path_name=False, **kwargs):
    """Build the schema node of a name.

    ``segment``: the name is a URL path segment itself, as a tag is.
    ``path_name``: a path may name the object by its name, as it may a
    guest, so "." and ".." are rejected.
    """
    checks = [colander.Length(min=1, max=255), printable_name]
    if segment:
        checks.append(url_segment)
    elif path_name:
        checks.append(not_dot_segment)
    return colander.SchemaNode(
        String(nullable=nullable),
        validator=nullable_check(*checks),
        missing=colander.required if required else colander.drop,
        description=description, **kwargs)


def nullable_check(*validators):
    """Run ``validators`` on a value unless it is null."""

    def validate(node, value):
        if value is None:
            return
        for validator in validators:
            validator(node, value)
    validate.validators = validators
    return validate


def int_field(minimum, maximum, required=False, nullable=False,
              description=None, **kwargs):
    checks = [colander.Range(min=minimum, max=maximum)]
    return colander.SchemaNode(
        Integer(nullable=nullable),
        validator=nullable_check(*checks),
        missing=colander.required if required else colander.drop,
        description=description, **kwargs)


def bool_field(required=False, description=None, **kwargs):
    return colander.SchemaNode(
        Boolean(),
        missing=colander.required if required else colander.drop,
        description=description, **kwargs)


def string_field(required=False, nullable=False, max_length=255,
                 description=None, **kwargs):
    return colander.SchemaNode(
        String(nullable=nullable),
        validator=nullable_check(colander.Length(min=1, max=max_length),
                                 printable_name),
        missing=colander.required if required else colander.drop,
        description=description, **kwargs)


class StrictMapping(colander.Mapping):
    """A JSON object that rejects unknown keys, so typos do not pass."""

    def __init__(self, unknown="raise"):
        super().__init__(unknown=unknown)

    def deserialize(self, node, cstruct):
        if cstruct is not colander.null and not isinstance(cstruct, dict):
            raise colander.Invalid(
                node, "must be an object, got %s" % json_name(cstruct))
        if cstruct is not colander.null and self.unknown == "raise":
            known = [child.name for child in node.children]
            unknown = sorted(set(cstruct) - set(known))
            if unknown:
                raise colander.Invalid(
                    node, "unknown field(s) %s; known fields: %s"
                    % (", ".join(unknown), ", ".join(sorted(known))))
        return super().deserialize(node, cstruct)


# Limits. They bound what a request may ask for, not what a hypervisor
# allows: the adapter rejects what its hypervisor cannot do.
MAX_CPUS = 4096
MAX_MEMORY_MIB = 64 * 1024 * 1024  # 64 TiB
MAX_DISK_GIB = 1024 * 1024  # 1 PiB
MAX_RATE_BITS = 10 ** 15


# -- response records (for the OpenAPI document) ----------------------------

def _record(title, **fields):
    node = colander.SchemaNode(colander.Mapping(), title=title)
    for name, field in fields.items():
        field.name = name
        node.add(field)
    return node


def _out(json_type, nullable=False, description=None):
    type_class = {"integer": Integer, "boolean": Boolean,
                  "string": String, "object": Object}[json_type]
    return colander.SchemaNode(type_class(nullable=nullable),
                               description=description)


def _string_list(description=None):
    return colander.SchemaNode(
        colander.Sequence(),
        colander.SchemaNode(String()),
        description=description)


def pool_record():
    return _record(
        "Pool",
        used_memory=_out("integer", description="MiB"),
        total_memory=_out("integer", description="MiB"),
        uuid=_out("string", nullable=True),
        master=_out("string", nullable=True,
                    description="address of the pool master"),
        software_info=_out("object"),
    )


def host_record():
    return _record("Host", id=_out("string"), name=_out("string"),
                   address=_out("string", nullable=True))


def storage_record():
    return _record(
        "Storage", id=_out("string"), name=_out("string"),
        type=_out("string"),
        used_space=_out("integer", description="GiB"),
        allocated_space=_out("integer", description="GiB"),
        size=_out("integer", description="GiB"))


def guest_record():
    return _record(
        "Guest", id=_out("string"), name=_out("string"),
        cpus=_out("integer"),
        memory=_out("integer", description="MiB"),
        hdd=_out("integer", description="GiB, the sum of the disks"),
        paravirtualized=_out("boolean"),
        tools_up_to_date=_out("boolean", nullable=True),
        ip=_out("string", nullable=True),
        state=_out("string",
                   description="STARTED, STOPPED, PAUSED or UNKNOWN"),
        host=_out("string", nullable=True))


def disk_record():
    return _record(
        "Disk", id=_out("string"), name=_out("string", nullable=True),
        number=_out("integer"),
        size=_out("integer", description="GiB"),
        extra_info=_out("string", nullable=True))


def nic_record():
    return _record(
        "NetworkInterface", id=_out("string", description="the MAC"),
        number=_out("integer"), mac=_out("string"),
        network=_out("string", nullable=True),
        locking_mode=_out("string", nullable=True),
        ipv4_allowed=_string_list(), ipv6_allowed=_string_list(),
        rate_limit=_out("integer", nullable=True,
                        description="bits per second"))


def network_record():
    return _record(
        "Network", id=_out("string"), name_label=_out("string"),
        name_description=_out("string", nullable=True),
        bridge=_out("string", nullable=True),
        vlan=_out("integer", nullable=True),
        other_config=_out("object"))


def snapshot_record():
    return _record(
        "Snapshot", id=_out("string"), name=_out("string", nullable=True),
        state=_out("string", nullable=True),
        path=_out("string", nullable=True),
        created=_out("string", nullable=True, description="ISO 8601"))


def media_record():
    return _record("MediaDevice", name=_out("string", nullable=True))


def tags_record():
    return _string_list("tags")


def tag_record():
    return _record("Tag", name=_out("string"))


def action_record():
    return _record("PowerAction", action=_out("string"),
                   message=_out("string"), state=_out("string"))
