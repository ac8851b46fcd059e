"""VM lifecycle: the operation checks, power operations and their side effects,
memory and VCPU settings, clone, copy, snapshot, revert, provision, destroy.

The checks and their order follow ocaml/xapi/xapi_vm_lifecycle.ml
(check_operation_error): blocked operations, power state, other operations
in progress, template, snapshot, control domain, guest features.
"""

import time
import xml.etree.ElementTree as ElementTree

from .dispatch import check_ref, handler
from .errors import Failure
from .model import now
from .operations import copy_vdi, create_vbd, create_vif, create_vdi, destroy_vdi
from .schema import NULL_REF

HALTED, PAUSED, SUSPENDED, RUNNING = "Halted", "Paused", "Suspended", "Running"
ALL_STATES = [HALTED, PAUSED, SUSPENDED, RUNNING]

# Power states each operation needs, in XAPI's order (which is the order of
# the "expected" parameter of VM_BAD_POWER_STATE).
ALLOWED_STATES = {
    "start": [HALTED], "start_on": [HALTED], "provision": [HALTED],
    "changing_VCPUs": [HALTED], "changing_static_range": [HALTED],
    "changing_memory_limits": [HALTED], "make_into_template": [HALTED],
    "unpause": [PAUSED], "resume": [SUSPENDED],
    "clean_shutdown": [RUNNING], "clean_reboot": [RUNNING],
    "suspend": [RUNNING], "pause": [RUNNING], "changing_VCPUs_live": [RUNNING],
    "changing_dynamic_range": [HALTED, RUNNING],
    "clone": [HALTED], "copy": [HALTED],
    "destroy": [HALTED, SUSPENDED], "export": [HALTED, SUSPENDED],
    "hard_reboot": [PAUSED, RUNNING],
    "hard_shutdown": [PAUSED, SUSPENDED, RUNNING],
    "shutdown": [PAUSED, SUSPENDED, RUNNING],
    "snapshot": ALL_STATES, "revert": ALL_STATES, "checkpoint": ALL_STATES,
}

# Operations a template (not a snapshot) allows; destroy only when not a
# default template.
TEMPLATE_OPERATIONS = {"changing_dynamic_range", "changing_static_range",
                       "changing_memory_limits", "changing_shadow_memory",
                       "changing_VCPUs", "clone", "copy", "export",
                       "metadata_export", "provision"}
SNAPSHOT_OPERATIONS = {"revert", "clone", "copy", "export", "destroy",
                       "hard_shutdown", "metadata_export"}
CONTROL_DOMAIN_OPERATIONS = {"data_source_op", "changing_memory_live",
                             "awaiting_memory_live", "metadata_export",
                             "changing_dynamic_range", "changing_memory_limits",
                             "changing_static_range", "start", "start_on",
                             "changing_VCPUs", "destroy"}

# Operations listed in allowed_operations, as XAPI computes it.
LISTED_OPERATIONS = ["snapshot", "copy", "clone", "revert", "checkpoint",
                     "start", "start_on", "pause", "unpause", "clean_shutdown",
                     "clean_reboot", "hard_shutdown", "hard_reboot", "suspend",
                     "resume", "export", "destroy", "provision",
                     "changing_VCPUs_live", "make_into_template",
                     "changing_static_range", "changing_dynamic_range"]

# other_config key that models a guest without an OS or guest agent: a
# started VM without it gets guest metrics with PV drivers at once.
NO_GUEST_AGENT_KEY = "simulator-no-guest-agent"

# Memory the hypervisor adds to each running VM, in bytes.
VM_OVERHEAD = 8 * 1024 * 1024


def operation_error(sim, vm, op):
    """Return the Failure that refuses ``op`` on ``vm``, or None."""
    db = sim.db
    record = db.get("VM", vm)
    state = record["power_state"]

    blocked = record["blocked_operations"].get(op)
    if blocked is not None:
        return Failure("OPERATION_BLOCKED", vm, blocked)

    allowed = list(ALLOWED_STATES.get(op, ALL_STATES))
    if op in ("clone", "copy") and record["is_a_snapshot"]:
        allowed.append(SUSPENDED)
    if op in ("changing_VCPUs", "changing_static_range", "changing_memory_limits") \
            and record["is_control_domain"]:
        allowed.append(RUNNING)
    if state not in allowed:
        return Failure("VM_BAD_POWER_STATE", vm,
                       ", ".join(s.lower() for s in allowed), state.lower())

    current = record["current_operations"]
    if current and not _concurrent_ok(op, list(current.values())):
        task, other = next(iter(current.items()))
        return Failure("OTHER_OPERATION_IN_PROGRESS", "VM", vm, other, task)

    if record["is_a_template"] and not record["is_a_snapshot"]:
        default = record["is_default_template"] or \
            record["other_config"].get("default_template") == "true"
        if op not in TEMPLATE_OPERATIONS and not (op == "destroy" and not default):
            return Failure("VM_IS_TEMPLATE", vm, op)
    if record["is_a_snapshot"] and op not in SNAPSHOT_OPERATIONS:
        return Failure("VM_IS_SNAPSHOT", vm, op)
    if op == "provision" and not record["is_a_template"]:
        return Failure("ONLY_PROVISION_TEMPLATE")
    if op == "revert" and not record["is_a_snapshot"]:
        return Failure("ONLY_REVERT_SNAPSHOT")

    if record["is_control_domain"] and op not in CONTROL_DOMAIN_OPERATIONS:
        return Failure("OPERATION_NOT_ALLOWED",
                       "This operation is not allowed on a control domain")
    if record["is_control_domain"] and op in ("changing_VCPUs", "destroy") \
            and record["domid"] == 0:
        return Failure("OPERATION_NOT_ALLOWED", "This operation is not allowed on dom0")

    if state == RUNNING and _lacks_feature(sim, record, op):
        return Failure("VM_LACKS_FEATURE", vm)
    return None


def _concurrent_ok(op, current):
    for group in ({"clone", "copy", "export"}, {"snapshot", "checkpoint"}):
        if op in group and all(other in group for other in current):
            return True
    if op == "hard_shutdown":
        return op not in current
    if op == "hard_reboot":
        return not any(o in ("hard_shutdown", "hard_reboot") for o in current)
    return False


def _lacks_feature(sim, record, op):
    """HVM guests without PV drivers lack the features clean operations need."""
    if not record["HVM_boot_policy"]:
        return False
    metrics_ref = record["guest_metrics"]
    metrics = sim.db.get("VM_guest_metrics", metrics_ref) \
        if sim.db.exists("VM_guest_metrics", metrics_ref) else None
    if metrics is not None and metrics["PV_drivers_version"]:
        return False
    other = metrics["other"] if metrics else {}

    def lacks(feature):
        return other.get(feature) != "1"

    if op == "clean_shutdown":
        return lacks("feature-shutdown") and lacks("feature-poweroff")
    if op == "clean_reboot":
        return lacks("feature-shutdown") and lacks("feature-reboot")
    if op == "changing_VCPUs_live":
        return lacks("feature-vcpu-hotplug")
    if op in ("suspend", "checkpoint"):
        return lacks("feature-suspend")
    return False


# A call whose operation conflicts with one in progress waits this long for
# it to end before failing with OTHER_OPERATION_IN_PROGRESS. A real host
# also waits and retries on the server side; its time limit differs.
CONFLICT_WAIT = 10.0


def assert_operation(sim, vm, op):
    """Raise the Failure that refuses ``op``; wait out conflicting operations first.

    The caller holds the database lock; waiting releases it.
    """
    deadline = time.monotonic() + CONFLICT_WAIT
    while True:
        failure = operation_error(sim, vm, op)
        remaining = deadline - time.monotonic()
        if failure is None or failure.code != "OTHER_OPERATION_IN_PROGRESS" \
                or remaining <= 0:
            break
        sim.db.changed.wait(remaining)
        if not sim.db.exists("VM", vm):
            raise Failure("HANDLE_INVALID", "VM", vm)
    if failure is not None:
        raise failure


def begin_operation(sim, vm, op, task):
    """Check ``op`` and list it in the VM's current_operations under ``task``."""
    assert_operation(sim, vm, op)
    sim.db.get("VM", vm)["current_operations"][task] = op
    refresh_allowed_operations(sim, vm)
    sim.db.set("VM", vm)


def end_operation(sim, vm, task):
    if sim.db.exists("VM", vm):
        sim.db.get("VM", vm)["current_operations"].pop(task, None)
        refresh_allowed_operations(sim, vm)
        sim.db.set("VM", vm)


# Messages whose Async form shows as a current operation of their VM (the
# first argument) while its task runs.
VM_OPERATION_OF_MESSAGE = {
    "VM.%s" % name: name for name in (
        "start", "start_on", "clean_shutdown", "hard_shutdown", "shutdown",
        "clean_reboot", "hard_reboot", "suspend", "resume", "pause", "unpause",
        "clone", "copy", "snapshot", "revert", "destroy", "provision")}


def refresh_allowed_operations(sim, vm):
    record = sim.db.get("VM", vm)
    record["allowed_operations"] = [
        op for op in LISTED_OPERATIONS if operation_error(sim, vm, op) is None]


def _vm(sim, vm):
    check_ref(sim.db, "VM", vm)
    return sim.db.get("VM", vm)


# Memory and VCPUs

def validate_new_vm(values):
    """Check the memory and VCPU fields of a VM.create record."""
    check_memory_order(values["memory_static_min"], values["memory_dynamic_min"],
                       values["memory_dynamic_max"], values["memory_static_max"])
    check_vcpus(values["VCPUs_max"], values["VCPUs_at_startup"])


def check_memory_order(static_min, dynamic_min, dynamic_max, static_max):
    if not static_min <= dynamic_min <= dynamic_max <= static_max:
        raise Failure("MEMORY_CONSTRAINT_VIOLATION_ORDER")


def check_vcpus(maximum, at_startup):
    if maximum < 1:
        raise Failure("INVALID_VALUE", "VCPUs_max", maximum)
    if at_startup < 1 or at_startup > maximum:
        raise Failure("INVALID_VALUE", "VCPUs_at_startup", at_startup)


def _set_memory(sim, vm, op, static_min, static_max, dynamic_min, dynamic_max):
    assert_operation(sim, vm, op)
    check_memory_order(static_min, dynamic_min, dynamic_max, static_max)
    if not sim.dynamic_memory_control and not \
            static_min <= dynamic_min == dynamic_max == static_max:
        raise Failure("MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
                      "Dynamic memory control is not available on this pool, "
                      "so dynamic_min, dynamic_max and static_max must be equal")
    record = sim.db.get("VM", vm)
    sim.db.set("VM", vm, memory_static_min=static_min, memory_static_max=static_max,
               memory_dynamic_min=dynamic_min, memory_dynamic_max=dynamic_max,
               memory_target=dynamic_max if record["power_state"] == RUNNING
               else record["memory_target"])
    if record["power_state"] == RUNNING:
        _update_host_memory(sim, record["resident_on"])
        metrics = record["metrics"]
        if sim.db.exists("VM_metrics", metrics):
            sim.db.set("VM_metrics", metrics, memory_actual=dynamic_max)


@handler("VM.set_memory_limits")
def set_memory_limits(sim, session, vm, static_min, static_max, dynamic_min, dynamic_max):
    _vm(sim, vm)
    _set_memory(sim, vm, "changing_memory_limits", static_min, static_max,
                dynamic_min, dynamic_max)


@handler("VM.set_memory_static_range")
def set_memory_static_range(sim, session, vm, minimum, maximum):
    r = _vm(sim, vm)
    _set_memory(sim, vm, "changing_static_range", minimum, maximum,
                r["memory_dynamic_min"], r["memory_dynamic_max"])


@handler("VM.set_memory_dynamic_range")
def set_memory_dynamic_range(sim, session, vm, minimum, maximum):
    r = _vm(sim, vm)
    _set_memory(sim, vm, "changing_dynamic_range", r["memory_static_min"],
                r["memory_static_max"], minimum, maximum)


@handler("VM.set_memory_static_max")
def set_memory_static_max(sim, session, vm, value):
    r = _vm(sim, vm)
    _set_memory(sim, vm, "changing_static_range", r["memory_static_min"], value,
                r["memory_dynamic_min"], r["memory_dynamic_max"])


@handler("VM.set_memory_dynamic_max")
def set_memory_dynamic_max(sim, session, vm, value):
    r = _vm(sim, vm)
    _set_memory(sim, vm, "changing_dynamic_range", r["memory_static_min"],
                r["memory_static_max"], r["memory_dynamic_min"], value)


@handler("VM.set_memory")
def set_memory(sim, session, vm, value):
    """Set static_max, dynamic_min and dynamic_max to one value."""
    r = _vm(sim, vm)
    _set_memory(sim, vm, "changing_memory_limits", r["memory_static_min"], value,
                value, value)


@handler("VM.set_VCPUs_max")
def set_vcpus_max(sim, session, vm, value):
    r = _vm(sim, vm)
    assert_operation(sim, vm, "changing_VCPUs")
    if value < 1 or r["VCPUs_at_startup"] > value:
        raise Failure("INVALID_VALUE", "VCPUs_max", value)
    sim.db.set("VM", vm, VCPUs_max=value)


@handler("VM.set_VCPUs_at_startup")
def set_vcpus_at_startup(sim, session, vm, value):
    r = _vm(sim, vm)
    assert_operation(sim, vm, "changing_VCPUs")
    check_vcpus(r["VCPUs_max"], value)
    sim.db.set("VM", vm, VCPUs_at_startup=value)


@handler("VM.set_VCPUs_number_live")
def set_vcpus_number_live(sim, session, vm, value):
    r = _vm(sim, vm)
    assert_operation(sim, vm, "changing_VCPUs_live")
    if value < 1 or value > r["VCPUs_max"]:
        raise Failure("INVALID_VALUE", "nvcpu", value)
    sim.db.set("VM_metrics", r["metrics"], VCPUs_number=value)


@handler("VM.set_HVM_boot_policy")
def set_hvm_boot_policy(sim, session, vm, value):
    _vm(sim, vm)
    sim.db.set("VM", vm, HVM_boot_policy=value)
    refresh_allowed_operations(sim, vm)


@handler("VM.set_ha_restart_priority")
def set_ha_restart_priority(sim, session, vm, value):
    _vm(sim, vm)
    if value not in ("", "restart", "best-effort"):
        raise Failure("INVALID_VALUE", "ha_restart_priority", value)
    sim.db.set("VM", vm, ha_restart_priority=value)


@handler("VM.set_is_a_template")
def set_is_a_template(sim, session, vm, value):
    r = _vm(sim, vm)
    if value and not r["is_a_template"]:
        assert_operation(sim, vm, "make_into_template")
    if not value and r["is_a_snapshot"]:
        raise Failure("VM_IS_SNAPSHOT", vm, "make_into_template")
    changes = {"is_a_template": value}
    if not value:
        changes["is_default_template"] = False
    sim.db.set("VM", vm, **changes)
    refresh_allowed_operations(sim, vm)


# Power operations

def _host_free_memory(sim, host):
    metrics = sim.db.get("host", host)["metrics"]
    return sim.db.get("host_metrics", metrics)["memory_free"]


def _update_host_memory(sim, host):
    """Recompute a host's free memory from the VMs resident on it."""
    db = sim.db
    if not db.exists("host", host):
        return
    used = sum(db.get("VM", vm)["memory_target"] + db.get("VM", vm)["memory_overhead"]
               for vm in db.members("host", host, "resident_VMs"))
    metrics = db.get("host", host)["metrics"]
    total = db.get("host_metrics", metrics)["memory_total"]
    db.set("host_metrics", metrics, memory_free=max(total - used, 0),
           last_updated=now())


def _choose_host(sim, vm, needed, host=None):
    db = sim.db
    if host is not None:
        candidates = [host]
    else:
        affinity = db.get("VM", vm)["affinity"]
        candidates = [affinity] if db.exists("host", affinity) else []
        candidates += sorted(db.all("host"), key=lambda h: -_host_free_memory(sim, h))
    errors = [_boot_error(sim, vm, candidate, needed) for candidate in candidates]
    for candidate, error in zip(candidates, errors):
        if error is None:
            return candidate
    raise errors[0]


def _boot_error(sim, vm, host, needed):
    """Return the Failure that keeps ``vm`` from booting on ``host``, or None.

    The checks and their order follow assert_can_boot_here in XAPI's
    xapi_vm_helpers.ml: free memory, then physical CPUs against VCPUs_max,
    which platform:vcpu-unrestricted waives.
    """
    db = sim.db
    free = _host_free_memory(sim, host)
    if free < needed:
        return Failure("HOST_NOT_ENOUGH_FREE_MEMORY", needed, free)
    record = db.get("VM", vm)
    vcpus = record["VCPUs_max"]
    pcpus = int(db.get("host", host)["cpu_info"].get("cpu_count", "0"))
    unrestricted = record["platform"].get("vcpu-unrestricted", "").lower() in ("true", "1")
    if vcpus > pcpus and not unrestricted:
        return Failure("HOST_NOT_ENOUGH_PCPUS", vcpus, pcpus)
    return None


def _next_domid(sim):
    sim.last_domid += 1
    return sim.last_domid


def _attach_devices(sim, vm, attached):
    db = sim.db
    for vbd in db.members("VM", vm, "VBDs"):
        db.set("VBD", vbd, currently_attached=attached)
    for vif in db.members("VM", vm, "VIFs"):
        db.set("VIF", vif, currently_attached=attached)


def _boot(sim, vm, host, paused, guest_agent=True):
    """Make the VM resident on ``host``: Running, or Paused when asked."""
    db = sim.db
    record = db.get("VM", vm)
    db.set("VM", vm, power_state=PAUSED if paused else RUNNING, resident_on=host,
           domid=_next_domid(sim), memory_target=record["memory_dynamic_max"],
           memory_overhead=VM_OVERHEAD)
    _attach_devices(sim, vm, True)
    if db.exists("VM_metrics", record["metrics"]):
        db.set("VM_metrics", record["metrics"], memory_actual=record["memory_dynamic_max"],
               VCPUs_number=record["VCPUs_at_startup"], start_time=now(),
               last_updated=now(), state=[],
               current_domain_type="hvm" if record["HVM_boot_policy"] else "pv")
    if guest_agent and not paused:
        _start_guest_agent(sim, vm)
    _update_host_memory(sim, host)


def _start_guest_agent(sim, vm):
    """Give a running guest the metrics its agent reports, unless it has none."""
    record = sim.db.get("VM", vm)
    if record["other_config"].get(NO_GUEST_AGENT_KEY) == "true":
        return
    if not sim.db.exists("VM_guest_metrics", record["guest_metrics"]):
        sim.db.set("VM", vm, guest_metrics=_guest_metrics(sim, vm))


def _guest_metrics(sim, vm):
    db = sim.db
    networks = {}
    for vif in db.members("VM", vm, "VIFs"):
        device = db.get("VIF", vif)["device"]
        # Addresses from TEST-NET-1 (RFC 5737): documentation only.
        networks["%s/ip" % device] = "192.0.2.%d" % (10 + sim.last_domid % 240)
    return db.create("VM_guest_metrics", {
        "os_version": {"name": "Debian GNU/Linux 12 (bookworm)", "distro": "debian",
                       "major": "12", "minor": "0", "uname": "6.1.0-13-amd64"},
        "PV_drivers_version": {"major": "8", "minor": "4", "micro": "0", "build": "1"},
        "PV_drivers_up_to_date": True,
        "PV_drivers_detected": True,
        "memory": {},
        "disks": {},
        "networks": networks,
        "other": {"feature-shutdown": "1", "feature-poweroff": "1",
                  "feature-reboot": "1", "feature-suspend": "1",
                  "feature-vcpu-hotplug": "1", "has-vendor-device": "0",
                  "platform-feature-multiprocessor-suspend": "1"},
        "last_updated": now(),
        "live": True,
        "can_use_hotplug_vbd": "yes",
        "can_use_hotplug_vif": "yes",
    })


def _halt(sim, vm, state=HALTED):
    """Take the VM off its host: Halted, or Suspended."""
    db = sim.db
    record = db.get("VM", vm)
    host = record["resident_on"]
    db.set("VM", vm, power_state=state, resident_on=NULL_REF, domid=-1,
           memory_target=0 if state == HALTED else record["memory_target"])
    # XAPI clears currently_attached on Halted only: a suspended VM's saved
    # memory still refers to its disks and NICs.
    if state == HALTED:
        _attach_devices(sim, vm, False)
    if state == HALTED and db.exists("VM_guest_metrics", record["guest_metrics"]):
        db.destroy("VM_guest_metrics", record["guest_metrics"])
        db.set("VM", vm, guest_metrics=NULL_REF)
    if db.exists("VM_metrics", record["metrics"]):
        db.set("VM_metrics", record["metrics"], memory_actual=0, VCPUs_number=0,
               last_updated=now())
    _update_host_memory(sim, host)


def _needed_memory(record):
    return record["memory_static_max"] + VM_OVERHEAD


def _start(sim, vm, paused, host=None):
    record = _vm(sim, vm)
    assert_operation(sim, vm, "start_on" if host else "start")
    if record["VCPUs_at_startup"] < 1:
        raise Failure("VM_NO_VCPUS", vm)
    chosen = _choose_host(sim, vm, _needed_memory(record), host)
    _boot(sim, vm, chosen, paused)
    refresh_allowed_operations(sim, vm)


@handler("VM.start")
def vm_start(sim, session, vm, start_paused, force):
    _start(sim, vm, start_paused)


@handler("VM.start_on")
def vm_start_on(sim, session, vm, host, start_paused, force):
    check_ref(sim.db, "host", host)
    _start(sim, vm, start_paused, host)


def _transition(operation):
    def run(sim, session, vm):
        _vm(sim, vm)
        assert_operation(sim, vm, operation)
        record = sim.db.get("VM", vm)
        if operation in ("clean_shutdown", "hard_shutdown", "shutdown"):
            _halt(sim, vm)
        elif operation == "suspend":
            _halt(sim, vm, SUSPENDED)
        elif operation in ("clean_reboot", "hard_reboot"):
            host = record["resident_on"]
            _boot(sim, vm, host, paused=False)
        elif operation == "pause":
            sim.db.set("VM", vm, power_state=PAUSED)
        elif operation == "unpause":
            sim.db.set("VM", vm, power_state=RUNNING)
            _start_guest_agent(sim, vm)
        refresh_allowed_operations(sim, vm)
    return run


for _operation in ("clean_shutdown", "hard_shutdown", "shutdown", "suspend",
                   "clean_reboot", "hard_reboot", "pause", "unpause"):
    handler("VM.%s" % _operation)(_transition(_operation))


@handler("VM.resume")
def vm_resume(sim, session, vm, start_paused, force):
    record = _vm(sim, vm)
    assert_operation(sim, vm, "resume")
    host = _choose_host(sim, vm, _needed_memory(record))
    _boot(sim, vm, host, start_paused)
    refresh_allowed_operations(sim, vm)


# Destroy, clone, copy, snapshot, revert, provision

def destroy_vm(sim, vm):
    """Remove a VM with its VBDs, VIFs and metrics; its VDIs stay."""
    db = sim.db
    record = db.get("VM", vm)
    for vbd in db.members("VM", vm, "VBDs"):
        db.destroy("VBD", vbd)
    for vif in db.members("VM", vm, "VIFs"):
        db.destroy("VIF", vif)
    for cls, ref in (("VM_metrics", record["metrics"]),
                     ("VM_guest_metrics", record["guest_metrics"])):
        if db.exists(cls, ref):
            db.destroy(cls, ref)
    db.destroy("VM", vm)


@handler("VM.destroy")
def vm_destroy(sim, session, vm):
    record = _vm(sim, vm)
    assert_operation(sim, vm, "destroy")
    # XAPI (destroy in xapi_vm_helpers.ml) reads the key, not is_a_template,
    # so a shipped template stays protected after set_is_a_template false.
    if record["other_config"].get("default_template") == "true":
        raise Failure("VM_CANNOT_DELETE_DEFAULT_TEMPLATE", vm)
    destroy_vm(sim, vm)


def duplicate_vm(sim, vm, name, mode, sr=None, ignore_vdis=()):
    """Copy a VM record with its devices. mode: clone, copy or snapshot."""
    db = sim.db
    source = db.record("VM", vm)
    values = {name_: value for name_, value in source.items()
              if name_ not in ("uuid", "VBDs", "VIFs", "snapshots", "children",
                               "metrics", "guest_metrics", "resident_on",
                               "allowed_operations", "current_operations")}
    values.update(name_label=name, is_default_template=False, parent=vm,
                  power_state=HALTED, domid=-1, is_control_domain=False,
                  snapshot_of=NULL_REF, is_a_snapshot=False,
                  snapshot_time=source["snapshot_time"], memory_target=0)
    other_config = dict(source["other_config"])
    other_config.pop("default_template", None)
    values["other_config"] = other_config
    if mode == "snapshot":
        values.update(is_a_snapshot=True, is_a_template=True, snapshot_of=vm,
                      snapshot_time=now(), parent=NULL_REF)
        values["other_config"] = dict(other_config)
    new_vm = db.create("VM", values)
    db.set("VM", new_vm, metrics=db.create("VM_metrics", {
        "memory_actual": 0, "VCPUs_number": 0, "install_time": now(),
        "start_time": now(), "last_updated": now()}))

    for vbd in db.members("VM", vm, "VBDs"):
        vbd_record = db.record("VBD", vbd)
        vdi = vbd_record["VDI"]
        if vbd_record["empty"] or vbd_record["type"] == "CD":
            new_vdi = vdi
        elif vdi in ignore_vdis:
            continue
        else:
            new_vdi = copy_vdi(sim, vdi, sr=sr if mode == "copy" else None,
                               snapshot=mode == "snapshot")
        create_vbd(sim, {
            "VM": new_vm, "VDI": new_vdi, "userdevice": vbd_record["userdevice"],
            "bootable": vbd_record["bootable"], "mode": vbd_record["mode"],
            "type": vbd_record["type"], "unpluggable": vbd_record["unpluggable"],
            "empty": vbd_record["empty"], "other_config": vbd_record["other_config"],
            "qos_algorithm_type": vbd_record["qos_algorithm_type"],
            "qos_algorithm_params": vbd_record["qos_algorithm_params"],
        })
    for vif in db.members("VM", vm, "VIFs"):
        vif_record = db.record("VIF", vif)
        create_vif(sim, {
            "device": vif_record["device"], "network": vif_record["network"],
            "VM": new_vm,
            # Clones get new MACs; snapshots keep them so a revert restores them.
            "MAC": vif_record["MAC"] if mode == "snapshot" else "",
            "MTU": vif_record["MTU"], "other_config": vif_record["other_config"],
            "qos_algorithm_type": vif_record["qos_algorithm_type"],
            "qos_algorithm_params": vif_record["qos_algorithm_params"],
            "locking_mode": vif_record["locking_mode"],
            "ipv4_allowed": vif_record["ipv4_allowed"],
            "ipv6_allowed": vif_record["ipv6_allowed"],
        })
    refresh_allowed_operations(sim, new_vm)
    return new_vm


@handler("VM.clone")
def vm_clone(sim, session, vm, new_name):
    _vm(sim, vm)
    assert_operation(sim, vm, "clone")
    return duplicate_vm(sim, vm, new_name, "clone")


@handler("VM.copy")
def vm_copy(sim, session, vm, new_name, sr):
    _vm(sim, vm)
    if sr != NULL_REF:
        check_ref(sim.db, "SR", sr)
    assert_operation(sim, vm, "copy")
    return duplicate_vm(sim, vm, new_name, "copy", sr=None if sr == NULL_REF else sr)


@handler("VM.snapshot")
def vm_snapshot(sim, session, vm, new_name, ignore_vdis):
    _vm(sim, vm)
    assert_operation(sim, vm, "snapshot")
    return duplicate_vm(sim, vm, new_name, "snapshot", ignore_vdis=set(ignore_vdis))


@handler("VM.revert")
def vm_revert(sim, session, snapshot):
    """Restore the VM of a snapshot: its disks, settings and power state."""
    db = sim.db
    snap = _vm(sim, snapshot)
    assert_operation(sim, snapshot, "revert")
    vm = snap["snapshot_of"]
    if not db.exists("VM", vm):
        raise Failure("VM_REVERT_FAILED", vm, snapshot)
    if db.get("VM", vm)["power_state"] != HALTED:
        _halt(sim, vm)

    # Replace the VM's disks by copies of the snapshot's.
    for vbd in db.members("VM", vm, "VBDs"):
        record = db.get("VBD", vbd)
        db.destroy("VBD", vbd)
        if not record["empty"] and record["type"] != "CD" and db.exists("VDI", record["VDI"]):
            if not db.members("VDI", record["VDI"], "VBDs"):
                destroy_vdi(sim, record["VDI"])
    for vif in db.members("VM", vm, "VIFs"):
        db.destroy("VIF", vif)
    for vbd in db.members("VM", snapshot, "VBDs"):
        record = db.record("VBD", vbd)
        vdi = record["VDI"]
        if not record["empty"] and record["type"] != "CD":
            vdi = copy_vdi(sim, vdi)
            db.set("VDI", vdi, is_a_snapshot=False, snapshot_of=NULL_REF)
        create_vbd(sim, {name: record[name] for name in (
            "userdevice", "bootable", "mode", "type", "unpluggable", "empty",
            "other_config", "qos_algorithm_type", "qos_algorithm_params")}
            | {"VM": vm, "VDI": vdi})
    for vif in db.members("VM", snapshot, "VIFs"):
        record = db.record("VIF", vif)
        create_vif(sim, {name: record[name] for name in (
            "device", "network", "MAC", "MTU", "other_config", "qos_algorithm_type",
            "qos_algorithm_params", "locking_mode", "ipv4_allowed", "ipv6_allowed")}
            | {"VM": vm})

    restored = {name: snap[name] for name in (
        "memory_static_max", "memory_static_min", "memory_dynamic_max",
        "memory_dynamic_min", "VCPUs_max", "VCPUs_at_startup", "VCPUs_params",
        "PV_args", "PV_bootloader", "HVM_boot_policy", "HVM_boot_params",
        "platform", "actions_after_shutdown", "actions_after_reboot",
        "actions_after_crash", "ha_restart_priority", "ha_always_run")}
    db.set("VM", vm, **restored)
    if snap["power_state"] in (RUNNING, PAUSED):
        _boot(sim, vm, _choose_host(sim, vm, _needed_memory(db.get("VM", vm))),
              paused=snap["power_state"] == PAUSED)
    elif snap["power_state"] == SUSPENDED:
        db.set("VM", vm, power_state=SUSPENDED)
    refresh_allowed_operations(sim, vm)


@handler("VM.provision")
def vm_provision(sim, session, vm):
    """Create the disks that a template's other_config "disks" describes."""
    db = sim.db
    record = _vm(sim, vm)
    assert_operation(sim, vm, "provision")
    spec = record["other_config"].get("disks")
    if not spec:
        return None
    default_sr = sim.pool_record()["default_SR"]
    try:
        disks = ElementTree.fromstring(spec).findall("disk")
    except ElementTree.ParseError:
        raise Failure("INTERNAL_ERROR", "cannot parse the disks key") from None
    for disk in disks:
        sr = disk.get("sr") or default_sr
        if not db.exists("SR", sr):
            sr = db.uuids["SR"].get(sr, default_sr)
        vdi = create_vdi(sim, {
            "name_label": "%s %s" % (record["name_label"], disk.get("device")),
            "name_description": "Created by template provisioner",
            "SR": sr, "virtual_size": int(disk.get("size", "0")),
            "type": disk.get("type", "system"), "sharable": False,
            "read_only": False, "other_config": {}, "xenstore_data": {},
            "sm_config": {}, "tags": []})
        create_vbd(sim, {
            "VM": vm, "VDI": vdi, "userdevice": disk.get("device", "autodetect"),
            "bootable": disk.get("bootable") == "true", "mode": "RW",
            "type": "Disk", "unpluggable": True, "empty": False,
            "other_config": {"owner": "true"}, "qos_algorithm_type": "",
            "qos_algorithm_params": {}})
    other_config = dict(record["other_config"])
    # NOTE: inferred from source: the key goes once its disks exist, so a
    # second provision creates nothing.
    other_config.pop("disks", None)
    db.set("VM", vm, other_config=other_config)
    return None
