"""Reading domain XML into objects and building XML elements.

DomainDescription and its devices parse what ``virDomainGetXMLDesc``
returns. DomainXmlMixin builds the <domain>, <disk> and <interface>
elements and the <volume> XML that the adapter defines, which differ by
driver.
"""

import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.libvirt.constants import (
    GUEST_AGENT_CHANNEL, KIB, METADATA_NAMESPACE, MIB)


# -- reading domain XML -----------------------------------------------------

class DiskDevice:
    """A <disk> of a domain: a disk or a CD-ROM."""

    def __init__(self, element):
        self.element = element
        self.device = element.get("device", "disk")
        target = element.find("target")
        self.target = target.get("dev") if target is not None else None
        self.bus = target.get("bus") if target is not None else None
        source = element.find("source")
        self.path = None
        if source is not None:
            self.path = (source.get("file") or source.get("dev")
                         or source.get("name"))
        driver = element.find("driver")
        self.format = driver.get("type") if driver is not None else None
        self.number = _target_index(self.target)


class InterfaceDevice:
    """An <interface> of a domain."""

    def __init__(self, element, number):
        self.element = element
        self.number = number
        mac = element.find("mac")
        self.mac = mac.get("address").lower() if mac is not None else None
        source = element.find("source")
        self.network = None
        if source is not None:
            self.network = source.get("network") or source.get("bridge")
        link = element.find("link")
        self.active = link is None or link.get("state") != "down"
        outbound = element.find("bandwidth/outbound")
        self.rate_limit = None
        if outbound is not None and outbound.get("average"):
            # libvirt's average is in kibibytes per second.
            self.rate_limit = int(outbound.get("average")) * KIB * 8


class DomainDescription:
    """The parts of a domain's XML that the records need."""

    def __init__(self, xml_text):
        self.root = ET.fromstring(xml_text)
        self.name = self.root.findtext("name")
        self.uuid = self.root.findtext("uuid").lower()
        self.memory_kib = _memory_kib(self.root.find("memory"))
        vcpu = self.root.find("vcpu")
        self.cpus = 0
        if vcpu is not None:
            self.cpus = int(vcpu.get("current") or vcpu.text)
        os_types = _children(self.root, "os", "type")
        self.os_type = (os_types[0].text or "") if os_types else None
        devices = _children(self.root, "devices", "disk")
        self.disks = sorted(
            (DiskDevice(element) for element in devices
             if element.get("device", "disk") == "disk"),
            key=lambda disk: disk.number)
        self.cdroms = [DiskDevice(element) for element in devices
                       if element.get("device") == "cdrom"]
        self.interfaces = [
            InterfaceDevice(element, number) for number, element
            in enumerate(_children(self.root, "devices", "interface"))]
        self.agent_connected = False
        for channel in _children(self.root, "devices", "channel", "target"):
            if (channel.get("name") == GUEST_AGENT_CHANNEL
                    and channel.get("state") == "connected"):
                self.agent_connected = True
        tags = _children(self.root, "metadata",
                         "{%s}tags" % METADATA_NAMESPACE)
        self.tags = set()
        if tags:
            self.tags = {tag.text or "" for tag in tags[0]}

    def used_targets(self):
        return {element.get("dev")
                for element in _children(self.root, "devices", "disk",
                                         "target")}


def _children(element, *tags):
    """Return the elements that ``element.findall("/".join(tags))`` returns,
    in the same order.

    findall() runs a path with a slash through ElementPath in Python, a
    single tag in C: one step per tag took a third of the time
    (timeit, on a test driver domain's XML).
    """
    found = [element]
    for tag in tags:
        found = [child for parent in found for child in parent.findall(tag)]
    return found


def _memory_kib(element):
    if element is None:
        return 0
    factors = {"b": 1 / KIB, "bytes": 1 / KIB, "k": 1, "kib": 1, "kb": 1,
               "m": KIB, "mib": KIB, "mb": KIB, "g": MIB, "gib": MIB,
               "gb": MIB}
    unit = element.get("unit", "KiB").lower()
    return int(int(element.text) * factors.get(unit, 1))


TARGET_PREFIXES = ("xvd", "sd", "vd", "hd", "ubd")


def _target_index(dev):
    """Return the position a target device name encodes (sda 0, sdaa 26).

    The letters after the bus prefix count in bijective base 26, as libvirt
    numbers them. An unknown name returns a large number so it sorts last.
    """
    if not dev:
        return 1 << 20
    for prefix in TARGET_PREFIXES:
        if dev.startswith(prefix) and dev[len(prefix):].isalpha():
            index = 0
            for letter in dev[len(prefix):]:
                index = index * 26 + (ord(letter) - ord("a") + 1)
            return index - 1
    return 1 << 20


def _target_name(prefix, index):
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("a") + remainder) + letters
    return prefix + letters


def _free_target(description, prefix="sd"):
    used = description.used_targets()
    index = 0
    while _target_name(prefix, index) in used:
        index += 1
    return _target_name(prefix, index)


#: USB ports of the controller of the QEMU guests this adapter creates.
USB_PORTS = 15


def _free_usb_port(description):
    """Return the lowest port of USB bus 0 that no device of the guest uses.

    Guests defined elsewhere may have libvirt's default controller, whose
    port count the XML does not state, so the count is a best guess there.
    """
    controller = description.root.find(
        "devices/controller[@type='usb'][@index='0']")
    ports = USB_PORTS
    if controller is not None and controller.get("ports"):
        ports = int(controller.get("ports"))
    elif controller is not None:
        # NOTE: libvirt's default piix3-uhci has 2 ports.
        ports = 2
    used = {address.get("port") for address in description.root.findall(
        "devices/*/address[@type='usb']") if address.get("bus", "0") == "0"}
    for port in range(1, ports + 1):
        if str(port) not in used:
            return port
    raise errors.Conflict("guest %s has no free USB port for another "
                          "network interface (%d ports)"
                          % (description.name, ports))


def _to_xml(element):
    return ET.tostring(element, encoding="unicode")


# -- building XML -----------------------------------------------------------

class DomainXmlMixin:
    """Methods of LibvirtAdapter that build XML for its driver."""

    @staticmethod
    def _volume_xml(name, capacity_bytes, volume_format="qcow2"):
        volume = ET.Element("volume")
        ET.SubElement(volume, "name").text = name
        ET.SubElement(volume, "capacity", unit="bytes").text = str(
            capacity_bytes)
        # Sparse: allocate nothing up front.
        ET.SubElement(volume, "allocation", unit="bytes").text = "0"
        target = ET.SubElement(volume, "target")
        ET.SubElement(target, "format", type=volume_format)
        if volume_format == "qcow2":
            # libvirt 9.0 writes qcow2 version 2 by default, and qemu-img
            # cannot resize a version 2 image that has snapshots.
            ET.SubElement(target, "compat").text = "1.1"
        return _to_xml(volume)

    def _disk_element(self, path, target, volume_format="qcow2"):
        disk = ET.Element("disk", type="file", device="disk")
        if self.driver == "qemu":
            ET.SubElement(disk, "driver", name="qemu", type=volume_format)
        ET.SubElement(disk, "source", file=path)
        ET.SubElement(disk, "target", dev=target, bus="scsi")
        return disk

    def _cdrom_element(self, target, path=None):
        cdrom = ET.Element("disk", type="file", device="cdrom")
        if self.driver == "qemu":
            ET.SubElement(cdrom, "driver", name="qemu", type="raw")
        if path:
            ET.SubElement(cdrom, "source", file=path)
        ET.SubElement(cdrom, "target", dev=target, bus="scsi")
        ET.SubElement(cdrom, "readonly")
        return cdrom

    def _interface_element(self, network, mac=None, usb_port=1):
        interface = ET.Element("interface", type="network")
        if mac:
            ET.SubElement(interface, "mac", address=mac)
        ET.SubElement(interface, "source", network=network)
        if self.driver == "qemu":
            # usb-net unplugs at once; a PCI NIC waits for the guest OS to
            # release it, which a guest without one never does.
            ET.SubElement(interface, "model", type="usb-net")
            # libvirt 9.0 does not know usb-net is a USB device: without a
            # full USB address it looks for a PCI slot ("Cannot
            # automatically add a new PCI bus") or starts QEMU with an
            # empty port.
            ET.SubElement(interface, "address", type="usb", bus="0",
                          port=str(usb_port))
        return interface

    def _domain_element(self, name, memory_mib, cpus):
        domain_type = {"qemu": self.config["domain_type"], "lxc": "lxc",
                       "test": "test"}[self.driver]
        domain = ET.Element("domain", type=domain_type)
        ET.SubElement(domain, "name").text = name
        ET.SubElement(domain, "memory", unit="MiB").text = str(memory_mib)
        ET.SubElement(domain, "vcpu").text = str(cpus)
        os_element = ET.SubElement(domain, "os")
        if self.driver == "lxc":
            ET.SubElement(os_element, "type").text = "exe"
            ET.SubElement(os_element, "init").text = self.config[
                "container_init"]
        else:
            ET.SubElement(os_element, "type").text = "hvm"
            ET.SubElement(os_element, "boot", dev="hd")
            # ACPI lets QEMU hot-plug and unplug devices.
            features = ET.SubElement(domain, "features")
            ET.SubElement(features, "acpi")
        devices = ET.SubElement(domain, "devices")
        if self.driver == "qemu":
            # One virtio-scsi controller carries the disks and the CD-ROM:
            # SCSI devices unplug synchronously, PCI disks do not.
            ET.SubElement(devices, "controller", type="scsi", index="0",
                          model="virtio-scsi")
            # The NICs are USB devices, one port each.
            ET.SubElement(devices, "controller", type="usb", index="0",
                          model="qemu-xhci", ports=str(USB_PORTS))
            channel = ET.SubElement(devices, "channel", type="unix")
            ET.SubElement(channel, "target", type="virtio",
                          name=GUEST_AGENT_CHANNEL)
        if self.driver == "lxc":
            ET.SubElement(devices, "console", type="pty")
        return domain
