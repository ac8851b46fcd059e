"""One explicit MAC added to two QEMU guests through two service processes.

MACs must be unique across guests, so a NIC add checks that its MAC is
free and then attaches the NIC, and a MAC in use gets 409. The lock that
kept two adds from passing the check together lived in one process, and
production.ini runs 2 gunicorn workers: adds through both got 201, and two
guests had one MAC. Here two pserve processes stand for the two workers.
"""

import random

from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    HttpClient, guest_cleanup, http_client, qemu_connection, qemu_network,
    requires_qemu)
from tests.attacks.test_round4_concurrency import run_together
from tests.attacks.test_round9_export_processes import (  # noqa: F401
    other_client, other_server)

pytestmark = requires_qemu

#: MACs tried; before the fix, most got 201 twice.
ROUNDS = 5


def test_one_nic_per_mac(http_client, other_client, qemu_network,
                         guest_cleanup):  # noqa: F811
    first = http_client.create_guest(guest_cleanup)
    second = http_client.create_guest(guest_cleanup)
    outcomes = []
    for _round in range(ROUNDS):
        mac = "52:54:00:%02x:%02x:%02x" % tuple(
            random.randrange(256) for _ in range(3))
        spec = {"network": qemu_network.name(), "mac": mac}
        results = run_together([
            lambda: http_client.request(
                "POST", "/guests/%s/network_interfaces" % first["id"], spec),
            lambda: other_client.request(
                "POST", "/guests/%s/network_interfaces" % second["id"],
                spec),
        ])
        outcomes.append(sorted(status for status, _body, _ in results))

    assert outcomes == [[201, 409]] * ROUNDS
