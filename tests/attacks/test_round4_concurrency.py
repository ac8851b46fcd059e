"""Concurrent changes of one guest, on the test driver, Xen and vSphere.

The VMware adapter found a new NIC by comparing the guest's devices before
and after its ReconfigVM_Task, and a new disk by the free SCSI slot it had
picked. Two adds at once each saw both new NICs, or picked the same slot,
and could return the same device, so one caller got the other caller's
device and never learned its own.
"""

import threading

import pytest

from tests.attacks import round4
from tests.attacks.round4 import backends  # noqa: F401 (fixture)

THREADS = 4

#: The network of new NICs on each backend.
NETWORKS = {"xen": None, "vmware": "VM Network"}


def run_together(function, count=THREADS):
    """Call ``function`` from ``count`` threads at once, or each function of
    a list from a thread of its own; return the results in that order."""
    functions = function if isinstance(function, list) else [function] * count
    count = len(functions)
    barrier = threading.Barrier(count)
    results = [None] * count

    def call(index):
        barrier.wait()
        results[index] = functions[index]()

    threads = [threading.Thread(target=call, args=(index,))
               for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(round4.stack.CLIENT_TIMEOUT)
    return results


@pytest.fixture
def new_guest(backends, request):  # noqa: F811
    """A stopped guest on the backend of the test's ``backend`` parameter."""
    backend = request.getfixturevalue("backend")
    client, base = backends.client(backend), backends.base(backend)
    created = client.post(base + "/guests", {"name": "sstest-n4-concurrent"})
    assert created.status_code == 201, created.text
    path = "%s/guests/%s" % (base, created.json()["id"])
    yield client, path
    client.delete(path)


def network_name(client, base, backend):
    if NETWORKS[backend] is not None:
        return NETWORKS[backend]
    return client.get(base + "/networks").json()[0]["name_label"]


@pytest.mark.parametrize("backend", ["xen", "vmware"])
def test_concurrent_nic_adds_return_own_nic(backends, new_guest, backend):  # noqa: F811
    client, path = new_guest
    network = network_name(client, backends.base(backend), backend)

    responses = run_together(lambda: client.post(
        path + "/network_interfaces", {"network": network}))

    statuses = [response.status_code for response in responses]
    returned = [response.json()["id"] for response in responses]
    listed = [nic["id"] for nic in
              client.get(path + "/network_interfaces").json()]
    assert statuses == [201] * THREADS
    assert len(set(returned)) == THREADS
    assert sorted(returned) == sorted(listed)


@pytest.mark.parametrize("backend", ["xen", "vmware"])
def test_concurrent_disk_adds_return_own_disk(backends, new_guest, backend):  # noqa: F811
    client, path = new_guest
    before = [disk["id"] for disk in client.get(path + "/disks").json()]

    responses = run_together(lambda: client.post(path + "/disks",
                                                 {"size": 1}))

    statuses = [response.status_code for response in responses]
    returned = [response.json()["id"] for response in responses]
    listed = [disk["id"] for disk in client.get(path + "/disks").json()]
    assert statuses == [201] * THREADS
    assert len(set(returned)) == THREADS
    assert sorted(returned + before) == sorted(listed)


@pytest.mark.parametrize("backend", round4.BACKENDS)
def test_concurrent_starts_one_succeeds(backends, new_guest, backend):  # noqa: F811
    client, path = new_guest

    responses = run_together(lambda: client.put(path + "/power",
                                                {"state": "start"}))

    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 200
    assert set(statuses) <= {200, 409}
    assert client.get(path).json()["state"] == "STARTED"


@pytest.mark.parametrize("backend", round4.BACKENDS)
def test_concurrent_deletes_leave_no_guest(backends, new_guest, backend):  # noqa: F811
    client, path = new_guest

    responses = run_together(lambda: client.delete(path))

    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 204
    assert set(statuses) <= {204, 404}
    assert client.get(path).status_code == 404
