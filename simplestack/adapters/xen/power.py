"""Power actions and reboots."""

from simplestack import errors
from simplestack.adapters.base import POWER_ACTIONS
from simplestack.adapters.xen.constants import STATE_MAP
from simplestack.adapters.xen.failures import check_no_operation_in_progress

# API action -> (XAPI method, extra arguments). "resume" depends on the
# power state and is chosen in set_power.
POWER_CALLS = {
    "start": ("VM.start", (False, False)),  # start_paused, force
    "stop": ("VM.clean_shutdown", ()),
    "force_stop": ("VM.hard_shutdown", ()),
    # The original Simplestack paused Xen guests by suspending them to
    # disk, which frees their memory, and clients rely on that.
    "pause": ("VM.suspend", ()),
    "resume": ("VM.resume", (False, False)),  # start_paused, force
}


class PowerMixin:
    """Methods of XenAdapter for power actions."""

    def set_power(self, guest_id, action):
        if action not in POWER_ACTIONS:
            raise errors.InvalidArguments(
                "invalid power action %r; expected one of %s"
                % (action, ", ".join(POWER_ACTIONS)))
        ref, vm = self._guest(guest_id)
        method, arguments = POWER_CALLS[action]
        if action == "resume" and vm["power_state"] == "Paused":
            # Paused in memory by another tool: unpause instead.
            method, arguments = "VM.unpause", ()
        check_no_operation_in_progress(
            vm, method.split(".", 1)[1], "%s guest %s" % (action, vm["uuid"]))
        self._call(method, ref, *arguments, vm=ref)
        return self._power_state(ref)

    def reboot_guest(self, guest_id, force=False):
        ref, vm = self._guest(guest_id)
        method = "VM.hard_reboot" if force else "VM.clean_reboot"
        check_no_operation_in_progress(
            vm, method.split(".", 1)[1], "reboot guest %s" % vm["uuid"])
        self._call(method, ref, vm=ref)
        return self._power_state(ref)

    def _power_state(self, ref):
        return STATE_MAP.get(self._call("VM.get_power_state", ref),
                             "UNKNOWN")
