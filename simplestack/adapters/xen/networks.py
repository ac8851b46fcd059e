"""Networks: records, isolated networks and VLANs."""

import logging

from simplestack import errors
from simplestack.adapters.guest_locks import name_lock
from simplestack.adapters.xen.lookups import validate_name
from simplestack.adapters.xen.records import network_record
from simplestack.adapters.xen.rollback import Rollback

logger = logging.getLogger(__name__)


class NetworksMixin:
    """Methods of XenAdapter for networks."""

    def list_networks(self):
        loaded = self._load_classes(("network", "PIF"))
        records = [network_record(network, loaded["PIF"])
                   for network in loaded["network"].values()]
        return sorted(records, key=lambda record: record["id"])

    def get_network(self, network_id):
        _ref, network = self._network(network_id)
        return network_record(network,
                              self._records("PIF", network["PIFs"]))

    def create_network(self, spec):
        # XAPI allows several networks with one name, so the name stays
        # locked from the check below to the creation.
        with name_lock(self.type_name, self.host, spec.get("name"),
                       kind="network"):
            return self._create_network(spec)

    def _create_network(self, spec):
        name = spec.get("name")
        validate_name("network", name)
        vlan = spec.get("vlan")
        from_network = spec.get("from_network")
        if (vlan is None) != (from_network is None):
            raise errors.InvalidArguments(
                "a VLAN network needs both from_network and vlan; give "
                "neither for an isolated network")
        # Networks are named in NIC requests, so their names stay unique.
        existing = self._call("network.get_by_name_label", name)
        if existing:
            raise errors.Conflict("a network named %r exists already" % name)
        pif_ref = None
        if vlan is not None:
            pif_ref = self._vlan_parent(from_network, vlan)

        with Rollback("creating a network") as rollback:
            network_ref = self._call("network.create", {
                "name_label": name,
                "name_description": spec.get("description") or "",
                "MTU": 1500,
                "other_config": dict(spec.get("other_config") or {}),
                "tags": [],
            })
            # A failed VLAN creation would otherwise leave the new network
            # behind, unconnected.
            rollback.add("delete the new network", self._call,
                         "network.destroy", network_ref)
            if pif_ref is not None:
                self._call("pool.create_VLAN_from_PIF", pif_ref,
                           network_ref, vlan)
        network = self._record("network", network_ref)
        logger.info("created network %s (%s%s) on %s", name, network["uuid"],
                    ", VLAN %d" % vlan if vlan is not None else "", self.host)
        return network_record(network, self._records("PIF", network["PIFs"]))

    def _vlan_parent(self, from_network, vlan):
        """Return an untagged PIF of ``from_network`` to tag with ``vlan``.

        Raise Conflict when a PIF on the same device has that tag already.
        """
        _ref, parent = self._network(from_network)
        pifs = self._all_records("PIF")
        untagged = [ref for ref in parent["PIFs"]
                    if ref in pifs and int(pifs[ref]["VLAN"]) < 0]
        if not untagged:
            raise errors.InvalidArguments(
                "network %s has no untagged physical interface to carry "
                "VLAN %d" % (from_network, vlan))
        devices = {pifs[ref]["device"] for ref in untagged}
        for pif in pifs.values():
            if pif["device"] in devices and int(pif["VLAN"]) == vlan:
                raise errors.Conflict("VLAN %d exists already on device %s"
                                      % (vlan, pif["device"]))
        return untagged[0]
