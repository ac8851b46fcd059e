"""Guest lists of one service process after a change through another.

Each process keeps the parsed domain XML of the listed guests and reads it
again when a domain's fingerprint changes: on LXC, its ID, name and state.
A change made through the process drops the guest's entry at once, but
production.ini runs 2 gunicorn workers, and the other worker kept its
entry. So after PUT {"memory": ...} of a stopped container through one
worker, a guest list through the other showed the old memory and vCPUs
for up to 10 s. Here two pserve processes stand for the two workers.
"""

import libvirt
import pytest

from tests import backends
from tests.attacks.round2_http import HttpClient
from tests.attacks.test_round9_export_processes import (  # noqa: F401
    other_server)
from tests.libvirt_fixtures import lxc_container, open_connection

pytestmark = pytest.mark.skipif(
    "lxc" not in backends.required_backends(),
    reason="SIMPLESTACK_TEST_BACKENDS does not list lxc")

LXC = "/lxc/localhost"


@pytest.fixture(scope="module")
def lxc_connection():
    connection = open_connection("lxc")
    yield connection
    try:
        connection.close()
    except libvirt.libvirtError:
        pass


def listed(client, guest_id):
    """Return the guest's record from one guest list through ``client``."""
    records = client.ok("GET", "/guests?fields=name,memory,cpus")
    [record] = [record for record in records if record["id"] == guest_id]
    return record


def test_list_shows_other_process_change(
        server, other_server, lxc_connection):  # noqa: F811
    lister = HttpClient(server, prefix=LXC)
    changer = HttpClient(other_server, prefix=LXC)
    with lxc_container(lxc_connection) as domain:
        guest_id = domain.UUIDString()
        before = listed(lister, guest_id)
        # The second list takes the definition from the cache.
        assert listed(lister, guest_id) == before

        changed = changer.ok("PUT", "/guests/" + guest_id,
                             {"memory": before["memory"] + 32,
                              "cpus": before["cpus"] + 1})
        after = listed(lister, guest_id)

    assert changed["memory"] == before["memory"] + 32
    assert after["memory"] == changed["memory"]
    assert after["cpus"] == changed["cpus"]
