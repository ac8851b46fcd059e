"""Guest lists on QEMU when the DHCP leases of one network cannot be read.

A guest's address comes from the DHCP leases of the networks its NICs use.
Here libvirt fails to read the leases of one network, because its lease
file contains invalid JSON. The whole guest list and the record of each
guest on that network got 502, though the address is only one field of
the records. Now those guests show no address and the service logs a
warning that names the network.
"""

import contextlib
import random

import libvirt
import pytest

from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    http_client, qemu_connection, requires_qemu)
from tests.test_sessions_libvirt_networks import (
    LEASES_FILE, DhcpNetwork, defined_guest)

pytestmark = requires_qemu

#: Subnets a network tries before the test fails. Networks of other tests
#: on the shared libvirtd may use the random subnet that one picks.
SUBNET_ATTEMPTS = 5


@contextlib.contextmanager
def dhcp_network(connection):
    """Yield a started DhcpNetwork on a subnet no other network uses, and
    remove it afterwards."""
    network = DhcpNetwork(connection)
    try:
        for attempt in range(SUBNET_ATTEMPTS):
            try:
                network.start()
                break
            except libvirt.libvirtError as error:
                if "in use" not in str(error) or \
                        attempt == SUBNET_ATTEMPTS - 1:
                    raise
                network.prefix = "10.213.%d" % random.randrange(100, 200)
        yield network
    finally:
        network.remove()


@pytest.fixture
def broken_and_working(qemu_connection):  # noqa: F811
    """Yield (broken guest id, working guest id, working guest's address,
    broken network name): one leased guest on each of two networks, and
    the lease file of the first network overwritten with invalid JSON."""
    with dhcp_network(qemu_connection) as broken, \
            dhcp_network(qemu_connection) as working, \
            defined_guest(qemu_connection, ("network", broken.name)) as (
                broken_id, broken_mac), \
            defined_guest(qemu_connection, ("network", working.name)) as (
                working_id, working_mac):
        broken.record_lease(broken_mac, 20)
        address = working.record_lease(working_mac, 20)
        with open(LEASES_FILE % broken.bridge, "w", encoding="ascii") as file:
            file.write("{not json")
        yield broken_id, working_id, address, broken.name


def test_unreadable_leases_leave_list_200(http_client, server,  # noqa: F811
                                          broken_and_working):
    broken_id, working_id, address, network_name = broken_and_working

    status, records, _ = http_client.request("GET", "/guests")
    broken_status, broken, _ = http_client.request("GET",
                                                   "/guests/" + broken_id)

    assert status == 200, records
    by_id = {record["id"]: record for record in records}
    assert by_id[broken_id]["ip"] is None
    assert by_id[working_id]["ip"] == address
    assert broken_status == 200, broken
    assert broken["ip"] is None
    warnings = [line for line in server.read_log().splitlines()
                if "DHCP leases" in line and network_name in line]
    assert warnings
