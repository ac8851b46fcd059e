"""The change logs that tell each service process's guest list cache about
domains changed through the other processes.

Two ChangeLog objects on one folder stand for two processes.
"""

import os

import pytest

from simplestack.adapters import shared_folder
from simplestack.adapters.libvirt import description_cache, shared_changes

URI = "lxc:///"
FIRST = bytes(range(16))
SECOND = bytes(range(16, 32))


@pytest.fixture
def logs(tmp_path, monkeypatch):
    """Return two ChangeLogs whose files live in ``tmp_path``."""
    monkeypatch.setattr(shared_folder, "private_folder", lambda: str(tmp_path))
    return shared_changes.ChangeLog(), shared_changes.ChangeLog()


def log_path(folder):
    [name] = [name for name in os.listdir(folder)
              if name.endswith(shared_changes.LOG_SUFFIX)]
    return os.path.join(folder, name)


def test_reader_gets_each_record_once(logs):
    writer, reader = logs
    assert reader.changed_domains(URI) == set()

    writer.record(URI, FIRST)
    writer.record(URI, SECOND)
    writer.record(URI, FIRST)

    assert reader.changed_domains(URI) == {FIRST, SECOND}
    assert reader.changed_domains(URI) == set()


def test_pool_change_stands_for_all(logs):
    writer, reader = logs
    reader.changed_domains(URI)

    writer.record(URI, None)

    assert reader.changed_domains(URI) == {shared_changes.ALL_DOMAINS}


def test_uris_have_own_logs(logs):
    writer, reader = logs
    reader.changed_domains(URI)
    reader.changed_domains("qemu:///system")

    writer.record("qemu:///system", FIRST)

    assert reader.changed_domains(URI) == set()
    assert reader.changed_domains("qemu:///system") == {FIRST}


def test_half_written_record_waits(logs, tmp_path):
    writer, reader = logs
    writer.record(URI, FIRST)
    reader.changed_domains(URI)
    path = log_path(tmp_path)

    with open(path, "ab") as log:
        log.write(SECOND[:7])
    half = reader.changed_domains(URI)
    with open(path, "ab") as log:
        log.write(SECOND[7:])
    whole = reader.changed_domains(URI)

    assert half == set()
    assert whole == {SECOND}


def test_restarted_log_drops_all(logs, monkeypatch):
    writer, reader = logs
    monkeypatch.setattr(shared_changes, "MAX_LOG_BYTES",
                        2 * shared_changes.RECORD_BYTES)
    reader.changed_domains(URI)
    writer.record(URI, FIRST)
    writer.record(URI, FIRST)
    assert reader.changed_domains(URI) == {FIRST}

    # The log is full, so this record starts it again.
    writer.record(URI, SECOND)

    assert reader.changed_domains(URI) == {
        SECOND, shared_changes.ALL_DOMAINS}
    assert reader.changed_domains(URI) == set()


def test_unusable_folder_changes_nothing(monkeypatch):
    monkeypatch.setattr(shared_folder, "private_folder", lambda: None)
    log = shared_changes.ChangeLog()

    log.record(URI, FIRST)

    assert log.changed_domains(URI) == set()


def cached_uuids(cache, uri):
    return set(cache.entries(uri))


def test_cache_drops_entries_changed_elsewhere(logs):
    writer, reader = logs
    changer = description_cache.DescriptionCache(change_log=writer)
    lister = description_cache.DescriptionCache(change_log=reader)
    generation = lister.generation(URI)
    lister.put(URI, FIRST, "first entry", generation)
    lister.put(URI, SECOND, "second entry", generation)

    changer.invalidate(URI, FIRST)
    after_one = lister.generation(URI)
    kept = cached_uuids(lister, URI)
    changer.invalidate(URI)
    lister.generation(URI)

    assert after_one == generation + 1
    assert kept == {SECOND}
    assert cached_uuids(lister, URI) == set()


def test_test_driver_entries_stay(logs):
    writer, reader = logs
    uri = "test:///default"
    changer = description_cache.DescriptionCache(change_log=writer)
    lister = description_cache.DescriptionCache(change_log=reader)
    lister.put(uri, FIRST, "entry", lister.generation(uri))

    changer.invalidate(uri, FIRST)
    lister.generation(uri)

    assert cached_uuids(lister, uri) == {FIRST}
