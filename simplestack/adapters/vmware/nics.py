"""Network interfaces: the guest's virtual Ethernet cards, by MAC."""

import re

from pyVmomi import vim

from simplestack import errors
from simplestack.adapters.guest_locks import name_lock
from simplestack.adapters.vmware.devices import (
    Device, devices_of, new_nic_spec, nic_backing, nics_of)
from simplestack.adapters.vmware.disks import DISK_PATHS

MAC_PATTERN = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

#: Keys of update_nic that vSphere has no per-NIC setting for.
UNSUPPORTED_NIC_KEYS = ("locking_mode", "ipv4_allowed", "ipv6_allowed",
                        "rate_limit")


def normal_mac(mac):
    """Return ``mac`` lower-case, or raise InvalidArguments."""
    if not isinstance(mac, str) or not MAC_PATTERN.match(mac.lower()):
        raise errors.InvalidArguments(
            "invalid MAC address %r; expected six colon-separated hex "
            "bytes such as 00:50:56:00:00:01" % (mac,))
    value = mac.lower()
    if int(value[:2], 16) & 1:
        raise errors.InvalidArguments(
            "invalid MAC address %s; a multicast address cannot name a NIC"
            % value)
    return value


class NicsMixin:
    """Methods of VmwareAdapter for network interfaces."""

    def _network_names(self):
        """Return {port group key: name} of the distributed port groups."""
        return {item.get("key"): item.get("name")
                for item in self._networks()
                if isinstance(item.ref, vim.dvs.DistributedVirtualPortgroup)}

    def _nic_record(self, nic, portgroup_names):
        backing = nic.backing
        if isinstance(backing, Device.VirtualEthernetCard
                      .DistributedVirtualPortBackingInfo):
            network = portgroup_names.get(backing.port.portgroupKey)
        else:
            network = getattr(backing, "deviceName", None)
        return {
            "id": (nic.macAddress or "").lower(),
            # The device key: unique in the guest and kept for the NIC's
            # life.
            "number": nic.key,
            "mac": (nic.macAddress or "").lower(),
            "network": network,
            "locking_mode": None,
            "ipv4_allowed": [],
            "ipv6_allowed": [],
            "rate_limit": None,
        }

    def _nic_records(self, found):
        nics = nics_of(devices_of(found))
        portgroup_names = {}
        if any(isinstance(nic.backing, Device.VirtualEthernetCard
                          .DistributedVirtualPortBackingInfo)
               for nic in nics):
            portgroup_names = self._network_names()
        return [self._nic_record(nic, portgroup_names) for nic in nics]

    def _nic(self, found, mac):
        wanted = mac.lower() if isinstance(mac, str) else mac
        for nic in nics_of(devices_of(found)):
            if (nic.macAddress or "").lower() == wanted:
                return nic
        raise errors.EntityNotFound("network interface %s of guest %s not "
                                    "found" % (mac, found.get("name")))

    def list_nics(self, guest_id):
        return self._nic_records(self._guest(guest_id, DISK_PATHS))

    def get_nic(self, guest_id, mac):
        found = self._guest(guest_id, DISK_PATHS)
        self._nic(found, mac)
        return self._nic_by_mac(found, mac)

    def _nic_by_mac(self, found, mac):
        for record in self._nic_records(found):
            if record["mac"] == mac.lower():
                return record
        raise errors.EntityNotFound("network interface %s of guest %s not "
                                    "found" % (mac, found.get("name")))

    def create_nic(self, guest_id, spec):
        mac = spec.get("mac")
        if mac is not None:
            mac = normal_mac(mac)
        if not isinstance(spec.get("network"), str) or not spec["network"]:
            raise errors.InvalidArguments(
                "invalid network %r; expected a network name or id"
                % (spec.get("network"),))
        found = self._guest(guest_id, DISK_PATHS)
        network = self._network(spec["network"])
        # The new NIC is the one that was not there before, so no other add
        # on this guest may run in between, and an explicit MAC stays
        # locked from the check that it is free to the add.
        with self._device_lock(found), name_lock(self.type_name, self.host,
                                                 mac, kind="mac"):
            if mac is not None and mac in self._macs_in_use():
                raise errors.Conflict("MAC address %s is in use already"
                                      % mac)
            found = self._properties(found.ref, DISK_PATHS)
            before = {nic.key for nic in nics_of(devices_of(found))}

            self._reconfigure(found.ref, deviceChange=[
                new_nic_spec(network, mac)])

            after = self._properties(found.ref, DISK_PATHS)
        added = [nic for nic in nics_of(devices_of(after))
                 if nic.key not in before]
        if not added:
            raise errors.HypervisorError(
                "the new NIC of guest %s is missing after ReconfigVM_Task"
                % found.get("name"))
        return self._nic_by_mac(after, added[0].macAddress)

    def _macs_in_use(self):
        """Return the MACs of every VM's NICs, lower-case."""
        vms = self._retrieve({vim.VirtualMachine: (
            "config.hardware.device",)})[vim.VirtualMachine]
        return {(nic.macAddress or "").lower() for item in vms
                for nic in nics_of(devices_of(item))}

    def update_nic(self, guest_id, mac, changes):
        found = self._guest(guest_id, DISK_PATHS)
        nic = self._nic(found, mac)
        # No rate limit is what vSphere has, so rate_limit None is a no-op.
        unsupported = [key for key in UNSUPPORTED_NIC_KEYS if key in changes
                       and not (key == "rate_limit" and changes[key] is None)]
        if "rate_limit" in changes and changes["rate_limit"] is not None:
            limit = changes["rate_limit"]
            if isinstance(limit, bool) or not isinstance(limit, int) or \
                    limit < 8192:
                raise errors.InvalidArguments(
                    "invalid rate_limit %r; expected at least 8192 bits per "
                    "second" % (limit,))
        if unsupported:
            raise errors.FeatureNotImplemented(
                "VMware cannot set %s of a NIC: vSphere has no such per-NIC "
                "setting" % ", ".join(unsupported))
        unknown = set(changes) - set(UNSUPPORTED_NIC_KEYS) - {"network",
                                                               "active"}
        if unknown:
            raise errors.FeatureNotImplemented(
                "VMware cannot change %s of a NIC" % ", ".join(
                    sorted(unknown)))
        if changes.get("network") is None and changes.get("active") is None:
            return self._nic_by_mac(found, mac)

        if changes.get("network") is not None:
            nic.backing = nic_backing(self._network(changes["network"]))
        if changes.get("active") is not None:
            active = changes["active"]
            if not isinstance(active, bool):
                raise errors.InvalidArguments(
                    "invalid active %r; expected true or false" % (active,))
            running = found.get("runtime.powerState") == "poweredOn"
            nic.connectable = Device.VirtualDevice.ConnectInfo(
                startConnected=active, connected=active and running,
                allowGuestControl=True)
        self._reconfigure(found.ref, deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic)])
        return self._nic_by_mac(self._properties(found.ref, DISK_PATHS), mac)

    def delete_nic(self, guest_id, mac):
        found = self._guest(guest_id, DISK_PATHS)
        nic = self._nic(found, mac)
        self._reconfigure(found.ref, deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="remove", device=nic)])
