"""Listing and creating libvirt networks."""

import logging
import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.libvirt.constants import METADATA_NAMESPACE
from simplestack.adapters.libvirt.domain_xml import _to_xml
from simplestack.adapters.libvirt.lookups import _validate_network_name

logger = logging.getLogger(__name__)


class NetworksMixin:
    """Methods of LibvirtAdapter for networks."""

    def _network_record(self, network):
        root = ET.fromstring(self._call(network.XMLDesc, 0))
        bridge = root.find("bridge")
        tag = root.find("vlan/tag")
        forward = root.find("forward")
        description = root.findtext(
            "metadata/{%s}description" % METADATA_NAMESPACE)
        return {
            "id": network.UUIDString().lower(),
            "name_label": network.name(),
            "name_description": description or "",
            "bridge": bridge.get("name") if bridge is not None else None,
            "vlan": int(tag.get("id")) if tag is not None else None,
            "other_config": {
                "forward_mode": (forward.get("mode", "nat")
                                 if forward is not None else "isolated"),
                "active": bool(self._call(network.isActive)),
                "persistent": bool(self._call(network.isPersistent)),
            },
        }

    def list_networks(self):
        networks = self._call(self.conn.listAllNetworks, 0)
        return [self._network_record(network) for network in networks]

    def get_network(self, network_id):
        return self._network_record(self._network(network_id))

    def _network_name(self, network_id):
        """Return the name of the network ``network_id`` (a UUID or name).

        Domain XML refers to networks by name, and callers may pass the id
        that GET /networks returns.
        """
        return self._network(network_id).name()

    def _check_network_active(self, network_name, guest_name):
        """Raise Conflict unless the network exists and is active.

        A running guest cannot connect an interface to an inactive
        network. libvirt reports that as an invalid operation, which the
        adapter would report as a problem with the guest's state.
        """
        try:
            network = self._call(self.conn.networkLookupByName,
                                 network_name)
        except errors.EntityNotFound as error:
            raise errors.Conflict(
                "guest %s has a network interface on network %s, which "
                "does not exist; move the interface to another network"
                % (guest_name, network_name), original=error.original)
        if not self._call(network.isActive):
            raise errors.Conflict(
                "network %s is inactive, so guest %s cannot connect to it "
                "while running; start the network first, or change the "
                "guest while it is stopped" % (network_name, guest_name))

    def _check_guest_networks(self, description):
        """Raise Conflict unless every network the guest's interfaces name
        is active, as a guest start needs."""
        for interface in description.interfaces:
            if interface.element.get("type") == "network" and \
                    interface.network:
                self._check_network_active(interface.network,
                                           description.name)

    def create_network(self, spec):
        if self.driver == "hyperv":
            raise self.not_implemented("create networks",
                                       "the hyperv driver is not available")
        name = spec.get("name")
        _validate_network_name(name)
        if spec.get("other_config"):
            raise self.not_implemented(
                "set other_config on networks",
                "libvirt networks have no free-form configuration")
        try:
            self._call(self.conn.networkLookupByName, name)
        except errors.EntityNotFound:
            pass
        else:
            raise errors.Conflict("a network named %r already exists" % name)

        vlan = spec.get("vlan")
        if vlan is not None and (not isinstance(vlan, int)
                                 or isinstance(vlan, bool)
                                 or not 0 <= vlan <= 4095):
            raise errors.InvalidArguments(
                "invalid vlan %r; expected an integer from 0 to 4095"
                % (vlan,))
        root = ET.Element("network")
        ET.SubElement(root, "name").text = name
        if spec.get("description"):
            metadata = ET.SubElement(root, "metadata")
            ET.SubElement(metadata, "{%s}description"
                          % METADATA_NAMESPACE).text = spec["description"]
        if spec.get("from_network") is not None:
            self._vlan_network_xml(root, spec["from_network"], vlan)
        elif vlan is not None:
            raise self.not_implemented(
                "create an isolated network with a VLAN tag",
                "libvirt tags VLANs only on Open vSwitch bridges; name one "
                "in from_network")
        # Without <forward> and <ip> the network is isolated: guests on it
        # reach each other and nothing else.

        try:
            network = self._call(self.conn.networkDefineXML, _to_xml(root))
        except errors.HypervisorError as error:
            # A network of that name defined since the check above fails
            # with VIR_ERR_OPERATION_FAILED, the code of other failures too.
            try:
                self._call(self.conn.networkLookupByName, name)
            except errors.EntityNotFound:
                raise error
            raise errors.Conflict("a network named %r already exists"
                                  % name, original=error.original) from error
        try:
            self._call(network.create)
            self._call(network.setAutostart, 1)
        except errors.SimplestackError:
            try:
                self._call(network.undefine)
            except errors.SimplestackError as error:
                logger.error("could not undefine network %s after a failed "
                             "start: %s", name, error.message)
            raise
        logger.info("created network %s on %s", name, self.host)
        return self._network_record(network)

    def _vlan_network_xml(self, root, from_network, vlan):
        """Fill ``root`` as a VLAN on ``from_network``'s Open vSwitch bridge."""
        if vlan is None:
            raise errors.InvalidArguments(
                "from_network needs a vlan: the new network is a VLAN on it")
        self._require("vlan", "create VLAN networks")
        parent = ET.fromstring(self._call(
            self._network(from_network).XMLDesc, 0))
        bridge = parent.find("bridge")
        if parent.find("virtualport[@type='openvswitch']") is None or \
                bridge is None:
            raise self.not_implemented(
                "create a VLAN on network %s" % from_network,
                "libvirt tags VLANs only on Open vSwitch bridges, and this "
                "network is not one")
        for existing in self._call(self.conn.listAllNetworks, 0):
            other = ET.fromstring(self._call(existing.XMLDesc, 0))
            other_bridge = other.find("bridge")
            other_tag = other.find("vlan/tag")
            if (other_bridge is not None and other_tag is not None
                    and other_bridge.get("name") == bridge.get("name")
                    and int(other_tag.get("id")) == vlan):
                raise errors.Conflict(
                    "network %s already has VLAN %d on bridge %s"
                    % (existing.name(), vlan, bridge.get("name")))
        ET.SubElement(root, "forward", mode="bridge")
        ET.SubElement(root, "bridge", name=bridge.get("name"))
        ET.SubElement(root, "virtualport", type="openvswitch")
        ET.SubElement(ET.SubElement(root, "vlan"), "tag", id=str(vlan))
