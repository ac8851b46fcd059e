"""Concurrent creates of one guest name through two service processes.

Xen and the vSphere simulator allow several VMs with one name, so the
adapters check that a name is free and then create the guest, and a name
in use gets 409. Xen held a lock of the name in its own process only, and
vSphere none at all, so requests through production.ini's two gunicorn
workers, and on vSphere also within one process, all passed the check:
out of 4 concurrent creates of one name, 2 to 4 got 201. Here two pserve
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


@pytest.mark.parametrize("backend", ["xen", "vmware"])
def test_one_create_per_name(two_processes, backend):
    base, clients = two_processes[backend]
    outcomes = []
    for round_number in range(ROUNDS):
        name = "sstest-r10-race-%d" % round_number
        responses = run_together([
            (lambda client=clients[index % 2]: client.post(
                base + "/guests", {"name": name, "memory": 64}))
            for index in range(REQUESTS)])
        statuses = sorted(response.status_code for response in responses)
        for response in responses:
            if response.status_code == 201:
                clients[0].delete(base + "/guests/" + response.json()["id"])
        outcomes.append(statuses)

    assert outcomes == [[201] + [409] * (REQUESTS - 1)] * ROUNDS
