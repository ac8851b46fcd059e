"""Power actions and reboots of guests."""

import libvirt

from simplestack import errors
from simplestack.adapters import base
from simplestack.adapters.libvirt.constants import STATE_MAP


class PowerMixin:
    """Methods of LibvirtAdapter that start, stop, pause and reboot guests."""

    # action -> (states it starts from, binding method name)
    POWER_TRANSITIONS = {
        "start": (("STOPPED",), "create"),
        "stop": (("STARTED",), "shutdown"),
        "force_stop": (("STARTED", "PAUSED", "UNKNOWN"), "destroy"),
        "pause": (("STARTED",), "suspend"),
        "resume": (("PAUSED",), "resume"),
    }

    def set_power(self, guest_id, action):
        if action not in self.POWER_TRANSITIONS:
            raise errors.InvalidArguments(
                "invalid power action %r; expected one of %s"
                % (action, ", ".join(base.POWER_ACTIONS)))
        domain = self._domain(guest_id)
        # A concurrent deletion waits for the action, or the action finds
        # the guest gone (404) instead of failing inside libvirt.
        with self._guest_lock(domain):
            return self._apply_power(domain, guest_id, action)

    def _apply_power(self, domain, guest_id, action):
        allowed, method = self.POWER_TRANSITIONS[action]
        native_state = self._call(domain.state, domain=domain)[0]
        state = STATE_MAP.get(native_state, "UNKNOWN")
        if state not in allowed:
            raise errors.InvalidState(
                "cannot %s guest %s: it is %s"
                % (action.replace("_", " "), guest_id, state))
        if action == "start":
            self._check_guest_networks(self._describe(domain, inactive=True))
        if action == "resume" and \
                native_state == libvirt.VIR_DOMAIN_PMSUSPENDED:
            self._call(domain.pMWakeup, 0, domain=domain)
        elif action == "stop" and self.driver == "lxc":
            # The LXC driver's default shutdown returns success and leaves
            # the container running (libvirt 9.0); SIGTERM to its init
            # reaches an init that handles it.
            self._call(domain.shutdownFlags,
                       libvirt.VIR_DOMAIN_SHUTDOWN_SIGNAL, domain=domain)
        else:
            self._call(getattr(domain, method), domain=domain)
        # An ACPI shutdown returns before the guest acts on it (and a guest
        # without an OS never does), so this is the state right now.
        return self._state(domain)

    def reboot_guest(self, guest_id, force=False):
        domain = self._domain(guest_id)
        with self._guest_lock(domain):
            return self._reboot(domain, guest_id, force)

    def _reboot(self, domain, guest_id, force):
        state = self._state(domain)
        if state != "STARTED":
            raise errors.InvalidState("cannot reboot guest %s: it is %s"
                                      % (guest_id, state))
        if force and self.driver == "lxc":
            # The LXC driver has no virDomainReset (libvirt 9.0); a hard
            # restart of a container is a destroy and a start.
            self._call(domain.destroy, domain=domain)
            self._call(domain.create, domain=domain)
        elif force:
            self._call(domain.reset, 0, domain=domain)
        else:
            self._call(domain.reboot, 0, domain=domain)
        return self._state(domain)
