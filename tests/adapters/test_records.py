"""Pool, host, storage and network records: fields, types and units."""

import uuid

import pytest

from simplestack import errors
from tests.vmware_fixtures import VMWARE_BACKENDS

POOL_FIELDS = {"used_memory", "total_memory", "uuid", "master",
               "software_info"}
HOST_FIELDS = {"id", "name", "address"}
STORAGE_FIELDS = {"id", "name", "type", "used_space", "allocated_space",
                  "size"}
NETWORK_FIELDS = {"id", "name_label", "name_description", "bridge", "vlan",
                  "other_config"}


def test_pool_record(adapter, kit):
    pool = adapter.get_pool()
    facts = kit.pool_facts(adapter)

    assert set(pool) == POOL_FIELDS
    assert pool["total_memory"] == facts["total_memory"]
    assert 0 <= pool["used_memory"] <= pool["total_memory"]
    assert pool["software_info"]["version"] == facts["version"]
    assert pool["master"] == facts["master"]


def test_hosts_list_and_get(adapter, kit):
    hosts = adapter.list_hosts()

    assert sorted(host["name"] for host in hosts) == kit.host_names()
    for host in hosts:
        assert set(host) == HOST_FIELDS
        assert adapter.get_host(host["id"]) == host
        assert adapter.get_host(host["id"].upper()) == host


def test_unknown_host(adapter):
    with pytest.raises(errors.EntityNotFound):
        adapter.get_host(str(uuid.uuid4()))


def test_storage_record_units(adapter, kit, storage):
    record = adapter.get_storage(storage.id)
    facts = kit.storage_facts(storage)

    assert set(record) == STORAGE_FIELDS
    assert record["id"] == storage.id
    assert record["name"] == storage.name
    assert record["type"] == facts["type"]
    assert record["size"] == facts["size"]
    assert record["used_space"] == facts["used_space"]
    assert isinstance(record["allocated_space"], int)


def test_storage_by_name_and_upper_id(adapter, storage):
    by_id = adapter.get_storage(storage.id)

    assert adapter.get_storage(storage.name) == by_id
    assert adapter.get_storage(storage.id.upper()) == by_id


def test_storage_list_has_pool(adapter, storage):
    storages = adapter.list_storages()

    assert storage.id in [record["id"] for record in storages]
    for record in storages:
        assert set(record) == STORAGE_FIELDS


def test_allocated_space_sums_volumes(adapter, backend, make_guest, storage):
    before = adapter.get_storage(storage.id)["allocated_space"]

    if backend == "lxc":
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            make_guest(hdd=2)
        assert "not disk volumes" in raised.value.message
        return
    make_guest(hdd=2)

    after = adapter.get_storage(storage.id)["allocated_space"]
    assert after == before + 2


def test_unknown_storage(adapter):
    with pytest.raises(errors.EntityNotFound):
        adapter.get_storage(str(uuid.uuid4()))
    with pytest.raises(errors.EntityNotFound):
        adapter.get_storage("sstest-no-such-pool")


def test_network_record(adapter, backend, network):
    record = adapter.get_network(network.id)

    assert set(record) == NETWORK_FIELDS
    assert record["id"] == network.id
    assert record["name_label"] == network.name
    assert record["bridge"] == network.bridge
    assert record["vlan"] is None
    if backend == "xen":
        assert record["other_config"] == {}
    elif backend in VMWARE_BACKENDS:
        # A standard port group of the simulator.
        assert record["other_config"] == {"type": "standard"}
    else:
        assert record["other_config"]["forward_mode"] == "isolated"
        assert record["other_config"]["active"] is True


def test_network_list_has_network(adapter, network):
    ids = [record["id"] for record in adapter.list_networks()]

    assert network.id in ids


def test_unknown_network(adapter):
    with pytest.raises(errors.EntityNotFound):
        adapter.get_network(str(uuid.uuid4()))
