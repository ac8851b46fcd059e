"""Pool, host, storage and network records: fields, types and units."""

import uuid

import pytest

from simplestack import errors

POOL_FIELDS = {"used_memory", "total_memory", "uuid", "master",
               "software_info"}
HOST_FIELDS = {"id", "name", "address"}
STORAGE_FIELDS = {"id", "name", "type", "used_space", "allocated_space",
                  "size"}
NETWORK_FIELDS = {"id", "name_label", "name_description", "bridge", "vlan",
                  "other_config"}


def test_pool_record(adapter, backend_connection):
    pool = adapter.get_pool()

    assert set(pool) == POOL_FIELDS
    total_mib = backend_connection.getInfo()[1]
    assert pool["total_memory"] == total_mib
    assert 0 <= pool["used_memory"] <= pool["total_memory"]
    assert pool["software_info"]["version"] == "9.0.0"
    assert pool["master"] == adapter.host.partition(":")[0]


def test_hosts_list_and_get(adapter, backend_connection):
    hosts = adapter.list_hosts()

    assert len(hosts) == 1
    assert set(hosts[0]) == HOST_FIELDS
    assert hosts[0]["name"] == backend_connection.getHostname()
    assert adapter.get_host(hosts[0]["id"]) == hosts[0]
    assert adapter.get_host(hosts[0]["id"].upper()) == hosts[0]


def test_unknown_host(adapter):
    with pytest.raises(errors.EntityNotFound):
        adapter.get_host(str(uuid.uuid4()))


def test_storage_record_units(adapter, storage_pool):
    storage = adapter.get_storage(storage_pool.UUIDString())
    _state, capacity, allocation, _available = storage_pool.info()

    assert set(storage) == STORAGE_FIELDS
    assert storage["id"] == storage_pool.UUIDString().lower()
    assert storage["name"] == storage_pool.name()
    assert storage["type"] == "dir"
    assert storage["size"] == capacity // 1024 ** 3
    assert storage["used_space"] == allocation // 1024 ** 3
    assert isinstance(storage["allocated_space"], int)


def test_storage_by_name_and_upper_id(adapter, storage_pool):
    by_id = adapter.get_storage(storage_pool.UUIDString())

    assert adapter.get_storage(storage_pool.name()) == by_id
    assert adapter.get_storage(storage_pool.UUIDString().upper()) == by_id


def test_storage_list_has_pool(adapter, storage_pool):
    storages = adapter.list_storages()

    assert storage_pool.UUIDString().lower() in [
        storage["id"] for storage in storages]
    for storage in storages:
        assert set(storage) == STORAGE_FIELDS


def test_allocated_space_sums_volumes(adapter, make_guest, storage_pool):
    before = adapter.get_storage(storage_pool.name())["allocated_space"]

    if adapter.driver == "lxc":
        with pytest.raises(errors.FeatureNotImplemented) as raised:
            make_guest(hdd=2)
        assert "not disk volumes" in raised.value.message
        return
    make_guest(hdd=2)

    after = adapter.get_storage(storage_pool.name())["allocated_space"]
    assert after == before + 2


def test_unknown_storage(adapter):
    with pytest.raises(errors.EntityNotFound):
        adapter.get_storage(str(uuid.uuid4()))
    with pytest.raises(errors.EntityNotFound):
        adapter.get_storage("sstest-no-such-pool")


def test_network_record(adapter, isolated_network):
    network = adapter.get_network(isolated_network.UUIDString())

    assert set(network) == NETWORK_FIELDS
    assert network["id"] == isolated_network.UUIDString().lower()
    assert network["name_label"] == isolated_network.name()
    assert network["bridge"] == isolated_network.bridgeName()
    assert network["vlan"] is None
    assert network["other_config"]["forward_mode"] == "isolated"
    assert network["other_config"]["active"] is True


def test_network_list_has_network(adapter, isolated_network):
    ids = [network["id"] for network in adapter.list_networks()]

    assert isolated_network.UUIDString().lower() in ids


def test_unknown_network(adapter):
    with pytest.raises(errors.EntityNotFound):
        adapter.get_network(str(uuid.uuid4()))
