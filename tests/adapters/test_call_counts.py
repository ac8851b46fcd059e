"""Calls into libvirt of the guest list on seeded test driver files, and
the cache of domain XML that keeps them constant.

The list reads each domain's XML once and keeps it (see
simplestack.adapters.libvirt.description_cache), so from the second list on
its cost does not depend on the number of guests.
"""

import gc

import libvirt

from simplestack.adapters.libvirt import LibvirtAdapter, description_cache
from tests.libvirt_fixtures import TEST_CREDENTIALS


TEST_NAMESPACE = "http://libvirt.org/schemas/domain/test/1.0"


def _seed_file(path, count):
    """Write a test driver file of ``count`` guests: even ones running,
    odd ones shut off (run state 5)."""
    domains = "".join(
        "<domain type='test' xmlns:test='%s'><name>sstest-count-%04d</name>"
        "<test:runstate>%d</test:runstate>"
        "<memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
        "<devices><disk type='file' device='disk'>"
        "<source file='/sstest/disk-%04d.img'/><target dev='vda'/></disk>"
        "<disk type='file' device='cdrom'><target dev='sda'/></disk>"
        "<interface type='network'><mac address='52:54:00:01:%02x:%02x'/>"
        "<source network='default'/></interface></devices></domain>"
        % (TEST_NAMESPACE, index, 1 + 4 * (index % 2), index,
           index // 256, index % 256) for index in range(count))
    network = ("<network><name>default</name><bridge name='sstestbr0'/>"
               "</network>")
    path.write_text("<node>%s%s</node>" % (network, domains))


def _adapter(tmp_path, count):
    seed = tmp_path / ("sstest-count-%d.xml" % count)
    _seed_file(seed, count)
    config = LibvirtAdapter.parse_settings(
        "test", {"driver": "test", "hosts": "seeded=%s" % seed})
    adapter = LibvirtAdapter("test", "seeded", TEST_CREDENTIALS, config)
    adapter.open()
    return adapter


def _stopped_guest(adapter):
    return next(record["id"] for record in adapter.list_guests()
                if record["state"] == "STOPPED")


def _list_calls(adapter):
    before = adapter.calls
    guests = adapter.list_guests()
    return adapter.calls - before, guests


def test_list_calls_same_at_10_and_100(tmp_path):
    counts = {}
    for count in (10, 100):
        adapter = _adapter(tmp_path, count)
        try:
            _list_calls(adapter)
            counts[count], guests = _list_calls(adapter)
        finally:
            adapter.close()
        assert len(guests) == count

    assert counts[10] == counts[100]
    assert counts[100] <= 3


def test_first_list_reads_each_xml_once(tmp_path):
    adapter = _adapter(tmp_path, 100)
    try:
        calls, guests = _list_calls(adapter)
    finally:
        adapter.close()

    assert len(guests) == 100
    # getAllDomainStats and getHostname, then per guest one XMLDesc, one
    # storageVolLookupByPath that finds no volume at the disk's path and
    # one blockInfo.
    assert calls == 2 + 3 * 100


def test_cached_list_equals_get(tmp_path):
    adapter = _adapter(tmp_path, 10)
    try:
        adapter.list_guests()
        listed = adapter.list_guests()
        fresh = [adapter.get_guest(record["id"]) for record in listed]
    finally:
        adapter.close()

    assert listed == fresh


def test_list_shows_update_at_once(tmp_path):
    adapter = _adapter(tmp_path, 10)
    try:
        guest_id = _stopped_guest(adapter)
        adapter.update_guest(guest_id, {"cpus": 2, "memory": 128})
        listed = {record["id"]: record for record in adapter.list_guests()}
    finally:
        adapter.close()

    assert listed[guest_id]["cpus"] == 2
    assert listed[guest_id]["memory"] == 128


def test_list_shows_start_and_delete(tmp_path):
    adapter = _adapter(tmp_path, 10)
    try:
        first = _stopped_guest(adapter)
        second = next(record["id"] for record in adapter.list_guests()
                      if record["id"] != first)
        adapter.set_power(first, "start")
        adapter.delete_guest(second)
        listed = {record["id"]: record for record in adapter.list_guests()}
    finally:
        adapter.close()

    assert listed[first]["state"] == "STARTED"
    assert listed[first]["host"] is not None
    assert second not in listed


def test_outside_change_shows_after_max_age(tmp_path, monkeypatch):
    adapter = _adapter(tmp_path, 10)
    try:
        guest_id = _stopped_guest(adapter)
        # A change through the binding itself, past the adapter's
        # invalidation, as virsh on the same host would make it.
        domain = adapter.conn.lookupByUUIDString(guest_id)
        domain.setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_CONFIG
                             | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
        domain.setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        cached = {record["id"]: record for record in adapter.list_guests()}
        monkeypatch.setattr(description_cache.descriptions, "max_age", 0.0)
        expired = {record["id"]: record for record in adapter.list_guests()}
    finally:
        adapter.close()

    assert cached[guest_id]["cpus"] == 1
    assert expired[guest_id]["cpus"] == 2


def test_outside_rename_shows_at_once(tmp_path):
    adapter = _adapter(tmp_path, 10)
    try:
        guest_id = _stopped_guest(adapter)
        adapter.list_guests()
        # A rename past the adapter's invalidation, as virsh would make it.
        adapter.conn.lookupByUUIDString(guest_id).rename("sstest-renamed")
        listed = {record["id"]: record for record in adapter.list_guests()}
    finally:
        adapter.close()

    assert listed[guest_id]["name"] == "sstest-renamed"


def _running_guest(adapter):
    return next(record["id"] for record in adapter.list_guests()
                if record["state"] == "STARTED")


def test_outside_restart_shows_at_once(tmp_path):
    adapter = _adapter(tmp_path, 10)
    try:
        guest_id = _running_guest(adapter)
        adapter.list_guests()
        # A restart with a new definition, past the adapter's invalidation,
        # as virsh would make it.
        domain = adapter.conn.lookupByUUIDString(guest_id)
        domain.destroy()
        domain.setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_CONFIG
                             | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
        domain.setVcpusFlags(2, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        domain.create()
        listed = {record["id"]: record for record in adapter.list_guests()}
    finally:
        adapter.close()

    assert listed[guest_id]["state"] == "STARTED"
    assert listed[guest_id]["cpus"] == 2


def test_outside_stop_and_rename_show_at_once(tmp_path):
    adapter = _adapter(tmp_path, 10)
    try:
        guest_id = _running_guest(adapter)
        adapter.list_guests()
        domain = adapter.conn.lookupByUUIDString(guest_id)
        domain.destroy()
        domain.rename("sstest-stopped-renamed")
        listed = {record["id"]: record for record in adapter.list_guests()}
    finally:
        adapter.close()

    assert listed[guest_id]["state"] == "STOPPED"
    assert listed[guest_id]["name"] == "sstest-stopped-renamed"


def test_list_drops_guest_deleted_outside(tmp_path):
    adapter = _adapter(tmp_path, 10)
    try:
        guest_id = _stopped_guest(adapter)
        # A deletion past the adapter's invalidation, as virsh would make it.
        domain = adapter.conn.lookupByUUIDString(guest_id)
        uuid = domain.UUID()
        domain.undefine()
        listed = [record["id"] for record in adapter.list_guests()]
        entries = description_cache.descriptions.entries(
            adapter._description_cache_uri())
    finally:
        adapter.close()

    assert guest_id not in listed
    assert len(listed) == 9
    assert uuid not in entries
    assert len(entries) == 9


def test_listed_record_change_stays_out_of_cache(tmp_path):
    adapter = _adapter(tmp_path, 10)
    try:
        first = adapter.list_guests()
        for record in first:
            record["name"] = "changed"
            record["ip"] = "192.0.2.1"
        second = adapter.list_guests()
    finally:
        adapter.close()

    assert {record["name"] for record in second} == {
        "sstest-count-%04d" % index for index in range(10)}
    assert [record["ip"] for record in second] == [None] * 10


def test_list_frees_domain_handles(tmp_path):
    adapter = _adapter(tmp_path, 10)
    # A connection of its own to the seed file, in place of the shared one.
    # libvirt counts the references to a connection, and each domain handle
    # that the list does not free holds one.
    connection = libvirt.open(adapter._description_cache_uri())
    adapter._conn = connection
    try:
        # The first list reads each domain's XML through a virDomain made
        # from its handle, the second frees each handle itself.
        first = adapter.list_guests()
        second = adapter.list_guests()
    finally:
        adapter.close()
    gc.collect()
    references = connection.close()

    assert len(first) == 10
    assert second == first
    assert references == 0


def _empty_entry(cache):
    return description_cache.CachedDescription(
        fingerprint=(1,), stored_at=cache.clock(), fields=(), disk_targets=(),
        macs=(), networks=(), disk_sizes={}, record={})


FIRST_UUID = bytes.fromhex("6695eb01f6a4830479aa97f2502e193f")
SECOND_UUID = bytes.fromhex("0f8fad5bd9cb469fa16570867728950e")


def test_cache_skips_entry_read_before_change():
    cache = description_cache.DescriptionCache()
    generation = cache.generation("test:///seed")
    entry = _empty_entry(cache)
    # Another request changes a guest of the URI while this list reads XML.
    cache.invalidate("test:///seed", SECOND_UUID)
    cache.put("test:///seed", FIRST_UUID, entry, generation)

    listed = cache.entries("test:///seed")

    assert listed == {}


def test_cache_discards_named_guests_only():
    cache = description_cache.DescriptionCache()
    entry = _empty_entry(cache)
    for uuid in (FIRST_UUID, SECOND_UUID):
        generation = cache.generation("test:///seed")
        cache.put("test:///seed", uuid, entry, generation)

    both = cache.entries("test:///seed")
    cache.discard("test:///seed", [SECOND_UUID])
    kept = cache.entries("test:///seed")

    assert set(both) == {FIRST_UUID, SECOND_UUID}
    assert set(kept) == {FIRST_UUID}


def test_cache_entries_are_a_copy():
    cache = description_cache.DescriptionCache()
    generation = cache.generation("test:///seed")
    cache.put("test:///seed", FIRST_UUID, _empty_entry(cache), generation)

    copy = cache.entries("test:///seed")
    copy.clear()

    assert set(cache.entries("test:///seed")) == {FIRST_UUID}


def test_hostname_expires_after_max_age():
    now = [100.0]
    cache = description_cache.DescriptionCache(max_age=10.0,
                                               clock=lambda: now[0])
    cache.store_hostname("test:///seed", "node1")
    now[0] += 10.0
    fresh = cache.hostname("test:///seed")
    now[0] += 0.5
    expired = cache.hostname("test:///seed")

    assert fresh == "node1"
    assert expired is None
