"""The XAPI datamodel tables: classes and fields, messages, errors.

The three JSON files in ``data/`` were extracted from XAPI's datamodel
(``doc/data/xenapi.json`` of xapi-project/xen-api). Field defaults, message
parameter counts and error parameter names come from them; the simulator
code only adds behaviour. ``fields.json`` lists a subset of each class's
fields, so records carry those fields and no others.
"""

import datetime
import json
import os
from dataclasses import dataclass

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")

NULL_REF = "OpaqueRef:NULL"
EPOCH = datetime.datetime(1970, 1, 1)


def _load(name):
    with open(os.path.join(DATA_DIR, name), encoding="utf-8") as stream:
        return json.load(stream)


# Parsed type expressions: ("string",), ("int",), ("bool",), ("float",),
# ("datetime",), ("ref", cls), ("enum", name), ("set", type),
# ("map", key_type, value_type), ("record", cls), ("other", text).
def parse_type(text):
    """Parse a datamodel type such as ``(string -> enum vm_operations) map``."""
    text = text.strip()
    if text.endswith(" set"):
        return ("set", parse_type(text[:-4]))
    if text.endswith(" map") and text.startswith("("):
        key, value = text[1:-5].split(" -> ", 1)
        return ("map", parse_type(key), parse_type(value))
    if text.endswith(" ref"):
        return ("ref", text[:-4])
    if text.endswith(" record"):
        return ("record", text[:-7])
    if text.startswith("enum "):
        return ("enum", text[5:])
    if text in ("string", "int", "bool", "float", "datetime"):
        return (text,)
    return ("other", text)


# Enumerations used by the modelled fields and messages. The tables name
# the enum types but not their values; these are the values of XAPI's
# datamodel. Input is matched case-insensitively and stored canonically.
ENUMS = {
    "vm_power_state": ["Halted", "Paused", "Running", "Suspended"],
    "vbd_mode": ["RO", "RW"],
    "vbd_type": ["CD", "Disk", "Floppy"],
    "vdi_type": ["system", "user", "ephemeral", "suspend", "crashdump",
                 "ha_statefile", "metadata", "redo_log", "rrd", "pvs_cache",
                 "cbt_metadata"],
    "vif_locking_mode": ["network_default", "locked", "unlocked", "disabled"],
    "network_default_locking_mode": ["unlocked", "disabled"],
    "task_status_type": ["pending", "success", "failure", "cancelling",
                         "cancelled"],
    "on_normal_exit": ["destroy", "restart"],
    "on_crash_behaviour": ["destroy", "coredump_and_destroy", "restart",
                           "coredump_and_restart", "preserve",
                           "rename_restart"],
    "domain_type": ["hvm", "pv", "pv_in_pvh", "pvh", "unspecified"],
    "tristate_type": ["yes", "no", "unspecified"],
    "ip_configuration_mode": ["None", "DHCP", "Static"],
    "vif_ipv4_configuration_mode": ["None", "Static"],
    "vif_ipv6_configuration_mode": ["None", "Static"],
    "network_purpose": ["nbd", "insecure_nbd"],
    "vm_operations": [
        "snapshot", "clone", "copy", "create_template", "revert",
        "checkpoint", "snapshot_with_quiesce", "provision", "start",
        "start_on", "pause", "unpause", "clean_shutdown", "clean_reboot",
        "hard_shutdown", "power_state_reset", "hard_reboot", "suspend",
        "csvm", "resume", "resume_on", "pool_migrate", "migrate_send",
        "get_boot_record", "send_sysrq", "send_trigger", "query_services",
        "shutdown", "call_plugin", "changing_memory_live",
        "awaiting_memory_live", "changing_dynamic_range",
        "changing_static_range", "changing_memory_limits",
        "changing_shadow_memory", "changing_shadow_memory_live",
        "changing_VCPUs", "changing_VCPUs_live", "changing_NVRAM",
        "assert_operation_valid", "data_source_op",
        "update_allowed_operations", "make_into_template", "import",
        "export", "metadata_export", "reverting", "destroy",
    ],
}


@dataclass(frozen=True)
class Field:
    name: str
    type: tuple
    qualifier: str      # RW, RO/constructor or RO/runtime
    default: str        # the table's text; "" when the datamodel has none

    @property
    def writable(self):
        return self.qualifier == "RW"

    @property
    def in_constructor(self):
        return self.qualifier in ("RW", "RO/constructor")


@dataclass(frozen=True)
class Message:
    name: str           # Class.method
    params: tuple       # ((type, name), ...) without the session argument
    result: tuple
    errors: tuple
    implicit: bool
    removed: bool


def zero_value(kind):
    """Return the value of a field of this type that nothing has set."""
    tag = kind[0]
    if tag == "string":
        return ""
    if tag == "int":
        return 0
    if tag == "float":
        return 0.0
    if tag == "bool":
        return False
    if tag == "datetime":
        return EPOCH
    if tag == "ref":
        return NULL_REF
    if tag == "set":
        return []
    if tag == "map":
        return {}
    if tag == "enum":
        return ENUMS.get(kind[1], [""])[0]
    return ""


def parse_default(kind, text):
    """Convert a default from the field table into a stored value."""
    tag = kind[0]
    if text == "":
        return zero_value(kind)
    if text in ("Null", "OpaqueRef:NULL"):
        return NULL_REF
    if text == "{}":
        return [] if tag == "set" else {}
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if tag == "bool":
        return text == "true"
    if tag == "int":
        return int(text)
    if tag == "float":
        return float(text)
    if tag == "datetime":
        return datetime.datetime.strptime(text, "%Y%m%dT%H:%M:%SZ")
    return text


def _build_fields(table):
    classes = {}
    for cls, rows in table.items():
        fields = {}
        for name, type_text, qualifier, default in rows:
            if type_text == "MISSING":
                # The extraction found no such field in the datamodel.
                continue
            fields[name] = Field(name, parse_type(type_text), qualifier, default)
        classes[cls] = fields
    return classes


def _build_messages(table):
    messages = {}
    for name, spec in table.items():
        messages[name] = Message(
            name=name,
            params=tuple((parse_type(t), n) for t, n in spec["params"]),
            result=parse_type(spec["result"]),
            errors=tuple(spec["errors"]),
            implicit=spec["implicit"],
            removed=spec["state"] == "Removed_s",
        )
    return messages


CLASSES = _build_fields(_load("fields.json"))
MESSAGES = _build_messages(_load("messages.json"))
ERRORS = {code: spec["params"] for code, spec in _load("errors.json").items()}

# Lower-case class names, as event.from takes and returns them.
CLASS_BY_LOWER = {cls.lower(): cls for cls in CLASSES}
