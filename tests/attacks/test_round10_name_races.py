"""Concurrent requests for one name or MAC through two service processes.

Xen and the vSphere simulator allow several VMs with one name, so the
adapters check that a name is free and then create the guest, and a name
in use gets 409. Xen held a lock of the name in its own process only, and
vSphere none at all. So requests through production.ini's two gunicorn
workers all passed the check, and on vSphere also those within one
process: out of 4 concurrent creates of one name, 2 to 4 got 201. Network
names on Xen and explicit MACs of NICs (unique per guest on Xen, across
guests on vSphere) had the same check without any lock. Here two pserve
processes stand for the two workers.
"""

import contextlib

import pytest

from tests.attacks import round4, stack
from tests.attacks.test_round4_concurrency import run_together

#: Names tried per backend; each got 201 twice or more in most rounds.
ROUNDS = 6
#: Concurrent creates of each name, half through each process.
REQUESTS = 4


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Yield {backend: (base path, [client of each process])}."""
    with contextlib.ExitStack() as cleanup:
        xapi = stack.start_xapi()
        cleanup.callback(xapi.stop)
        folder = tmp_path_factory.mktemp("name-races")
        vcsim = stack.start_vcsim(temporary_dir=str(folder))
        cleanup.callback(vcsim.stop)
        clients = {}
        for number in range(2):
            server_folder = folder / ("server%d" % number)
            server_folder.mkdir()
            server = stack.start_server(str(server_folder))
            cleanup.callback(server.stop)
            for backend in ("xen", "vmware"):
                client = stack.Client(server.url, stack.canary_token(
                    round4.USERS[backend]))
                cleanup.callback(client.close)
                clients.setdefault(backend, []).append(client)
        yield {"xen": ("/xen/" + xapi.netloc, clients["xen"]),
               "vmware": ("/vmware/" + vcsim.netloc, clients["vmware"])}


def post_together(clients, path, bodies):
    """POST each of ``bodies`` to ``path`` at once, through the two
    processes' clients in turn; return the responses."""
    return run_together([
        (lambda client=clients[index % 2], body=body: client.post(path, body))
        for index, body in enumerate(bodies)])


@pytest.mark.parametrize("backend", ["xen", "vmware"])
def test_one_create_per_name(two_processes, backend):
    base, clients = two_processes[backend]
    outcomes = []
    for round_number in range(ROUNDS):
        name = "sstest-r10-race-%d" % round_number
        responses = post_together(clients, base + "/guests", [
            {"name": name, "memory": 64}] * REQUESTS)
        statuses = sorted(response.status_code for response in responses)
        for response in responses:
            if response.status_code == 201:
                clients[0].delete(base + "/guests/" + response.json()["id"])
        outcomes.append(statuses)

    assert outcomes == [[201] + [409] * (REQUESTS - 1)] * ROUNDS


#: The JSON of a new network on each backend: isolated on Xen, a VLAN next
#: to the simulator's "VM Network" port group on vSphere, which creates
#: no isolated networks.
NETWORK_SPECS = {
    "xen": lambda name, number: {"name": name},
    "vmware": lambda name, number: {"name": name,
                                    "from_network": "VM Network",
                                    "vlan": 1000 + number},
}


@pytest.mark.parametrize("backend", ["xen", "vmware"])
def test_one_network_per_name(two_processes, backend):
    # Networks are named in NIC requests, so the adapters keep their names
    # unique with the same check as guest names, and had no lock at all.
    base, clients = two_processes[backend]
    outcomes = []
    for round_number in range(ROUNDS):
        name = "sstest-r10-net-race-%d" % round_number
        responses = post_together(clients, base + "/networks", [
            NETWORK_SPECS[backend](name, round_number * REQUESTS + number)
            for number in range(REQUESTS)])
        outcomes.append(sorted(response.status_code
                               for response in responses))

    assert outcomes == [[201] + [409] * (REQUESTS - 1)] * ROUNDS


def test_one_vmware_nic_per_mac(two_processes):
    # vSphere NIC adds check that an explicit MAC is free, then add the NIC.
    base, clients = two_processes["vmware"]
    guests = [record["id"] for record in clients[0].get(
        base + "/guests?fields=id&limit=2").json()]
    outcomes = []
    for round_number in range(ROUNDS):
        spec = {"network": "VM Network",
                "mac": "00:50:56:3f:10:%02x" % round_number}
        responses = run_together([
            (lambda client=clients[index], guest=guests[index]: client.post(
                "%s/guests/%s/network_interfaces" % (base, guest), spec))
            for index in range(2)])
        outcomes.append(sorted(response.status_code
                               for response in responses))

    assert outcomes == [[201, 409]] * ROUNDS


def test_one_xen_nic_per_guest_mac(two_processes):
    # XAPI allows one MAC on several VIFs, and a Xen NIC add checks only
    # that the guest has no NIC with an explicit MAC yet.
    base, clients = two_processes["xen"]
    guest = clients[0].post(base + "/guests", {"name": "sstest-r10-macs"})
    assert guest.status_code == 201, guest.text
    path = "%s/guests/%s" % (base, guest.json()["id"])
    network = clients[0].get(base + "/networks").json()[0]["id"]
    outcomes = []
    try:
        for round_number in range(ROUNDS):
            spec = {"network": network,
                    "mac": "02:00:00:3f:10:%02x" % round_number}
            responses = run_together([
                (lambda client=clients[index % 2]: client.post(
                    path + "/network_interfaces", spec))
                for index in range(REQUESTS)])
            outcomes.append(sorted(response.status_code
                                   for response in responses))
        macs = [nic["mac"] for nic in
                clients[0].get(path + "/network_interfaces").json()]
    finally:
        clients[0].delete(path)

    assert outcomes == [[201] + [409] * (REQUESTS - 1)] * ROUNDS
    assert len(macs) == len(set(macs)) == ROUNDS
