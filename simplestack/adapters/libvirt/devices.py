"""The devices of a guest: disks, the CD-ROM drive and network interfaces.

A disk is identified by the position of its target device, the CD-ROM is
the first cdrom <disk>, and a network interface is identified by its MAC.
"""

import os
import re
import uuid
import xml.etree.ElementTree as ET

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt.constants import GIB, KIB
from simplestack.adapters.libvirt.domain_xml import (
    _free_target, _free_usb_port, _target_index, _to_xml)

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


class DevicesMixin:
    """Methods of LibvirtAdapter for disks, the media device and NICs."""

    # -- disks -------------------------------------------------------------

    def _disk_record(self, disk, size):
        name = os.path.basename(disk.path) if disk.path else None
        return {
            "id": str(disk.number),
            "name": name,
            "number": disk.number,
            "size": size // GIB,
            "extra_info": disk.path,
        }

    def list_disks(self, guest_id):
        domain = self._domain(guest_id)
        description = self._describe(domain)
        sizes = self._disk_sizes(domain, description)
        return [self._disk_record(disk, sizes.get(disk.target, 0))
                for disk in description.disks]

    def _find_disk(self, description, disk_id):
        for disk in description.disks:
            if str(disk.number) == str(disk_id):
                return disk
        raise errors.EntityNotFound("disk %s of guest %s not found"
                                    % (disk_id, description.name))

    def get_disk(self, guest_id, disk_id):
        domain = self._domain(guest_id)
        description = self._describe(domain)
        disk = self._find_disk(description, disk_id)
        sizes = self._disk_sizes(domain, description)
        return self._disk_record(disk, sizes.get(disk.target, 0))

    def _device_flags(self, domain):
        """Change the persistent definition, and the live guest if running."""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if self._call(domain.isActive, domain=domain):
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return flags

    def create_disk(self, guest_id, spec):
        self._require("disks", "add disks")
        self._require("device_hotplug", "add disks")
        size = spec.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise errors.InvalidArguments(
                "invalid size %r; expected a positive number of GiB"
                % (size,))
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        pool = self._default_pool(spec.get("storage_id"))
        target = _free_target(description)
        number = _target_index(target)
        volume_name = spec.get("name") or "%s-disk%d.qcow2" % (
            description.name, number)
        if "/" in volume_name:
            raise errors.InvalidArguments(
                "invalid disk name %r; it may not contain '/'" % volume_name)
        self._check_volume_name_free(pool, volume_name)

        volume = self._call(pool.createXML,
                            self._volume_xml(volume_name, size * GIB), 0)
        try:
            disk_element = self._disk_element(self._call(volume.path), target)
            self._call(domain.attachDeviceFlags, _to_xml(disk_element),
                       self._device_flags(domain), domain=domain)
        except errors.SimplestackError:
            self._delete_volumes([volume])
            raise
        return self.get_disk(guest_id, number)

    def update_disk(self, guest_id, disk_id, changes):
        domain = self._domain(guest_id)
        description = self._describe(domain)
        disk = self._find_disk(description, disk_id)
        unknown = sorted(set(changes) - {"name", "size"})
        if unknown:
            raise errors.InvalidArguments(
                "unknown disk fields: %s" % ", ".join(unknown))
        current_name = os.path.basename(disk.path) if disk.path else None
        if changes.get("name") not in (None, current_name):
            raise self.not_implemented(
                "rename disks",
                "a disk's name is its storage volume's name, and libvirt "
                "cannot rename volumes")
        size = changes.get("size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool):
                raise errors.InvalidArguments(
                    "invalid size %r; expected a number of GiB" % (size,))
            current = self._disk_sizes(domain, description).get(
                disk.target, 0)
            if size * GIB < current and size != current // GIB:
                raise errors.InvalidArguments(
                    "disk %s is %d GiB; it cannot shrink to %d GiB"
                    % (disk_id, current // GIB, size))
            if size * GIB > current:
                self._check_growable(disk)
                self._grow_disk(domain, disk, size * GIB)
        return self.get_disk(guest_id, disk_id)

    def delete_disk(self, guest_id, disk_id):
        self._require("device_hotplug", "delete disks")
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        disk = self._find_disk(description, disk_id)
        volume = self._volume_by_path(disk.path) if disk.path else None
        self._call(domain.detachDeviceFlags, _to_xml(disk.element),
                   self._device_flags(domain), domain=domain)
        if volume is not None:
            self._call(volume.delete, 0)

    # -- media device ------------------------------------------------------

    def _cdrom(self, description):
        if not description.cdroms:
            raise errors.InvalidState("guest %s has no CD-ROM drive"
                                      % description.name)
        return description.cdroms[0]

    def get_media(self, guest_id):
        self._require("media", "show the media device")
        domain = self._domain(guest_id)
        cdrom = self._cdrom(self._describe(domain))
        if not cdrom.path:
            return {"name": None}
        volume = self._volume_by_path(cdrom.path)
        return {"name": volume.name() if volume is not None
                else os.path.basename(cdrom.path)}

    def set_media(self, guest_id, name):
        self._require("media", "change the media device")
        domain = self._domain(guest_id)
        cdrom = self._cdrom(self._describe(domain))
        self._require("device_update", "change the media device")
        path = None
        if name is not None:
            volumes = self._volumes_named(name)
            if not volumes:
                raise errors.EntityNotFound("image %s not found" % name)
            if len(volumes) > 1:
                raise errors.Conflict(
                    "image name %r matches volumes in %d storages"
                    % (name, len(volumes)))
            path = self._call(volumes[0].path)
        element = self._cdrom_element(cdrom.target, path)
        self._call(domain.updateDeviceFlags, _to_xml(element),
                   self._device_flags(domain), domain=domain)
        return self.get_media(guest_id)

    # -- network interfaces ------------------------------------------------

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
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        network = spec.get("network")
        if not network:
            raise errors.InvalidArguments("a network name is required")
        network = self._network_name(network)
        if self._call(domain.isActive, domain=domain):
            self._check_network_active(network, description.name)
        mac = spec.get("mac")
        if mac is not None:
            mac = _normalize_mac(mac)
            if any(interface.mac == mac
                   for interface in description.interfaces):
                raise errors.Conflict("guest %s already has a network "
                                      "interface with MAC %s"
                                      % (description.name, mac))
        else:
            mac = _random_mac()
        usb_port = 1
        if self.driver == "qemu":
            usb_port = _free_usb_port(description)
        element = self._interface_element(network, mac, usb_port)
        self._call(domain.attachDeviceFlags, _to_xml(element),
                   self._device_flags(domain), domain=domain)
        return self.get_nic(guest_id, mac)

    NIC_UPDATE_KEYS = ("network", "active", "rate_limit")

    NIC_UNSUPPORTED_KEYS = ("locking_mode", "ipv4_allowed", "ipv6_allowed")

    def update_nic(self, guest_id, mac, changes):
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        interface = self._find_interface(description, mac)
        unsupported = sorted(key for key in changes
                             if key in self.NIC_UNSUPPORTED_KEYS)
        if unsupported:
            raise self.not_implemented(
                "set %s on network interfaces" % ", ".join(unsupported),
                "libvirt has no per-interface locking mode or address "
                "allow-lists")
        unknown = sorted(set(changes) - set(self.NIC_UPDATE_KEYS))
        if unknown:
            raise errors.InvalidArguments(
                "unknown network interface fields: %s" % ", ".join(unknown))
        self._require("device_update", "update network interfaces")
        if self.driver == "lxc" and self._call(domain.isActive,
                                               domain=domain):
            raise self.not_implemented(
                "update network interfaces of a running container",
                "the LXC driver changes the devices of stopped containers "
                "only")

        network = None
        if changes.get("network") is not None:
            network = self._network_name(changes["network"])
            if self._call(domain.isActive, domain=domain):
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
        description = self._describe(domain, inactive=True)
        interface = self._find_interface(description, mac)
        self._call(domain.detachDeviceFlags, _to_xml(interface.element),
                   self._device_flags(domain), domain=domain)
