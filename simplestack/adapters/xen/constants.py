"""Units, XAPI constants and the state map shared by the modules."""

KIB = 1024
MIB = 1024 ** 2
GIB = 1024 ** 3

#: The null reference, XAPI's value of a reference field that points
#: nowhere (an empty CD drive's VDI, a halted VM's resident_on).
NULL_REF = "OpaqueRef:NULL"

#: Prefix of every XAPI object reference. References are session-scoped
#: handles: the adapter never returns one, it returns UUIDs.
REF_PREFIX = "OpaqueRef:"

# VM.power_state -> API state.
STATE_MAP = {
    # Defined and not running.
    "Halted": "STOPPED",
    # Running on a host (our "start").
    "Running": "STARTED",
    # Memory image saved to a suspend VDI by VM.suspend (our "pause").
    "Suspended": "PAUSED",
    # Stopped in memory by VM.pause, as other tools do; our "resume"
    # unpauses it.
    "Paused": "PAUSED",
}

#: Classes that make up a guest record, read with one event.from call.
GUEST_CLASSES = ("VM", "VBD", "VDI", "VM_guest_metrics", "host")

#: Userdevice of the CD drive that created guests get, as XenCenter and
#: xe vm-install choose: the fourth IDE position, after three disks.
CD_USERDEVICE = "3"

#: PV kernel arguments set when a guest becomes paravirtualized without
#: explicit arguments, as the original Simplestack did.
DEFAULT_PV_ARGS = "-- quiet console=hvc0"

#: VIF.qos_algorithm_params["kbps"] counts kibibytes per second, as the
#: original Simplestack's Xen driver read it; the API counts bits per
#: second.
BITS_PER_KBPS = 8 * KIB

#: Label of the tasks the adapter creates for image streams.
TASK_LABEL = "simplestack"

#: The other_config key that marks the templates shipped with XAPI; XAPI's
#: VM.destroy rejects any VM whose value for it is "true".
DEFAULT_TEMPLATE_KEY = "default_template"
