"""Network interfaces (VIFs) of a guest, identified by their MAC."""

import logging
import re

from simplestack import errors
from simplestack.adapters.guest_locks import name_lock
from simplestack.adapters.xen.constants import BITS_PER_KBPS
from simplestack.adapters.xen.records import nic_record, state_of
from simplestack.adapters.xen.rollback import Rollback

logger = logging.getLogger(__name__)

MAC_PATTERN = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

LOCKING_MODES = ("network_default", "locked", "unlocked", "disabled")

NIC_UPDATE_KEYS = ("network", "locking_mode", "ipv4_allowed",
                   "ipv6_allowed", "active", "rate_limit")


def _vif_record(vm_ref, network_ref, device, mac):
    return {
        "device": device,
        "network": network_ref,
        "VM": vm_ref,
        # An empty MAC makes XAPI generate one.
        "MAC": mac or "",
        "MTU": 1500,
        "other_config": {},
        "qos_algorithm_type": "",
        "qos_algorithm_params": {},
        "locking_mode": "network_default",
        "ipv4_allowed": [],
        "ipv6_allowed": [],
    }


def _kbps(rate_limit):
    """Return XAPI's ``kbps`` for a rate in bits per second."""
    if isinstance(rate_limit, bool) or not isinstance(rate_limit, int) \
            or rate_limit < BITS_PER_KBPS:
        raise errors.InvalidArguments(
            "invalid rate_limit %r; expected at least %d bits per second "
            "(XAPI counts whole KiB/s), or null for no limit"
            % (rate_limit, BITS_PER_KBPS))
    return rate_limit // BITS_PER_KBPS


class NicsMixin:
    """Methods of XenAdapter for network interfaces."""

    def _vifs(self, vm):
        """Return {ref: record} of the VM's VIFs."""
        return self._records("VIF", vm["VIFs"])

    def _nic_records(self, vifs):
        networks = self._records("network",
                                 {vif["network"] for vif in vifs.values()})
        return [nic_record(vif, networks.get(vif["network"]))
                for vif in vifs.values()]

    def list_nics(self, guest_id):
        _ref, vm = self._guest(guest_id)
        return sorted(self._nic_records(self._vifs(vm)),
                      key=lambda record: record["id"])

    def _vif(self, vm, guest_id, mac):
        mac = str(mac).lower()
        for ref, vif in self._vifs(vm).items():
            if vif["MAC"].lower() == mac:
                self._name_ref("VIF", ref)
                return ref, vif
        raise errors.EntityNotFound("guest %s has no network interface %s"
                                    % (guest_id, mac))

    def get_nic(self, guest_id, mac):
        _ref, vm = self._guest(guest_id)
        _vif_ref, vif = self._vif(vm, guest_id, mac)
        return self._nic_records({_vif_ref: vif})[0]

    def _network_by_name(self, name):
        """Return the ref of the network that ``name`` (or an id) names."""
        ref, _record = self._network(name)
        return ref

    def create_nic(self, guest_id, spec):
        vm_ref, vm = self._guest(guest_id)
        network_ref = self._network_by_name(spec["network"])
        mac = spec.get("mac")
        if mac is None:
            vif_ref = self._add_vif(vm_ref, network_ref)
        else:
            mac = mac.lower()
            if not MAC_PATTERN.match(mac):
                raise errors.InvalidArguments(
                    "invalid MAC address %r; expected six colon-separated "
                    "hex bytes" % spec["mac"])
            # XAPI allows one MAC on several VIFs of a VM, so the MAC stays
            # locked from the check that the guest lacks it to the add.
            with name_lock(self.type_name, self.host,
                           "%s %s" % (vm["uuid"], mac), kind="mac"):
                vm = self._record("VM", vm_ref)
                for vif in self._vifs(vm).values():
                    if vif["MAC"].lower() == mac:
                        raise errors.Conflict(
                            "guest %s already has a network interface with "
                            "MAC %s" % (guest_id, mac))
                vif_ref = self._add_vif(vm_ref, network_ref, mac)
        logger.info("added network interface to guest %s on %s",
                    vm["uuid"], self.host)
        return self._nic_records({vif_ref: self._record("VIF", vif_ref)})[0]

    def _add_vif(self, vm_ref, network_ref, mac=None):
        """Create a VIF at a free position; plug it into a running VM."""
        with Rollback("adding a network interface") as rollback:
            vif_ref, _device = self._create_device(
                "VIF", vm_ref, lambda device: _vif_record(
                    vm_ref, network_ref, device, mac))
            rollback.add("delete the new VIF", self._call, "VIF.destroy",
                         vif_ref)
            if self._call("VM.get_power_state", vm_ref) == "Running":
                self._call("VIF.plug", vif_ref, vm=vm_ref)
        return vif_ref

    def update_nic(self, guest_id, mac, changes):
        unknown = set(changes) - set(NIC_UPDATE_KEYS)
        if unknown:
            raise self.not_implemented(
                "change %s of a network interface"
                % ", ".join(sorted(unknown)))
        vm_ref, vm = self._guest(guest_id)
        vif_ref, vif = self._vif(vm, guest_id, mac)

        # Every value is checked before the first change.
        network_ref = None
        if "network" in changes:
            network_ref = self._network_by_name(changes["network"])
            if network_ref == vif["network"]:
                network_ref = None
        mode = changes.get("locking_mode")
        if mode is not None and mode not in LOCKING_MODES:
            raise errors.InvalidArguments(
                "invalid locking_mode %r; expected one of %s"
                % (mode, ", ".join(LOCKING_MODES)))
        kbps = None
        if changes.get("rate_limit") is not None:
            kbps = _kbps(changes["rate_limit"])
        plug = self._plug_change(vm, vif, guest_id, changes.get("active"))

        with Rollback("updating a network interface") as rollback:
            if network_ref is not None:
                self._call("VIF.move", vif_ref, network_ref, vm=vm_ref)
                rollback.add("move the VIF back", self._call, "VIF.move",
                             vif_ref, vif["network"])
            if mode is not None and mode != vif["locking_mode"]:
                self._call("VIF.set_locking_mode", vif_ref, mode)
                rollback.add("restore the locking mode", self._call,
                             "VIF.set_locking_mode", vif_ref,
                             vif["locking_mode"])
            for key in ("ipv4_allowed", "ipv6_allowed"):
                if key in changes:
                    self._call("VIF.set_%s" % key, vif_ref,
                               list(changes[key]))
                    rollback.add("restore %s" % key, self._call,
                                 "VIF.set_%s" % key, vif_ref, vif[key])
            if "rate_limit" in changes:
                self._set_rate_limit(vif_ref, vif, kbps, rollback)
            if plug is not None:
                self._call("VIF.%s" % plug, vif_ref, vm=vm_ref)
        return self._nic_records({vif_ref: self._record("VIF", vif_ref)})[0]

    def _set_rate_limit(self, vif_ref, vif, kbps, rollback):
        if kbps is None:
            algorithm, params = "", {}
        else:
            algorithm, params = "ratelimit", {"kbps": str(kbps)}
        self._call("VIF.set_qos_algorithm_type", vif_ref, algorithm)
        rollback.add("restore the QoS algorithm", self._call,
                     "VIF.set_qos_algorithm_type", vif_ref,
                     vif["qos_algorithm_type"])
        self._call("VIF.set_qos_algorithm_params", vif_ref, params)
        rollback.add("restore the QoS parameters", self._call,
                     "VIF.set_qos_algorithm_params", vif_ref,
                     vif["qos_algorithm_params"])

    @staticmethod
    def _plug_change(vm, vif, guest_id, active):
        """Return "plug", "unplug" or None for the ``active`` change.

        XAPI plugs and unplugs VIFs of running VMs only, and plugs every VIF
        when a VM starts: a stopped guest's NIC is as good as active, and
        cannot be made to stay inactive.
        """
        if active is None:
            return None
        if vm["power_state"] != "Running":
            if active:
                return None
            raise errors.InvalidState(
                "cannot deactivate a network interface of guest %s while it "
                "is %s: XAPI plugs every interface when the guest starts; "
                "deactivate it after the start" % (guest_id, state_of(vm)))
        if bool(active) == bool(vif["currently_attached"]):
            return None
        return "plug" if active else "unplug"

    def delete_nic(self, guest_id, mac):
        vm_ref, vm = self._guest(guest_id)
        vif_ref, vif = self._vif(vm, guest_id, mac)
        with Rollback("deleting a network interface") as rollback:
            # XAPI destroys a suspended VM's attached VIF without an unplug,
            # and unplugs VIFs of running VMs only.
            if vif["currently_attached"] and vm["power_state"] != "Suspended":
                self._call("VIF.unplug", vif_ref, vm=vm_ref)
                rollback.add("plug the VIF again", self._call, "VIF.plug",
                             vif_ref)
            self._call("VIF.destroy", vif_ref, vm=vm_ref)
