"""Lists cost a fixed number of XAPI calls, whatever the number of guests."""

import pytest

from simplestack.adapters.base import Credentials
from simplestack.adapters.xen import XenAdapter
from simplestack.adapters.xen.constants import (
    GUEST_CLASSES, GUEST_VM_QUERY)
from simplestack.adapters.xen.records import (
    GUEST_LIST_FIELDS, guest_record, is_guest)
from tests.simulators.fixtures import XapiSimulator

GUEST_COUNTS = (10, 1000)


@pytest.fixture(scope="module")
def seeded_simulators():
    """Simulators seeded with each of GUEST_COUNTS guests."""
    started = {}
    try:
        for count in GUEST_COUNTS:
            started[count] = XapiSimulator("--vms", str(count)).start()
        yield started
    finally:
        for simulator in started.values():
            simulator.stop()


def list_with_counts(simulator, method):
    """Call ``method`` of an opened adapter and return (result, the XAPI
    calls the simulator counted, the calls the adapter counted).

    ``method`` is the name of an adapter method or a function that takes
    the adapter.
    """
    config = XenAdapter.parse_settings(
        "xen", {"ca_bundle": simulator.ca_bundle})
    adapter = XenAdapter("xen", simulator.netloc, Credentials(
        simulator.username, simulator.password), config)
    adapter.open()
    try:
        simulator.reset_stats()
        before = adapter.calls
        result = method(adapter) if callable(method) else \
            getattr(adapter, method)()
        counted = simulator.stats()["calls"]
        return result, counted, adapter.calls - before
    finally:
        adapter.close()


def test_list_guests_two_calls_at_any_size(seeded_simulators):
    for count, simulator in seeded_simulators.items():
        guests, calls, adapter_calls = list_with_counts(simulator,
                                                        "list_guests")

        assert len(guests) == count
        assert calls == {"VM.get_all_records_where": 1, "event.from": 1}
        assert adapter_calls == 2


def test_list_guests_records_complete(seeded_simulators):
    guests, _calls, _adapter_calls = list_with_counts(
        seeded_simulators[GUEST_COUNTS[0]], "list_guests")

    ids = [guest["id"] for guest in guests]
    assert ids == sorted(ids)
    started = [guest for guest in guests if guest["state"] == "STARTED"]
    assert started
    for guest in started:
        assert guest["host"] is not None
    for guest in guests:
        assert guest["hdd"] == 10
        assert guest["memory"] == 512


def test_list_guests_matches_whole_records(seeded_simulators):
    # list_guests converts only GUEST_LIST_FIELDS of each record, so the
    # records built from whole records must be the same.
    for simulator in seeded_simulators.values():
        guests, _calls, _adapter_calls = list_with_counts(simulator,
                                                          "list_guests")
        loaded, _calls, _adapter_calls = list_with_counts(
            simulator, lambda adapter: adapter._load_classes(GUEST_CLASSES))
        metrics = loaded["VM_guest_metrics"]
        whole = sorted((
            guest_record(vm, loaded["VBD"], loaded["VDI"],
                         metrics.get(vm["guest_metrics"]), loaded["host"])
            for vm in loaded["VM"].values() if is_guest(vm)),
            key=lambda record: record["id"])

        assert len(loaded["VM"][next(iter(loaded["VM"]))]) > \
            len(GUEST_LIST_FIELDS["VM"])
        assert guests == whole


def test_load_classes_keeps_named_fields(seeded_simulators):
    # A batch of 10 guests is under the fast parser's size limit.
    loaded, _calls, _adapter_calls = list_with_counts(
        seeded_simulators[10],
        lambda adapter: adapter._load_classes(GUEST_CLASSES, GUEST_LIST_FIELDS))

    for cls in GUEST_CLASSES:
        assert loaded[cls], cls
        for record in loaded[cls].values():
            assert set(record) <= set(GUEST_LIST_FIELDS[cls])
            assert "uuid" in record


def test_records_where_keeps_named_fields(seeded_simulators):
    # The VMs of 10 guests are under the fast parser's size limit.
    vms, _calls, _adapter_calls = list_with_counts(
        seeded_simulators[10],
        lambda adapter: adapter._records_where(
            "VM", GUEST_VM_QUERY, GUEST_LIST_FIELDS["VM"]))

    assert len(vms) == 10
    for record in vms.values():
        assert set(record) == set(GUEST_LIST_FIELDS["VM"])


@pytest.mark.parametrize("method, calls", [
    ("list_networks", {"event.from": 1}),
    ("list_hosts", {"host.get_all_records": 1}),
    ("list_storages", {"SR.get_all_records": 1}),
    ("get_pool", {"event.from": 1}),
])
def test_other_lists_one_call(seeded_simulators, method, calls):
    for simulator in seeded_simulators.values():
        _result, counted, adapter_calls = list_with_counts(simulator, method)

        assert counted == calls
        assert adapter_calls == 1
