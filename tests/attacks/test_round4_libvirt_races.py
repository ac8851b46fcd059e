"""A start and a delete of one guest at once, on real QEMU and LXC.

The delete held the guest's lock but the start did not, so the delete
destroyed the QEMU process while libvirt was still starting it, and the
start returned 502 "process exited while connecting to monitor". Power
actions and reboots now hold the guest's lock too: the start finishes
first (200) or finds the guest gone (404).
"""

import pytest

from tests import backends
from tests.attacks.round2_http import HttpClient
from tests.attacks.test_round4_concurrency import run_together

ROUNDS = 3


@pytest.mark.parametrize("backend", ["qemu", "lxc"])
def test_start_during_delete(server, backend):
    if backend not in backends.required_backends():
        pytest.skip("SIMPLESTACK_TEST_BACKENDS does not list %s" % backend)
    client = HttpClient(server, prefix="/%s/localhost" % backend)

    for _ in range(ROUNDS):
        guest = client.ok("POST", "/guests", {
            "name": backends.unique_name("n4-race"), "memory": 64},
            status=201)
        path = "/guests/" + guest["id"]
        try:
            started, deleted = run_together([
                lambda: client.request("PUT", path + "/power",
                                       {"state": "start"}),
                lambda: client.request("DELETE", path)])
        finally:
            client.request("DELETE", path)

        assert started[0] in (200, 404), started[1]
        assert deleted[0] == 204, deleted[1]
        assert client.request("GET", path)[0] == 404
