"""Creating VLAN networks: port groups on the switch of an existing one.

A new network is always a port group next to ``from_network``:

- a standard port group (vim.Network) gets a sibling on the same vSwitch
  of every host that has it, through HostNetworkSystem.AddPortGroup;
- a distributed port group gets a sibling on its distributed switch,
  through DistributedVirtualSwitch.AddDVPortgroup_Task.

Isolated networks (no ``from_network``) are not created. On vSphere one
would be a port group on a new vSwitch without uplinks, which exists on
one host only. Guests on different hosts of a vCenter could then not
reach each other, and migrating a guest would cut it off.
"""

import logging

from pyVmomi import vim

from simplestack import errors
from simplestack.adapters.guest_locks import name_lock
from simplestack.adapters.vmware.inventory import validate_name

logger = logging.getLogger(__name__)

MAX_VLAN = 4094

#: Initial number of ports of a new distributed port group, which grows
#: as needed because autoExpand is set.
DV_PORTGROUP_PORTS = 8

DvsVlanIdSpec = vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec


def validate_vlan(vlan):
    """Raise InvalidArguments unless ``vlan`` is a VLAN id, 0 to 4094
    (0 leaves the traffic untagged)."""
    if isinstance(vlan, bool) or not isinstance(vlan, int) or \
            not 0 <= vlan <= MAX_VLAN:
        raise errors.InvalidArguments(
            "invalid vlan %r; expected an integer from 0 to %d"
            % (vlan, MAX_VLAN))


class NetworksMixin:
    """Methods of VmwareAdapter that create networks."""

    def create_network(self, spec):
        # The name stays locked from the check that it is free to the
        # creation.
        with name_lock(self.type_name, self.host, spec.get("name"),
                       kind="network"):
            return self._create_network(spec)

    def _create_network(self, spec):
        from_network = spec.get("from_network")
        if from_network is None:
            raise self.not_implemented(
                "create isolated networks",
                "an isolated network would be a vSwitch without uplinks, "
                "which exists on one host only; give from_network (a port "
                "group) and vlan to create a VLAN port group")
        name = spec.get("name")
        validate_name("network", name)
        vlan = spec.get("vlan")
        if vlan is None:
            raise errors.InvalidArguments(
                "missing vlan; a network created from from_network %r "
                "needs a VLAN id from 0 to %d" % (from_network, MAX_VLAN))
        validate_vlan(vlan)
        description = spec.get("description") or ""
        if not isinstance(description, str):
            raise errors.InvalidArguments(
                "invalid description %r; expected a string" % (description,))
        if spec.get("other_config"):
            raise self.not_implemented(
                "set other_config on networks",
                "vSphere port groups have no such field")

        networks = self._networks()
        # Networks are named in NIC requests, so their names stay unique.
        if any(item.get("name") == name for item in networks):
            raise errors.Conflict("a network named %r exists already" % name)
        parent = self._pick("network", from_network, networks)

        if isinstance(parent.ref, vim.dvs.DistributedVirtualPortgroup):
            self._add_dv_portgroup(parent, name, description, vlan)
        elif isinstance(parent.ref, vim.OpaqueNetwork):
            raise self.not_implemented(
                "create networks from opaque (NSX) networks",
                "NSX manages their switches")
        else:
            # NOTE: standard port groups have no description field, so
            # ``description`` is not stored for them.
            self._add_host_portgroups(parent, name, vlan)

        record = self._network_record(self._network(name))
        logger.info("created network %s (%s, VLAN %d, from %s) on %s", name,
                    record["id"], vlan, parent.get("name"), self.host)
        return record

    # -- distributed port groups ---------------------------------------------

    def _add_dv_portgroup(self, parent, name, description, vlan):
        switch = parent.get("config.distributedVirtualSwitch")
        if switch is None:
            raise errors.HypervisorError(
                "distributed port group %s has no distributed switch"
                % parent.get("name"))
        config = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            name=name, description=description or None,
            type="earlyBinding", numPorts=DV_PORTGROUP_PORTS,
            autoExpand=True,
            defaultPortConfig=vim.dvs.VmwareDistributedVirtualSwitch
            .VmwarePortConfigPolicy(
                vlan=DvsVlanIdSpec(vlanId=vlan, inherited=False)))
        # AddDVPortgroup_Task (vSphere 4.0 and later) rather than
        # CreateDVPortgroup_Task, which govmomi 0.24's simulator lacks.
        self._run("AddDVPortgroup_Task", switch, [config])

    # -- standard port groups ------------------------------------------------

    def _host_portgroups(self, portgroup_name, host_ids=None):
        """Return [(host name, network system, HostPortGroupSpec)] of
        every host that has a standard port group called
        ``portgroup_name``, among the hosts with the managed object ids
        ``host_ids`` if given."""
        hosts = self._retrieve({vim.HostSystem: (
            "name", "configManager.networkSystem")})[vim.HostSystem]
        found = []
        for host in hosts:
            if host_ids and host.ref._moId not in host_ids:
                continue
            network_system = host.get("configManager.networkSystem")
            if network_system is None:
                continue
            info = self._properties(network_system,
                                    ["networkInfo.portgroup"])
            for portgroup in info.get("networkInfo.portgroup") or []:
                if portgroup.spec.name == portgroup_name:
                    found.append((host.get("name"), network_system,
                                  portgroup.spec))
                    break
        return found

    def _add_host_portgroups(self, parent, name, vlan):
        """Add port group ``name`` with ``vlan`` next to ``parent`` on
        every host that has ``parent``. When one host fails, remove the
        port groups already added."""
        parent_name = parent.get("name")
        host_ids = {host._moId for host in
                    self._properties(parent.ref, ["host"]).get("host") or []}
        # NOTE: govmomi 0.24's simulator leaves Network.host empty, and
        # then every host with a port group of that name gets the new one,
        # in any datacenter.
        targets = self._host_portgroups(parent_name, host_ids)
        if not targets:
            raise errors.EntityNotFound(
                "no host has the standard port group %s" % parent_name)

        added = []
        try:
            for host_name, network_system, parent_spec in targets:
                new_spec = vim.host.PortGroup.Specification(
                    name=name, vlanId=vlan,
                    vswitchName=parent_spec.vswitchName,
                    policy=parent_spec.policy or vim.host.NetworkPolicy())
                try:
                    network_system.AddPortGroup(portgrp=new_spec)
                except errors.Conflict as error:
                    if added and error.code == "DuplicateName":
                        # NOTE: govmomi 0.24's simulator keeps one Network
                        # per name and datacenter and raises DuplicateName
                        # on the second host, where vSphere adds the host
                        # to the existing network.
                        continue
                    raise
                added.append((host_name, network_system))
        except errors.SimplestackError:
            for host_name, network_system in added:
                self._remove_host_portgroup(host_name, network_system, name)
            raise

    def _remove_host_portgroup(self, host_name, network_system, name):
        try:
            network_system.RemovePortGroup(pgName=name)
        except errors.SimplestackError as error:
            logger.error("failed to remove port group %s from host %s of %s "
                         "after a failed network creation; remove it by "
                         "hand: %s", name, host_name, self.host,
                         error.message)
