"""Network handles that a pooled libvirt connection keeps for DHCP leases.

A guest list reads the addresses from the DHCP leases of the active
networks. A pooled connection keeps the handles of its last network
listing, so its later lists skip ``listAllNetworks``. These tests check
that the kept handles give the same records as a new listing, and what a
list returns after a network is destroyed, created again or stopped.

The guests are defined QEMU domains that never start. No DHCP client runs
here, so each lease is recorded with libvirt's own lease helper,
``libvirt_leaseshelper``, which is the program that dnsmasq runs for every
lease it grants. libvirtd reads the file that the helper writes, as it
does for a real lease. The tests run when SIMPLESTACK_TEST_BACKENDS lists
qemu (``scripts/test`` does).
"""

import contextlib
import logging
import os
import random
import subprocess
import time
from xml.sax.saxutils import escape, quoteattr

import libvirt
import pytest

from simplestack.adapters.libvirt import guest_records
from simplestack.sessions import sessions_of
from tests import backends
from tests.libvirt_fixtures import open_connection, remove_domain
from tests.test_sessions_libvirt import needs_qemu, service

pytestmark = needs_qemu

GUESTS_PATH = "/qemu/localhost/guests"
LEASES_HELPER = "/usr/lib/libvirt/libvirt_leaseshelper"
# Where libvirt 9.0 keeps the leases of a network's bridge.
LEASES_FILE = "/var/lib/libvirt/dnsmasq/%s.status"


@pytest.fixture(scope="module")
def connection():
    connection = open_connection("qemu")
    yield connection
    with contextlib.suppress(libvirt.libvirtError):
        connection.close()


@pytest.fixture
def pooled_api():
    app, api = service("qemu", session_reuse="true")
    yield app, api
    sessions_of(app.registry).shutdown()


@pytest.fixture
def plain_api():
    app, api = service("qemu")
    yield api
    sessions_of(app.registry).shutdown()


class DhcpNetwork:
    """An sstest- network with DHCP on a /24 subnet, transient or
    persistent, and the lease records of its bridge."""

    def __init__(self, connection, persistent=False):
        self.connection = connection
        self.name = backends.unique_name("leases")
        self.bridge = "sstest-" + self.name.rsplit("-", 1)[1][:6]
        # A subnet that no other network of the daemon is likely to use,
        # because libvirt rejects starting a network on a subnet in use.
        self.prefix = "10.213.%d" % random.randrange(100, 200)
        self.persistent = persistent
        self.network = None

    def xml(self):
        return (
            "<network><name>%s</name><bridge name=%s/>"
            "<ip address='%s.1' netmask='255.255.255.0'><dhcp>"
            "<range start='%s.10' end='%s.99'/></dhcp></ip></network>"
            % (escape(self.name), quoteattr(self.bridge), self.prefix,
               self.prefix, self.prefix))

    def start(self):
        """Create (transient) or define and start (persistent) the
        network; return its UUID."""
        if self.persistent:
            if self.network is None:
                self.network = self.connection.networkDefineXML(self.xml())
            self.network.create()
        else:
            self.network = self.connection.networkCreateXML(self.xml())
        return self.network.UUIDString()

    def stop(self):
        """Destroy the network. A persistent one stays defined."""
        self.network.destroy()

    def record_lease(self, mac, host_number):
        """Record a lease of the address ``prefix.host_number`` to ``mac``,
        valid for an hour, as dnsmasq does when it grants one."""
        address = "%s.%d" % (self.prefix, host_number)
        environment = dict(
            os.environ, DNSMASQ_INTERFACE=self.bridge,
            DNSMASQ_LEASE_EXPIRES=str(int(time.time()) + 3600))
        subprocess.run([LEASES_HELPER, "add", mac, address],
                       env=environment, check=True, capture_output=True,
                       timeout=30)
        return address

    def remove(self):
        if self.network is not None:
            with contextlib.suppress(libvirt.libvirtError):
                if self.network.isActive():
                    self.network.destroy()
            if self.persistent:
                with contextlib.suppress(libvirt.libvirtError):
                    self.network.undefine()
        # libvirt removes the file with the network; this is for a run that
        # failed in between.
        with contextlib.suppress(FileNotFoundError):
            os.remove(LEASES_FILE % self.bridge)


@contextlib.contextmanager
def dhcp_network(connection, persistent=False):
    """Yield a started DhcpNetwork and remove it afterwards."""
    network = DhcpNetwork(connection, persistent)
    try:
        network.start()
        yield network
    finally:
        network.remove()


def random_mac():
    return "52:54:00:%02x:%02x:%02x" % tuple(
        random.randrange(256) for _ in range(3))


@contextlib.contextmanager
def defined_guest(connection, source):
    """Yield (UUID, MAC) of a defined QEMU domain whose one NIC has the
    source ``source``: ('network', name) or ('bridge', name)."""
    kind, name = source
    mac = random_mac()
    domain = connection.defineXML(
        "<domain type='qemu'><name>%s</name>"
        "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
        "<devices><interface type=%s><mac address='%s'/>"
        "<source %s=%s/></interface></devices></domain>"
        % (escape(backends.unique_name("lease")), quoteattr(kind), mac,
           kind, quoteattr(name)))
    try:
        yield domain.UUIDString(), mac
    finally:
        remove_domain(domain)


def list_guests(api, caplog):
    """Return (records by id, hypervisor_calls) of one GET /guests."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="simplestack.requests"):
        response = api.get(GUESTS_PATH)
    counts = [record.getMessage().split("hypervisor_calls=")[1].split()[0]
              for record in caplog.records
              if "hypervisor_calls=" in record.getMessage()]
    assert response.status_int == 200
    assert len(counts) == 1
    return {record["id"]: record for record in response.json}, int(counts[0])


def records_around_stop(connection, api, caplog, persistent):
    """List the guests before and after stopping a network with one leased
    guest; return (network, address, record before, record after)."""
    with dhcp_network(connection, persistent) as network, \
            defined_guest(connection, ("network", network.name)) as (
                guest_id, mac):
        address = network.record_lease(mac, 20)
        before, _calls = list_guests(api, caplog)
        network.stop()
        after, _calls = list_guests(api, caplog)
    return network, address, before[guest_id], after[guest_id]


def pooled_adapter(app):
    [[entry]] = sessions_of(app.registry)._idle.values()
    return entry.adapter


def kept_network_uuids(adapter):
    _listed_at, active = adapter._network_handles
    return {name: network.UUIDString() for name, network in active.items()}


def test_reused_list_skips_network_listing(connection, pooled_api,
                                           plain_api, caplog):
    app, api = pooled_api
    with dhcp_network(connection) as network, \
            defined_guest(connection, ("network", network.name)) as (
                guest_id, mac), \
            defined_guest(connection, ("bridge", network.bridge)) as (
                bridged_id, _bridged_mac):
        address = network.record_lease(mac, 20)
        # Without reuse every list opens a connection and lists the
        # networks. The first list also reads the new guests' XML.
        list_guests(plain_api, caplog)
        plain, plain_calls = list_guests(plain_api, caplog)
        _again, plain_calls_again = list_guests(plain_api, caplog)
        assert plain[guest_id]["ip"] == address
        assert plain_calls_again == plain_calls

        first, first_calls = list_guests(api, caplog)
        first_handles = pooled_adapter(app)._network_handles
        second, second_calls = list_guests(api, caplog)

    assert first_calls == plain_calls
    # The open of the connection and the network listing.
    assert second_calls == first_calls - 2
    # The bridged NIC names no network, so it did not make the second
    # list look for its bridge among the networks.
    assert pooled_adapter(app)._network_handles is first_handles
    assert second[guest_id] == first[guest_id]
    assert second[guest_id]["ip"] == address
    assert second[bridged_id] == first[bridged_id]
    assert second[bridged_id]["ip"] is None


def test_recreated_network_is_listed_again(connection, pooled_api, caplog):
    app, api = pooled_api
    with dhcp_network(connection) as network, \
            defined_guest(connection, ("network", network.name)) as (
                guest_id, mac):
        old_address = network.record_lease(mac, 20)
        first, _calls = list_guests(api, caplog)
        old_uuid = kept_network_uuids(pooled_adapter(app))[network.name]

        network.stop()
        new_uuid = network.start()
        new_address = network.record_lease(mac, 30)
        second, _calls = list_guests(api, caplog)

    assert first[guest_id]["ip"] == old_address
    assert new_uuid != old_uuid
    assert kept_network_uuids(pooled_adapter(app))[network.name] == new_uuid
    assert second[guest_id]["ip"] == new_address
    assert second[guest_id]["state"] == "STOPPED"


def test_destroyed_network_gives_no_address(connection, pooled_api,
                                            caplog):
    app, api = pooled_api
    network, address, before, after = records_around_stop(
        connection, api, caplog, persistent=False)

    assert before["ip"] == address
    assert after["ip"] is None
    assert after["name"] == before["name"]
    assert network.name not in kept_network_uuids(pooled_adapter(app))


def test_stopped_network_leases_end_after_max_age(connection, pooled_api,
                                                  caplog, monkeypatch):
    max_age = 2.0
    monkeypatch.setattr(guest_records, "NETWORK_HANDLES_MAX_AGE_SECONDS",
                        max_age)
    app, api = pooled_api
    with dhcp_network(connection, persistent=True) as network, \
            defined_guest(connection, ("network", network.name)) as (
                guest_id, mac):
        address = network.record_lease(mac, 20)
        first, _calls = list_guests(api, caplog)
        listed_at, _active = pooled_adapter(app)._network_handles
        network.stop()
        soon, _calls = list_guests(api, caplog)
        soon_ended_at = time.monotonic()
        time.sleep(max(0, listed_at + max_age + 0.1 - time.monotonic()))
        later, _calls = list_guests(api, caplog)

    assert first[guest_id]["ip"] == address
    # DHCPLeases of a stopped network that stays defined returns its last
    # leases (libvirt 9.0), so until the kept handles are older than the
    # max age the list still shows the address.
    if soon_ended_at - listed_at <= max_age:
        assert soon[guest_id]["ip"] == address
    assert later[guest_id]["ip"] is None
    assert network.name not in kept_network_uuids(pooled_adapter(app))


def test_stopped_network_without_reuse(connection, plain_api, caplog):
    _network, address, before, after = records_around_stop(
        connection, plain_api, caplog, persistent=True)

    assert before["ip"] == address
    assert after["ip"] is None


def test_started_network_is_listed_again(connection, pooled_api, caplog):
    app, api = pooled_api
    network = DhcpNetwork(connection, persistent=True)
    try:
        network.network = connection.networkDefineXML(network.xml())
        with defined_guest(connection, ("network", network.name)) as (
                guest_id, mac):
            first, _calls = list_guests(api, caplog)
            network.start()
            address = network.record_lease(mac, 20)
            second, _calls = list_guests(api, caplog)
    finally:
        network.remove()

    assert first[guest_id]["ip"] is None
    assert second[guest_id]["ip"] == address
    assert network.name in kept_network_uuids(pooled_adapter(app))
