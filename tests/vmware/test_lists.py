"""Lists cost a fixed number of calls, whatever the number of guests.

The simulators here are seeded with many VMs, so they run apart from the
session's simulators. The ESX model has one resource pool, so ``vms`` is
the number of VMs; the vCenter model has two pools and twice as many.
"""

import pytest

from tests.simulators.vcsim_fixtures import running_vcsim
from tests.vmware.conftest import make_adapter

GUEST_COUNTS = (10, 1000)


@pytest.fixture(scope="module")
def seeded_simulators(tmp_path_factory):
    """{count: a running ESX simulator with ``count`` VMs}."""
    simulators = {}
    stack = []
    try:
        for count in GUEST_COUNTS:
            context = running_vcsim(
                "esx", vms=count,
                temporary_dir=tmp_path_factory.mktemp("vcsim-%d" % count))
            simulators[count] = context.__enter__()
            stack.append(context)
        yield simulators
    finally:
        for context in reversed(stack):
            context.__exit__(None, None, None)


def _list_calls(simulator, method):
    adapter = make_adapter(simulator)
    adapter.open()
    try:
        before = adapter.calls
        listed = getattr(adapter, method)()
        return adapter.calls - before, listed
    finally:
        adapter.close()


def test_list_guests_calls_fixed(seeded_simulators):
    calls = {}
    for count, simulator in seeded_simulators.items():
        calls[count], guests = _list_calls(simulator, "list_guests")
        assert len(guests) == count

    # CreateContainerView and one RetrievePropertiesEx: the simulator
    # returns every object in one page.
    assert calls == {10: 2, 1000: 2}


def test_list_guests_records_complete(seeded_simulators):
    simulator = seeded_simulators[10]
    adapter = make_adapter(simulator)
    adapter.open()
    try:
        listed = adapter.list_guests()
        for record in listed:
            assert adapter.get_guest(record["id"]) == record
    finally:
        adapter.close()


@pytest.mark.parametrize("method", ["list_hosts", "list_storages",
                                    "list_networks"])
def test_other_lists_calls_fixed(seeded_simulators, method):
    calls_10, _listed = _list_calls(seeded_simulators[10], method)
    calls_1000, _listed = _list_calls(seeded_simulators[1000], method)

    assert calls_10 == calls_1000 == 2


def test_list_networks_calls_fixed_per_host(adapter):
    # The ESX model has one host and the vCenter model four, each with
    # standard port groups whose VLAN ids come from the hosts.
    before = adapter.calls
    listed = adapter.list_networks()

    assert adapter.calls - before == 2
    standard = [record for record in listed
                if record["other_config"]["type"] == "standard"]
    assert standard, "no standard port group listed"
    for record in standard:
        assert record["bridge"] == "vSwitch0", record["name_label"]
