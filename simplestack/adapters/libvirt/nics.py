"""Network interfaces of guests, identified by their MACs."""

import re
import uuid
import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.libvirt.constants import KIB
from simplestack.adapters.libvirt.domain_xml import _free_usb_port, _to_xml

MAC_PATTERN = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def _normalize_mac(mac):
    normalized = str(mac).strip().lower().replace("-", ":")
    if not MAC_PATTERN.match(normalized):
        raise errors.InvalidArguments(
            "invalid MAC address %r; expected six colon-separated hex bytes"
            % mac)
    return normalized


def _random_mac():
    """Return a random MAC in QEMU's locally administered 52:54:00 range."""
    tail = uuid.uuid4().bytes[:3]
    return "52:54:00:%02x:%02x:%02x" % tuple(tail)


# Random MACs drawn before giving up; with 2**24 MACs in the range, a
# collision in every draw means the range is nearly full.
RANDOM_MAC_TRIES = 100


def _free_random_mac(used):
    """Return a random MAC that is not a key of ``used``."""
    for _try in range(RANDOM_MAC_TRIES):
        mac = _random_mac()
        if mac not in used:
            return mac
    raise errors.Conflict(
        "found no free MAC in the 52:54:00 range after %d random tries; "
        "give the interface a MAC" % RANDOM_MAC_TRIES)


class NicsMixin:
    """Methods of LibvirtAdapter for network interfaces."""

    @staticmethod
    def _nic_record(interface):
        return {
            "id": interface.mac,
            "number": interface.number,
            "mac": interface.mac,
            "network": interface.network,
            # libvirt has no per-NIC locking mode or address allow-lists.
            "locking_mode": None,
            "ipv4_allowed": [],
            "ipv6_allowed": [],
            "rate_limit": interface.rate_limit,
        }

    def list_nics(self, guest_id):
        description = self._describe(self._domain(guest_id))
        return [self._nic_record(interface)
                for interface in description.interfaces]

    @staticmethod
    def _find_interface(description, mac):
        normalized = str(mac).lower().replace("-", ":")
        for interface in description.interfaces:
            if interface.mac == normalized:
                return interface
        raise errors.EntityNotFound("network interface %s of guest %s not "
                                    "found" % (mac, description.name))

    def get_nic(self, guest_id, mac):
        description = self._describe(self._domain(guest_id))
        return self._nic_record(self._find_interface(description, mac))

    def create_nic(self, guest_id, spec):
        self._require("device_hotplug", "add network interfaces")
        network = spec.get("network")
        if not network:
            raise errors.InvalidArguments("a network name is required")
        mac = spec.get("mac")
        if mac is not None:
            mac = _normalize_mac(mac)
        domain = self._domain(guest_id)
        network = self._network_name(network)
        # The MAC lock keeps two guests from taking one MAC between the
        # check and the attach.
        with self._guest_lock(domain), self._mac_lock():
            description = self._describe(domain, inactive=True)
            if self._call(domain.isActive, domain=domain):
                self._check_network_active(network, description.name)
            used = self._used_macs()
            if mac is None:
                mac = _free_random_mac(used)
            elif mac in used:
                raise errors.Conflict(
                    "MAC %s is already used by a network interface of guest "
                    "%s; MACs must be unique, so choose another or omit it "
                    "for a random one" % (mac, used[mac]))
            usb_port = 1
            if self.driver == "qemu":
                usb_port = _free_usb_port(description)
            element = self._interface_element(network, mac, usb_port)
            self._call(domain.attachDeviceFlags, _to_xml(element),
                       self._device_flags(domain), domain=domain)
        return self.get_nic(guest_id, mac)

    def _used_macs(self):
        """Map the MAC of every interface of every domain to its guest name."""
        used = {}
        for _domain, description in self._all_descriptions():
            for interface in description.interfaces:
                if interface.mac:
                    used.setdefault(interface.mac, description.name)
        return used

    NIC_UPDATE_KEYS = ("network", "active", "rate_limit")

    NIC_UNSUPPORTED_KEYS = ("locking_mode", "ipv4_allowed", "ipv6_allowed")

    def update_nic(self, guest_id, mac, changes):
        unsupported = sorted(key for key in changes
                             if key in self.NIC_UNSUPPORTED_KEYS)
        domain = self._domain(guest_id)
        with self._guest_lock(domain):
            description = self._describe(domain, inactive=True)
            interface = self._find_interface(description, mac)
            if unsupported:
                raise self.not_implemented(
                    "set %s on network interfaces" % ", ".join(unsupported),
                    "libvirt has no per-interface locking mode or address "
                    "allow-lists")
            unknown = sorted(set(changes) - set(self.NIC_UPDATE_KEYS))
            if unknown:
                raise errors.InvalidArguments(
                    "unknown network interface fields: %s"
                    % ", ".join(unknown))
            self._require("device_update", "update network interfaces")
            running = self._call(domain.isActive, domain=domain)
            if self.driver == "lxc" and running:
                raise self.not_implemented(
                    "update network interfaces of a running container",
                    "the LXC driver changes the devices of stopped "
                    "containers only")

            network = None
            if changes.get("network") is not None:
                network = self._network_name(changes["network"])
                if running:
                    self._check_network_active(network, description.name)
            if "rate_limit" in changes:
                self._check_rate_limit(changes["rate_limit"])

            element = interface.element
            if network is not None:
                source = element.find("source")
                element.set("type", "network")
                source.attrib.clear()
                source.set("network", network)
            if changes.get("active") is not None:
                link = element.find("link")
                if link is None:
                    link = ET.SubElement(element, "link")
                link.set("state", "up" if changes["active"] else "down")
            if "rate_limit" in changes:
                self._set_rate_limit(element, changes["rate_limit"])
            self._call(domain.updateDeviceFlags, _to_xml(element),
                       self._device_flags(domain), domain=domain)
        return self.get_nic(guest_id, mac)

    @staticmethod
    def _check_rate_limit(rate_limit):
        if rate_limit is None:
            return
        if (not isinstance(rate_limit, int) or isinstance(rate_limit, bool)
                or rate_limit < 8 * KIB):
            raise errors.InvalidArguments(
                "invalid rate_limit %r; expected at least 8192 bits per "
                "second (libvirt counts whole KiB/s)" % (rate_limit,))

    @staticmethod
    def _set_rate_limit(element, rate_limit):
        bandwidth = element.find("bandwidth")
        if bandwidth is not None:
            element.remove(bandwidth)
        if rate_limit is None:
            return
        average = str(rate_limit // (8 * KIB))
        bandwidth = ET.SubElement(element, "bandwidth")
        ET.SubElement(bandwidth, "inbound", average=average)
        ET.SubElement(bandwidth, "outbound", average=average)

    def delete_nic(self, guest_id, mac):
        self._require("device_hotplug", "delete network interfaces")
        domain = self._domain(guest_id)
        with self._guest_lock(domain):
            description = self._describe(domain, inactive=True)
            interface = self._find_interface(description, mac)
            self._call(domain.detachDeviceFlags, _to_xml(interface.element),
                       self._device_flags(domain), domain=domain)
