"""XAPI error codes and their translation into Simplestack errors.

A XAPI failure is classified by its code, ``Failure.details[0]``, never
by text. The code and the parameters stay on the translated error as
``code`` and ``params`` (the response's ``hypervisor`` field), with each
object reference replaced by the object's UUID: references never leave
the adapter.
"""

from simplestack import errors
from simplestack.adapters.xen.constants import NULL_REF, REF_PREFIX

NOT_FOUND_CODES = frozenset((
    "HANDLE_INVALID",
    "UUID_INVALID",
))

# The guest's state (power state, attached devices, a running operation)
# forbids the call.
STATE_CODES = frozenset((
    "VM_BAD_POWER_STATE",
    "OTHER_OPERATION_IN_PROGRESS",
    "OPERATION_NOT_ALLOWED",
    "OPERATION_BLOCKED",
    "VM_IS_TEMPLATE",
    "VM_IS_SNAPSHOT",
    "VM_LACKS_FEATURE",
    "VM_LACKS_FEATURE_SHUTDOWN",
    "VM_LACKS_FEATURE_SUSPEND",
    "VM_LACKS_FEATURE_VCPU_HOTPLUG",
    "VM_MISSING_PV_DRIVERS",
    "VM_HVM_REQUIRED",
    "VM_HAS_CHECKPOINT",
    "VDI_IN_USE",
    "DEVICE_ALREADY_ATTACHED",
    "DEVICE_ALREADY_DETACHED",
    "DEVICE_NOT_ATTACHED",
    "DEVICE_DETACH_REJECTED",
    "VBD_NOT_EMPTY",
    "VBD_IS_EMPTY",
    "VBD_NOT_UNPLUGGABLE",
    "VBD_TRAY_LOCKED",
    "VM_CANNOT_DELETE_DEFAULT_TEMPLATE",
))

# A value XAPI cannot take: memory and VCPU limits, malformed values, a
# disk larger than its storage, an image it cannot read.
INVALID_CODES = frozenset((
    "MEMORY_CONSTRAINT_VIOLATION",
    "MEMORY_CONSTRAINT_VIOLATION_ORDER",
    "MEMORY_CONSTRAINT_VIOLATION_MAXPIN",
    "INVALID_VALUE",
    "VALUE_NOT_SUPPORTED",
    "FIELD_TYPE_ERROR",
    "INVALID_DEVICE",
    "MAC_INVALID",
    "VLAN_TAG_INVALID",
    "VM_MEMORY_SIZE_TOO_LOW",
    "VDI_TOO_SMALL",
    "VDI_TOO_LARGE",
    "SR_FULL",
    # What real hosts send for a full SR instead of SR_FULL.
    "SR_BACKEND_FAILURE_44",
    "IMPORT_ERROR",
    "IMPORT_ERROR_PREMATURE_EOF",
    "IMPORT_ERROR_SOME_CHECKSUMS_FAILED",
    "IMPORT_ERROR_UNEXPECTED_FILE",
    "IMPORT_ERROR_FAILED_TO_FIND_OBJECT",
    "IMPORT_INCOMPATIBLE_VERSION",
))

# No host can run the VM. Too few physical CPUs for the guest's VCPUs_max
# is a value the pool cannot take (400). Too little free memory depends on
# what else runs, so it is a conflict that may clear later (409).
CAPACITY_CODES = {
    "HOST_NOT_ENOUGH_PCPUS": errors.InvalidArguments,
    "HOST_NOT_ENOUGH_FREE_MEMORY": errors.Conflict,
}

CONFLICT_CODES = frozenset((
    "DEVICE_ALREADY_EXISTS",
    "VM_DUPLICATE_VBD_DEVICE",
    "MAP_DUPLICATE_KEY",
    "PIF_VLAN_EXISTS",
    "VLAN_IN_USE",
    "NETWORK_ALREADY_CONNECTED",
    "BRIDGE_NAME_EXISTS",
    "MAC_STILL_EXISTS",
))

AUTH_CODES = frozenset((
    "SESSION_AUTHENTICATION_FAILED",
    "SESSION_AUTHORIZATION_FAILED",
))

# This host's XAPI, or its licence, lacks the call.
UNSUPPORTED_CODES = frozenset((
    "MESSAGE_METHOD_UNKNOWN",
    "MESSAGE_REMOVED",
    "NOT_IMPLEMENTED",
    "LICENCE_RESTRICTION",
))


def is_gone(error):
    """Tell whether a translated error reports a missing object."""
    return error.code in NOT_FOUND_CODES


def public_params(params, uuids):
    """Return ``params`` with each reference replaced by its UUID.

    ``uuids`` maps the references the adapter has read to their UUIDs;
    a reference it has not read becomes ``<hidden reference>``.
    """
    public = []
    for value in params:
        value = str(value)
        if value.startswith(REF_PREFIX) and value != NULL_REF:
            value = uuids.get(value, "<hidden reference>")
        public.append(value)
    return public


def classify(code, names_object=True):
    """Return the Simplestack error class for a XAPI error code.

    ``names_object`` is true when the failure is about an object that the
    request names. A not-found code on any other call, such as a collection
    read, is the hypervisor's failure and not a missing path.
    """
    if code in NOT_FOUND_CODES:
        if names_object:
            return errors.EntityNotFound
        return errors.HypervisorError
    if code in STATE_CODES:
        return errors.InvalidState
    if code in INVALID_CODES:
        return errors.InvalidArguments
    if code in CAPACITY_CODES:
        return CAPACITY_CODES[code]
    if code in CONFLICT_CODES:
        return errors.Conflict
    if code in AUTH_CODES:
        return errors.HypervisorAuthenticationFailed
    if code in UNSUPPORTED_CODES:
        return errors.FeatureNotImplemented
    return errors.HypervisorError


def _mib(text):
    """Return a byte count from XAPI as MiB text, or the text unchanged."""
    try:
        return "%d MiB" % (int(text) // (1024 * 1024))
    except ValueError:
        return text


def capacity_message(code, params):
    """Return the message for a CAPACITY_CODES failure of a guest start.

    ``params`` are the error's parameters: [vcpus, pcpus] for
    HOST_NOT_ENOUGH_PCPUS and [needed, available] bytes for
    HOST_NOT_ENOUGH_FREE_MEMORY.
    """
    if len(params) < 2:
        return "no host can start the guest: %s" % code
    if code == "HOST_NOT_ENOUGH_PCPUS":
        return ("invalid cpus: the guest has %s VCPUs (its maximum) but the "
                "host has %s physical CPUs; set cpus to %s or fewer"
                % (params[0], params[1], params[1]))
    return ("not enough free memory to start the guest: it needs %s and the "
            "host has %s free; stop another guest or lower the guest's "
            "memory" % (_mib(params[0]), _mib(params[1])))


def check_no_operation_in_progress(vm, operation, action):
    """Raise InvalidState if an operation in progress on ``vm`` keeps XAPI
    from starting ``operation`` ("start", "destroy").

    ``vm`` is the VM's record and ``action`` names the request in the
    message ("start guest <uuid>"). XAPI lists running operations, such as
    an export, in current_operations and drops the ones that conflict with
    them from allowed_operations. A call of a conflicting operation waits
    on the host for the running one to end before it fails with
    OTHER_OPERATION_IN_PROGRESS, so checking first returns 409 at once.
    NOTE: an operation that starts between this check and the call still
    makes the call wait on the host.
    """
    running = sorted(set(vm["current_operations"].values()))
    if not running or operation in vm["allowed_operations"]:
        return
    raise errors.InvalidState(
        "cannot %s: XAPI is running %s on it, which conflicts with %s. "
        "Try again when it ends" % (action, " and ".join(running), operation),
        code="OTHER_OPERATION_IN_PROGRESS",
        params=["VM", vm["uuid"], running[0]])
