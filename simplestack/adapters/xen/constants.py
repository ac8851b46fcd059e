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

#: Classes that make up a guest record.
GUEST_CLASSES = ("VM", "VBD", "VDI", "VM_guest_metrics", "host")

#: The classes of GUEST_CLASSES that a guest list reads with one event.from
#: call. It reads the VMs with VM.get_all_records_where and GUEST_VM_QUERY.
GUEST_DEVICE_CLASSES = ("VBD", "VDI", "VM_guest_metrics", "host")

#: The VMs that can be guests, in XAPI's query grammar (xen-api's
#: ocaml/database/db_filter_parse.mly: ``field "column"``, double-quoted
#: literals, ``=``, ``and``). XAPI compares the stored text of a column,
#: "true" or "false" for a bool.
#: NOTE: checked against that grammar and the simulator, not a real host.
GUEST_VM_QUERY = ('field "is_a_template" = "false" and '
                  'field "is_a_snapshot" = "false" and '
                  'field "is_control_domain" = "false"')

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
