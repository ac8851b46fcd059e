"""Pool, host, storage (datastore) and network records."""

from collections import Counter

from pyVmomi import vim

from simplestack.adapters.vmware.constants import GIB, MIB
from simplestack.adapters.vmware.inventory import Reference

HOST_PATHS = ("name", "hardware.memorySize",
              "summary.quickStats.overallMemoryUsage",
              "hardware.systemInfo.uuid")
DATASTORE_PATHS = ("name", "summary.type", "summary.capacity",
                   "summary.freeSpace", "summary.uncommitted",
                   "summary.url")
NETWORK_PATHS = ("name", "host")
PORTGROUP_PATHS = ("name", "key", "config.distributedVirtualSwitch",
                   "config.defaultPortConfig", "config.description")
#: The hosts' standard port groups (HostPortGroup), which carry the VLAN
#: id and vSwitch name. HostSystem.config.network has them too, but
#: govmomi 0.24's simulator does not update it on AddPortGroup.
HOST_PORTGROUPS = Reference(
    vim.HostSystem, "configManager.networkSystem", vim.host.NetworkSystem,
    ("networkInfo.portgroup",))

#: vlanId of a standard port group that passes every VLAN tag to the
#: guests (virtual guest tagging).
TRUNK_VLAN = 4095


def most_common(values):
    """Return the value that occurs most often in ``values``, the least
    one on a tie, or None when ``values`` is empty."""
    counts = Counter(values)
    if not counts:
        return None
    return min(counts, key=lambda value: (-counts[value], value))


def standard_vlan(vlan_ids):
    """Return the VLAN id of a standard port group, given its vlanId on
    each host, or None when it is untagged (0) or a trunk (4095), as for
    distributed port groups.

    Hosts may disagree, so the vlanId that most hosts have wins, and the
    lowest one on a tie.
    """
    vlan = most_common(vlan_ids)
    if vlan in (0, TRUNK_VLAN):
        return None
    return vlan


class HostsMixin:
    """Methods of VmwareAdapter for the pool, hosts, storages and
    networks."""

    # -- pool and hosts -------------------------------------------------------

    def get_pool(self):
        about = self.content.about
        hosts = self._retrieve({vim.HostSystem: HOST_PATHS})[vim.HostSystem]
        total = sum(item.get("hardware.memorySize") or 0 for item in hosts)
        used = sum(item.get("summary.quickStats.overallMemoryUsage") or 0
                   for item in hosts)
        if about.instanceUuid:
            pool_uuid = about.instanceUuid.lower()
        elif hosts:
            # A standalone ESXi host: the pool is the host.
            pool_uuid = (hosts[0].get("hardware.systemInfo.uuid") or
                         "").lower()
        else:
            pool_uuid = None
        return {
            "used_memory": used,
            "total_memory": total // MIB,
            "uuid": pool_uuid,
            "master": self.host,
            "software_info": {
                "version": about.version,
                "build": about.build,
                "name": about.fullName,
                # VirtualCenter for vCenter, HostAgent for ESXi.
                "api_type": about.apiType,
            },
        }

    def _host_record(self, item):
        return {"id": self._object_id(item.ref), "name": item.get("name"),
                "address": item.get("name")}

    def list_hosts(self):
        hosts = self._retrieve({vim.HostSystem: ("name",)})[vim.HostSystem]
        return sorted((self._host_record(item) for item in hosts),
                      key=lambda record: record["id"])

    def get_host(self, host_id):
        hosts = self._retrieve({vim.HostSystem: ("name",)})[vim.HostSystem]
        return self._host_record(self._pick("host", host_id, hosts))

    # -- storages -------------------------------------------------------------

    def _storage_record(self, item):
        capacity = item.get("summary.capacity") or 0
        free = item.get("summary.freeSpace") or 0
        uncommitted = item.get("summary.uncommitted") or 0
        return {
            "id": self._object_id(item.ref),
            "name": item.get("name"),
            "type": item.get("summary.type"),
            "used_space": (capacity - free) // GIB,
            # Thin disks count at their full size.
            "allocated_space": (capacity - free + uncommitted) // GIB,
            "size": capacity // GIB,
        }

    def _datastores(self):
        return self._retrieve({vim.Datastore: DATASTORE_PATHS})[vim.Datastore]

    def _datastore(self, storage_id):
        return self._pick("storage", storage_id, self._datastores())

    def list_storages(self):
        return sorted((self._storage_record(item)
                       for item in self._datastores()),
                      key=lambda record: record["id"])

    def get_storage(self, storage_id):
        return self._storage_record(self._datastore(storage_id))

    # -- networks -------------------------------------------------------------

    def _networks(self):
        """Return every network (standard, distributed port group, opaque)
        as a Found with "switch_name" for port groups, "switch_uuid" for
        distributed ones and "vlan_ids" (one per host) for standard ones.
        """
        found = self._retrieve({
            vim.dvs.DistributedVirtualPortgroup: PORTGROUP_PATHS,
            vim.Network: NETWORK_PATHS,
            vim.DistributedVirtualSwitch: ("name", "uuid"),
            vim.HostSystem: ("configManager.networkSystem",),
        }, references=[HOST_PORTGROUPS])
        specs_by_name = self._host_portgroup_specs(found)
        networks = []
        for item in found[vim.Network]:
            if type(item.ref) is vim.Network:
                specs = self._network_portgroup_specs(item, specs_by_name)
                item["vlan_ids"] = [spec.vlanId for spec in specs]
                # Hosts may name the vSwitch differently, so the name
                # that most hosts have wins, and the first in sort order
                # on a tie.
                item["switch_name"] = most_common(
                    spec.vswitchName for spec in specs)
            networks.append(item)

        switches = {item.ref._moId: item
                    for item in found[vim.DistributedVirtualSwitch]}
        for item in found[vim.dvs.DistributedVirtualPortgroup]:
            switch_ref = item.get("config.distributedVirtualSwitch")
            switch = switches.get(switch_ref._moId) if switch_ref else None
            item["switch_uuid"] = switch.get("uuid") if switch else None
            item["switch_name"] = switch.get("name") if switch else None
            networks.append(item)
        return networks

    @staticmethod
    def _host_portgroup_specs(found):
        """Return {port group name: [(host id, HostPortGroupSpec)]} from a
        retrieval with HOST_PORTGROUPS."""
        portgroups_by_system = {
            item.ref._moId: item.get("networkInfo.portgroup") or []
            for item in found[vim.host.NetworkSystem]}
        specs_by_name = {}
        for host in found[vim.HostSystem]:
            network_system = host.get("configManager.networkSystem")
            if network_system is None:
                continue
            for portgroup in portgroups_by_system.get(
                    network_system._moId, []):
                specs_by_name.setdefault(portgroup.spec.name, []).append(
                    (host.ref._moId, portgroup.spec))
        return specs_by_name

    @staticmethod
    def _network_portgroup_specs(item, specs_by_name):
        """Return the HostPortGroupSpec of standard network ``item`` on
        each of its hosts."""
        host_ids = {host._moId for host in item.get("host") or []}
        specs = specs_by_name.get(item.get("name"), [])
        if not host_ids:
            # NOTE: govmomi 0.24's simulator leaves Network.host empty, and
            # then the port groups of that name on every host count, in
            # any datacenter.
            return [spec for _host_id, spec in specs]
        return [spec for host_id, spec in specs if host_id in host_ids]

    def _network(self, name_or_id):
        return self._pick("network", name_or_id, self._networks())

    def _network_record(self, item):
        vlan = None
        description = ""
        other = {"type": "standard"}
        bridge = None
        if isinstance(item.ref, vim.dvs.DistributedVirtualPortgroup):
            other = {"type": "distributed", "key": item.get("key")}
            bridge = item.get("switch_name")
            description = item.get("config.description") or ""
            port_config = item.get("config.defaultPortConfig")
            vlan_spec = getattr(port_config, "vlan", None)
            if isinstance(vlan_spec, vim.dvs.VmwareDistributedVirtualSwitch
                          .VlanIdSpec) and vlan_spec.vlanId:
                vlan = vlan_spec.vlanId
        elif isinstance(item.ref, vim.OpaqueNetwork):
            other = {"type": "opaque"}
        else:
            bridge = item.get("switch_name")
            vlan = standard_vlan(item.get("vlan_ids") or [])
        return {
            "id": self._object_id(item.ref),
            "name_label": item.get("name"),
            "name_description": description,
            "bridge": bridge,
            "vlan": vlan,
            "other_config": other,
        }

    def list_networks(self):
        return sorted((self._network_record(item)
                       for item in self._networks()),
                      key=lambda record: record["id"])

    def get_network(self, network_id):
        return self._network_record(self._network(network_id))
