"""Concurrent requests on one Xen guest or one guest name (XAPI simulator).

XAPI allows several VMs with one name_label, so the Xen adapter checks that
a name is free before it creates, clones or renames. The check and the
change were two calls, so concurrent creates of one name all passed the
check. A delete reads the power state, then shuts the guest down, so a
second delete of a running guest failed its shutdown with
VM_BAD_POWER_STATE and got 409, although the guest was gone by then.
"""

import pytest

from tests.attacks.round4 import backends  # noqa: F401 (fixture)
from tests.attacks.test_round4_concurrency import THREADS, run_together


@pytest.fixture
def xen(backends):  # noqa: F811
    client, base = backends.client("xen"), backends.base("xen")
    created = []
    yield client, base, created
    for guest_id in created:
        client.delete("%s/guests/%s" % (base, guest_id))


@pytest.mark.parametrize("operation", ["create", "clone"])
def test_concurrent_same_name_one_wins(backends, xen, operation):  # noqa: F811
    client, base, created = xen
    name = "sstest-n4-race-" + operation
    if operation == "create":
        path, body = base + "/guests", {"name": name}
    else:
        source = client.post(base + "/guests", {"name": name + "-source"})
        created.append(source.json()["id"])
        path = "%s/guests/%s/clone" % (base, source.json()["id"])
        body = {"name": name}

    responses = run_together(lambda: client.post(path, body))

    created.extend(response.json()["id"] for response in responses
                   if response.status_code == 201)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (THREADS - 1)
    assert backends.guest_names("xen").count(name) == 1


def test_concurrent_deletes_of_running_guest(xen):
    client, base, created = xen
    guest = client.post(base + "/guests", {"name": "sstest-n4-race-delete"})
    path = "%s/guests/%s" % (base, guest.json()["id"])
    created.append(guest.json()["id"])
    assert client.put(path + "/power", {"state": "start"}).status_code == 200

    responses = run_together(lambda: client.delete(path))

    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 204
    assert set(statuses) <= {204, 404}, [response.text
                                         for response in responses]
    assert client.get(path).status_code == 404
