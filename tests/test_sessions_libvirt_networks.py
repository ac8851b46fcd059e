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
import pathlib
import random
import subprocess
import sys
import time
import uuid as uuid_module
from xml.sax.saxutils import escape, quoteattr

import libvirt
import pytest

from simplestack.adapters import shared_folder
from simplestack.adapters.libvirt import (
    description_cache, guest_records, network_handles, shared_changes)
from simplestack.sessions import sessions_of
from tests import backends
from tests.libvirt_fixtures import (
    open_connection, remove_domain, remove_network)
from tests.test_sessions_libvirt import needs_qemu, service

pytestmark = needs_qemu

GUESTS_PATH = "/qemu/localhost/guests"
# The URI of qemu/localhost, the key of the process-wide caches.
LOCAL_URI = "qemu:///system"
ROOT = pathlib.Path(__file__).resolve().parents[1]
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
    _listed_at, active, _generation = adapter._network_handles
    return {name: network.UUIDString() for name, network in active.items()}


def listed_network_uuids():
    """{name: UUID string} of the process's last listing of the active
    networks of qemu:///system."""
    _listed_at, identities = description_cache.descriptions.active_networks(
        LOCAL_URI)
    return {name: str(uuid_module.UUID(bytes=uuid))
            for name, uuid in identities.items() if uuid is not None}


@pytest.fixture(params=["plain", "pooled"])
def any_api(request):
    """(app, api) of a service without session reuse, then with it."""
    app, api = service("qemu", session_reuse=str(
        request.param == "pooled").lower())
    yield app, api
    sessions_of(app.registry).shutdown()


def test_listing_is_skipped_on_later_connections(connection, pooled_api,
                                                 plain_api, caplog):
    app, api = pooled_api
    with dhcp_network(connection) as network, \
            defined_guest(connection, ("network", network.name)) as (
                guest_id, mac), \
            defined_guest(connection, ("bridge", network.bridge)) as (
                bridged_id, _bridged_mac):
        address = network.record_lease(mac, 20)
        # The first list reads the new guests' XML and lists the networks.
        # The new connections of the next lists make handles from the
        # listed names and UUIDs instead.
        list_guests(plain_api, caplog)
        description_cache.descriptions.discard_active_networks(LOCAL_URI)
        listed, listed_calls = list_guests(plain_api, caplog)
        plain, plain_calls = list_guests(plain_api, caplog)

        first, first_calls = list_guests(api, caplog)
        first_handles = pooled_adapter(app)._network_handles
        second, second_calls = list_guests(api, caplog)

    assert plain_calls == listed_calls - 1
    assert plain == listed
    assert plain[guest_id]["ip"] == address
    assert first_calls == plain_calls
    # The open of the connection.
    assert second_calls == first_calls - 1
    # The bridged NIC names no network, so it did not make the second
    # list look for its bridge among the networks.
    assert pooled_adapter(app)._network_handles is first_handles
    assert first == plain
    assert second == plain
    assert second[bridged_id]["ip"] is None


def test_missing_constructor_lists_networks(connection, plain_api, caplog,
                                            monkeypatch):
    monkeypatch.setattr(network_handles, "_FUNCTIONS", None)
    with dhcp_network(connection) as network, \
            defined_guest(connection, ("network", network.name)) as (
                guest_id, mac):
        address = network.record_lease(mac, 20)
        list_guests(plain_api, caplog)
        first, first_calls = list_guests(plain_api, caplog)
        monkeypatch.undo()
        second, second_calls = list_guests(plain_api, caplog)

    assert first[guest_id]["ip"] == address
    assert second[guest_id]["ip"] == address
    assert second_calls == first_calls - 1


def test_recreated_network_is_listed_again(connection, any_api, caplog):
    _app, api = any_api
    with dhcp_network(connection) as network, \
            defined_guest(connection, ("network", network.name)) as (
                guest_id, mac):
        old_address = network.record_lease(mac, 20)
        first, _calls = list_guests(api, caplog)
        old_uuid = listed_network_uuids()[network.name]

        network.stop()
        new_uuid = network.start()
        new_address = network.record_lease(mac, 30)
        second, _calls = list_guests(api, caplog)

    assert first[guest_id]["ip"] == old_address
    assert new_uuid != old_uuid
    assert listed_network_uuids()[network.name] == new_uuid
    assert second[guest_id]["ip"] == new_address
    assert second[guest_id]["state"] == "STOPPED"


def test_destroyed_network_gives_no_address(connection, any_api, caplog):
    _app, api = any_api
    network, address, before, after = records_around_stop(
        connection, api, caplog, persistent=False)

    assert before["ip"] == address
    assert after["ip"] is None
    assert after["name"] == before["name"]
    assert network.name not in listed_network_uuids()


def test_stopped_network_leases_end_after_max_age(connection, any_api,
                                                  caplog, monkeypatch):
    max_age = 2.0
    monkeypatch.setattr(guest_records, "NETWORK_HANDLES_MAX_AGE_SECONDS",
                        max_age)
    _app, api = any_api
    with dhcp_network(connection, persistent=True) as network, \
            defined_guest(connection, ("network", network.name)) as (
                guest_id, mac):
        address = network.record_lease(mac, 20)
        first, _calls = list_guests(api, caplog)
        listed_at, _identities = (
            description_cache.descriptions.active_networks(LOCAL_URI))
        network.stop()
        soon, _calls = list_guests(api, caplog)
        soon_ended_at = time.monotonic()
        time.sleep(max(0, listed_at + max_age + 0.1 - time.monotonic()))
        later, _calls = list_guests(api, caplog)

    assert first[guest_id]["ip"] == address
    # DHCPLeases of a stopped network that stays defined returns its last
    # leases (libvirt 9.0), so until the listing is older than the max age
    # the list still shows the address.
    if soon_ended_at - listed_at <= max_age:
        assert soon[guest_id]["ip"] == address
    assert later[guest_id]["ip"] is None
    assert network.name not in listed_network_uuids()


def test_started_network_leases_after_max_age(connection, any_api, caplog,
                                              monkeypatch):
    max_age = 2.0
    monkeypatch.setattr(guest_records, "NETWORK_HANDLES_MAX_AGE_SECONDS",
                        max_age)
    _app, api = any_api
    network = DhcpNetwork(connection, persistent=True)
    try:
        network.network = connection.networkDefineXML(network.xml())
        with defined_guest(connection, ("network", network.name)) as (
                guest_id, mac):
            first, _calls = list_guests(api, caplog)
            listed_at, identities = (
                description_cache.descriptions.active_networks(LOCAL_URI))
            _again, again_calls = list_guests(api, caplog)
            network.start()
            address = network.record_lease(mac, 20)
            soon, soon_calls = list_guests(api, caplog)
            soon_ended_at = time.monotonic()
            time.sleep(max(0, listed_at + max_age + 0.1 - time.monotonic()))
            later, _calls = list_guests(api, caplog)
    finally:
        network.remove()

    assert first[guest_id]["ip"] is None
    # The listing keeps the inactive network's name, so that the next
    # lists do not list again for it.
    assert identities[network.name] is None
    if soon_ended_at - listed_at <= max_age:
        assert soon[guest_id]["ip"] is None
        assert soon_calls == again_calls
    assert later[guest_id]["ip"] == address
    assert listed_network_uuids()[network.name] == network.network.UUIDString()


def lists_around_network_post(connection, api, caplog,
                              other_host="localhost"):
    """Create a network through the service at ``other_host`` between two
    guest lists.

    Returns (name, POST response, the process's network listing right
    after the POST, calls of the list before, calls of the list after).
    """
    name = backends.unique_name("made")
    with dhcp_network(connection) as network, \
            defined_guest(connection, ("network", network.name)) as (
                _guest_id, mac):
        network.record_lease(mac, 20)
        list_guests(api, caplog)
        _records, calls = list_guests(api, caplog)
        try:
            response = api.post_json("/qemu/%s/networks" % other_host,
                                     {"name": name}, status=201)
            listed_after_post = (
                description_cache.descriptions.active_networks(LOCAL_URI))
            _records, calls_after_post = list_guests(api, caplog)
        finally:
            remove_network(connection, name)
    return name, response, listed_after_post, calls, calls_after_post


def test_network_created_by_service_relists(connection, any_api, caplog):
    _app, api = any_api
    name, response, listed_after_post, calls, calls_after_post = (
        lists_around_network_post(connection, api, caplog))

    assert response.json["name_label"] == name
    assert listed_after_post is None
    # The list after the POST lists the networks again, and finds the new
    # one.
    assert calls_after_post == calls + 1
    assert name in listed_network_uuids()


def test_network_change_reaches_other_pooled_connections(connection,
                                                          caplog):
    # Two names of the local host: two pools of connections, one URI.
    app, api = service("qemu", session_reuse="true",
                       local_hosts="localhost 127.0.0.1")
    try:
        name, _response, _listed, calls, calls_after_post = (
            lists_around_network_post(connection, api, caplog,
                                      other_host="127.0.0.1"))
        pools = len(sessions_of(app.registry)._idle)
    finally:
        sessions_of(app.registry).shutdown()

    assert pools == 2
    # The first connection lists the networks again instead of using the
    # handles it kept.
    assert calls_after_post == calls + 1
    assert name in listed_network_uuids()


def test_network_change_reaches_other_processes(tmp_path, monkeypatch):
    """Two caches with change logs in one folder stand for two service
    processes."""
    monkeypatch.setattr(shared_folder, "private_folder", lambda: str(tmp_path))
    changing = description_cache.DescriptionCache(
        change_log=shared_changes.ChangeLog())
    listing = description_cache.DescriptionCache(
        change_log=shared_changes.ChangeLog())
    uuids = {"sstest-net": bytes(range(16))}
    generation = listing.network_generation(LOCAL_URI)
    listing.store_active_networks(LOCAL_URI, time.monotonic(), uuids,
                                  generation)
    stored = listing.active_networks(LOCAL_URI)

    changing.discard_active_networks(LOCAL_URI)
    later_generation = listing.network_generation(LOCAL_URI)

    assert stored[1] == uuids
    assert later_generation == generation + 1
    assert listing.active_networks(LOCAL_URI) is None
    # A listing that began before the change is not kept.
    listing.store_active_networks(LOCAL_URI, time.monotonic(), uuids,
                                  generation)
    assert listing.active_networks(LOCAL_URI) is None


# What the service process of test_lists_send_what_they_count runs: three
# lists without session reuse, each on a new connection.
WIRE_LIST_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                    format="%(message)s")
from tests.test_sessions_libvirt import service
app, api = service("qemu")
for _ in range(3):
    api.get("/qemu/localhost/guests", status=200)
"""
# libvirt's remote program and the numbers of its procedures
# (remote_protocol.x of libvirt 9.0).
REMOTE_PROGRAM = 0x20008086
PROC_CONNECT_OPEN = 1
PROC_CONNECT_CLOSE = 2
PROC_DOMAIN_GET_XML_DESC = 14
PROC_CONNECT_SUPPORTS_FEATURE = 60
PROC_AUTH_LIST = 66
PROC_CONNECT_LIST_ALL_NETWORKS = 283
PROC_NETWORK_GET_DHCP_LEASES = 341
PROC_CONNECT_GET_ALL_DOMAIN_STATS = 344
# The messages of a connection's open and close, which the service counts
# as one call.
SET_UP_PROCEDURES = frozenset((
    PROC_AUTH_LIST, PROC_CONNECT_OPEN, PROC_CONNECT_SUPPORTS_FEATURE,
    PROC_CONNECT_CLOSE))


def sent_per_connection(log_text):
    """The procedure numbers of the remote program's messages that a
    client's RPC log records as sent, one list per connection."""
    connections = []
    for line in log_text.splitlines():
        if "RPC_CLIENT_MSG_TX_QUEUE" not in line:
            continue
        fields = dict(field.split("=", 1) for field in line.split()
                      if "=" in field)
        if fields["prog"] != str(REMOTE_PROGRAM):
            continue
        procedure = int(fields["proc"])
        if procedure == PROC_AUTH_LIST or not connections:
            connections.append([])
        connections[-1].append(procedure)
    return connections


def test_lists_send_what_they_count(connection, tmp_path):
    """libvirt's own client log shows what each list sends to libvirtd: the
    service's count of its calls matches, and a handle made from a listed
    UUID sends nothing."""
    log_path = tmp_path / "libvirt-client.log"
    environment = dict(
        os.environ, LIBVIRT_LOG_FILTERS="1:rpc.netclient",
        LIBVIRT_LOG_OUTPUTS="1:file:%s" % log_path)
    with dhcp_network(connection) as network, \
            defined_guest(connection, ("network", network.name)) as (
                _guest_id, mac):
        network.record_lease(mac, 20)
        output = subprocess.run(
            [sys.executable, "-c", WIRE_LIST_SCRIPT], env=environment,
            cwd=ROOT, check=True, capture_output=True, text=True,
            timeout=120).stdout

    counts = [int(line.split("hypervisor_calls=")[1].split()[0])
              for line in output.splitlines() if "hypervisor_calls=" in line]
    sent = [[procedure for procedure in procedures
             if procedure not in SET_UP_PROCEDURES]
            for procedures in sent_per_connection(log_path.read_text())]
    assert len(counts) == 3
    assert len(sent) == 3
    # The open is one call of the count.
    assert counts == [1 + len(procedures) for procedures in sent]
    # A new process reads every domain's XML and lists the networks once.
    assert sent[0].count(PROC_CONNECT_LIST_ALL_NETWORKS) == 1
    assert PROC_DOMAIN_GET_XML_DESC in sent[0]
    leases = sent[0].count(PROC_NETWORK_GET_DHCP_LEASES)
    assert leases >= 1
    for later in sent[1:]:
        assert sorted(later) == (
            [PROC_NETWORK_GET_DHCP_LEASES] * leases
            + [PROC_CONNECT_GET_ALL_DOMAIN_STATS])
