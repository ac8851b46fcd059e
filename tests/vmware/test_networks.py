"""Creating VLAN networks as standard and distributed port groups, on a
simulated vCenter and a simulated ESX host.

Both models have the standard port group "VM Network" on vSwitch0 of every
host. Only the vCenter model has a distributed switch, with the port group
"DC0_DVPG0".
"""

import pytest
from pyVmomi import vim

from simplestack import errors
from simplestack.adapters.vmware.hosts import most_common, standard_vlan
from tests import backends
from tests.vmware_fixtures import VM_NETWORK, container_items

DV_PORTGROUP = "DC0_DVPG0"
DV_SWITCH = "DVS0"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def host_portgroups(service, name):
    """Return {host name: HostPortGroupSpec} of the port groups ``name``."""
    content = service.RetrieveContent()
    found = {}
    for _ref, values in container_items(content, vim.HostSystem, (
            "name", "configManager.networkSystem")):
        network_system = values["configManager.networkSystem"]
        for portgroup in network_system.networkInfo.portgroup:
            if portgroup.spec.name == name:
                found[values["name"]] = portgroup.spec
    return found


def remove_network(service, name):
    """Remove the standard or distributed port group ``name``, if any."""
    content = service.RetrieveContent()
    for ref, values in container_items(content, vim.Network, ("name",)):
        if values["name"] != name:
            continue
        if isinstance(ref, vim.dvs.DistributedVirtualPortgroup):
            ref.Destroy_Task()
            return
    for _ref, values in container_items(content, vim.HostSystem, (
            "configManager.networkSystem",)):
        network_system = values["configManager.networkSystem"]
        names = [portgroup.spec.name
                 for portgroup in network_system.networkInfo.portgroup]
        if name in names:
            network_system.RemovePortGroup(pgName=name)


@pytest.fixture
def new_name(vcsim_simulator):
    """A fresh network name; the network is removed after the test."""
    name = backends.unique_name("net")
    yield name
    with vcsim_simulator.session() as service:
        remove_network(service, name)


# A standalone ESX host has no distributed switch, so these tests run on
# the vCenter model only.
VCENTER_ONLY = pytest.mark.parametrize("vcsim_simulator", ["vpx"],
                                       indirect=True)


def test_vlan_from_standard_portgroup(adapter, new_name, vcsim_simulator):
    record = adapter.create_network({"name": new_name,
                                     "from_network": VM_NETWORK,
                                     "vlan": 10})

    assert record["name_label"] == new_name
    assert record["vlan"] == 10
    assert record["bridge"] == "vSwitch0"
    assert record["other_config"] == {"type": "standard"}
    assert adapter.get_network(record["id"]) == record
    assert record in adapter.list_networks()
    with vcsim_simulator.session() as service:
        specs = host_portgroups(service, new_name)
    assert specs, "no host has the new port group"
    for host_name, spec in specs.items():
        assert spec.vlanId == 10, host_name
        assert spec.vswitchName == "vSwitch0", host_name


@VCENTER_ONLY
def test_vlan_from_distributed_portgroup(adapter, new_name):
    record = adapter.create_network({"name": new_name,
                                     "from_network": DV_PORTGROUP,
                                     "vlan": 42, "description": "lab"})

    assert record["name_label"] == new_name
    assert record["name_description"] == "lab"
    assert record["vlan"] == 42
    assert record["bridge"] == DV_SWITCH
    assert record["other_config"]["type"] == "distributed"
    assert adapter.get_network(record["id"]) == record


@VCENTER_ONLY
def test_vlan_zero_is_untagged(adapter, new_name):
    record = adapter.create_network({"name": new_name,
                                     "from_network": DV_PORTGROUP,
                                     "vlan": 0})

    assert record["vlan"] is None


def test_standard_untagged_vlan_is_null(adapter):
    record = adapter.get_network(VM_NETWORK)

    assert record["vlan"] is None
    assert record["bridge"] == "vSwitch0"


def test_standard_vlan_zero_is_untagged(adapter, new_name):
    record = adapter.create_network({"name": new_name,
                                     "from_network": VM_NETWORK,
                                     "vlan": 0})

    assert record["vlan"] is None
    assert record["bridge"] == "vSwitch0"


# govmomi 0.24's simulator lacks UpdatePortGroup and raises DuplicateName
# when a second host of a datacenter adds a port group of the same name.
# Hosts that disagree on a VLAN cannot be set up there, so the rule is
# checked alone.
@pytest.mark.parametrize("vlan_ids, expected", [
    ([], None),
    ([10], 10),
    ([0, 0], None),
    ([4095], None),
    ([10, 20, 20], 20),
    ([20, 10], 10),
    ([0, 10], None),
    ([4095, 30, 4095], None),
])
def test_standard_vlan_rule(vlan_ids, expected):
    assert standard_vlan(vlan_ids) == expected


def test_most_common_breaks_ties_by_order():
    assert most_common(["vSwitch1", "vSwitch0"]) == "vSwitch0"
    assert most_common(["vSwitch1", "vSwitch0", "vSwitch1"]) == "vSwitch1"
    assert most_common([]) is None


def test_from_network_by_id(adapter, new_name):
    parent = adapter.get_network(VM_NETWORK)

    record = adapter.create_network({"name": new_name,
                                     "from_network": parent["id"],
                                     "vlan": 11})

    assert record["name_label"] == new_name


@pytest.mark.parametrize("vlan", [-1, 4095, "10", 1.5, True, None])
def test_invalid_vlan_rejected(adapter, new_name, vlan):
    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.create_network({"name": new_name,
                                "from_network": VM_NETWORK, "vlan": vlan})

    assert "vlan" in raised.value.message
    assert new_name not in [record["name_label"]
                            for record in adapter.list_networks()]


@pytest.mark.parametrize("name", ["", "a/b", "x" * 81, UNKNOWN_ID])
def test_invalid_name_rejected(adapter, name):
    with pytest.raises(errors.InvalidArguments):
        adapter.create_network({"name": name, "from_network": VM_NETWORK,
                                "vlan": 10})


def test_taken_name_is_conflict(adapter, vcsim_simulator):
    calls_before = adapter.calls
    with pytest.raises(errors.Conflict) as raised:
        adapter.create_network({"name": VM_NETWORK,
                                "from_network": VM_NETWORK, "vlan": 10})

    assert VM_NETWORK in raised.value.message
    # The name check needs one network read (a container view and one
    # RetrievePropertiesEx) and comes before any change.
    assert adapter.calls - calls_before == 2
    with vcsim_simulator.session() as service:
        specs = host_portgroups(service, VM_NETWORK)
    assert all(spec.vlanId == 0 for spec in specs.values())


@VCENTER_ONLY
def test_taken_distributed_name_is_conflict(adapter):
    with pytest.raises(errors.Conflict):
        adapter.create_network({"name": DV_PORTGROUP,
                                "from_network": VM_NETWORK, "vlan": 10})


@pytest.mark.parametrize("from_network", ["no-such-network", UNKNOWN_ID])
def test_unknown_from_network_is_404(adapter, new_name, from_network):
    with pytest.raises(errors.EntityNotFound) as raised:
        adapter.create_network({"name": new_name,
                                "from_network": from_network, "vlan": 10})

    assert from_network in raised.value.message


def test_isolated_network_is_501(adapter, new_name):
    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.create_network({"name": new_name, "vlan": 10})

    assert "from_network" in raised.value.message
    assert new_name not in [record["name_label"]
                            for record in adapter.list_networks()]


def test_other_config_is_501(adapter, new_name):
    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.create_network({"name": new_name,
                                "from_network": VM_NETWORK, "vlan": 10,
                                "other_config": {"mtu": "9000"}})

    assert "other_config" in raised.value.message


def test_failed_host_rolls_back(adapter, new_name, vcsim_simulator,
                                monkeypatch):
    # The second target names a vSwitch that does not exist, so its
    # AddPortGroup fails with NotFound after the first one succeeded.
    real_targets = adapter._host_portgroups(VM_NETWORK)
    host_name, network_system, spec = real_targets[0]
    broken = vim.host.PortGroup.Specification(
        name=spec.name, vlanId=0, vswitchName="vSwitchMissing",
        policy=vim.host.NetworkPolicy())
    monkeypatch.setattr(adapter, "_host_portgroups", lambda name, host_ids: [
        (host_name, network_system, spec),
        (host_name, network_system, broken)])

    with pytest.raises(errors.EntityNotFound) as raised:
        adapter.create_network({"name": new_name,
                                "from_network": VM_NETWORK, "vlan": 12})

    assert "AddPortGroup" in raised.value.message
    with vcsim_simulator.session() as service:
        assert host_portgroups(service, new_name) == {}
    assert new_name not in [record["name_label"]
                            for record in adapter.list_networks()]


def test_api_creates_vlan_network(vmware_api, vmware_host, new_name):
    response = vmware_api.post_json(vmware_host + "/networks", {
        "name": new_name, "from_network": VM_NETWORK, "vlan": 20},
        status=201)

    network_id = response.json["id"]
    assert response.headers["Location"] == "%s/networks/%s" % (
        vmware_host, network_id)
    fetched = vmware_api.get(response.headers["Location"]).json
    assert fetched["name_label"] == new_name


def test_api_rejects_taken_name(vmware_api, vmware_host):
    response = vmware_api.post_json(vmware_host + "/networks", {
        "name": VM_NETWORK, "from_network": VM_NETWORK, "vlan": 20},
        status=409)

    assert response.json["error"] == "Conflict"
