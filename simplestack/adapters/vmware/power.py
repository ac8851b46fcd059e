"""Power actions and reboots.

The adapter checks the state first: govmomi's simulator suspends a
powered-off VM, which vSphere refuses with InvalidPowerState.
"""

from simplestack import errors
from simplestack.adapters.vmware.constants import state_of

#: Action: (API states it may start from, vSphere method).
POWER_TRANSITIONS = {
    "start": (("STOPPED",), "PowerOnVM_Task"),
    # A clean shutdown through VMware Tools; not a task.
    "stop": (("STARTED",), "ShutdownGuest"),
    "force_stop": (("STARTED", "PAUSED"), "PowerOffVM_Task"),
    "pause": (("STARTED",), "SuspendVM_Task"),
    # Powering on a suspended VM resumes it.
    "resume": (("PAUSED",), "PowerOnVM_Task"),
}

POWER_PATHS = ("name", "runtime.powerState")


class PowerMixin:
    """Methods of VmwareAdapter for power actions and reboots."""

    @staticmethod
    def _state_name(found):
        return state_of(found.get("runtime.powerState"))

    def _read_state(self, ref):
        return self._state_name(self._properties(ref, POWER_PATHS))

    def set_power(self, guest_id, action):
        if action not in POWER_TRANSITIONS:
            raise errors.InvalidArguments(
                "invalid power action %r; expected one of %s" % (
                    action, ", ".join(sorted(POWER_TRANSITIONS))))
        allowed, method = POWER_TRANSITIONS[action]
        found = self._guest(guest_id, POWER_PATHS)
        state = self._state_name(found)
        if state not in allowed:
            raise errors.InvalidState(
                "cannot %s guest %s while it is %s" % (
                    action.replace("_", " "), found.get("name"), state))

        if method.endswith("_Task"):
            self._run(method, found.ref)
        else:
            getattr(found.ref, method)()
        return self._read_state(found.ref)

    def reboot_guest(self, guest_id, force=False):
        found = self._guest(guest_id, POWER_PATHS)
        state = self._state_name(found)
        if state != "STARTED":
            raise errors.InvalidState("cannot reboot guest %s while it is %s"
                                      % (found.get("name"), state))
        if force:
            self._run("ResetVM_Task", found.ref)
        else:
            # Needs VMware Tools in the guest: ToolsUnavailable otherwise,
            # which is InvalidState.
            found.ref.RebootGuest()
        return self._read_state(found.ref)
