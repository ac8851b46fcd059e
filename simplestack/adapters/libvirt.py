"""The libvirt adapter: QEMU/KVM, LXC, libvirt's test driver and Hyper-V.

One class serves every libvirt-backed hypervisor type. The ``driver``
setting of the type picks the libvirt driver, which decides the domain XML
the adapter writes and the operations it offers. What each driver cannot do is
listed in :data:`DRIVER_GAPS` and checked before any change, so an
unsupported operation raises FeatureNotImplemented without touching the
hypervisor.

Identifiers: a guest is its domain UUID (the domain name is accepted too),
a storage is a pool UUID (or name), a network is a network UUID (or name), a
disk is the position of its target device (``sda`` is 0, ``sdb`` is 1), a
NIC is its MAC and a snapshot is the UUID that names the libvirt snapshot.
"""

import datetime
import logging
import os
import re
import struct
import threading
import uuid
import xml.etree.ElementTree as ET

import libvirt

from simplestack import errors
from simplestack.adapters import base

logger = logging.getLogger(__name__)

KIB = 1024
MIB = 1024 ** 2
GIB = 1024 ** 3

#: Size of the chunks of an image export or import, in bytes.
STREAM_CHUNK_SIZE = 256 * KIB

#: XML namespace of the adapter's own data in domain and network metadata.
METADATA_NAMESPACE = "urn:simplestack:libvirt:1"
METADATA_PREFIX = "simplestack"

#: First bytes of a qcow2 image ("QFI" and 0xfb).
QCOW2_MAGIC = b"QFI\xfb"

#: Name of the virtio-serial channel of the QEMU guest agent.
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"

# Domain state -> API state. libvirt.VIR_DOMAIN_* values, see
# virDomainState in libvirt-domain.h.
STATE_MAP = {
    # The driver has no state for the domain.
    libvirt.VIR_DOMAIN_NOSTATE: "UNKNOWN",
    # Running on a host CPU.
    libvirt.VIR_DOMAIN_RUNNING: "STARTED",
    # Running but blocked on a resource such as I/O; still a live guest.
    libvirt.VIR_DOMAIN_BLOCKED: "STARTED",
    # Suspended in memory by virDomainSuspend (our "pause").
    libvirt.VIR_DOMAIN_PAUSED: "PAUSED",
    # Shutting down: still running until the guest finishes.
    libvirt.VIR_DOMAIN_SHUTDOWN: "STARTED",
    # Defined and not running.
    libvirt.VIR_DOMAIN_SHUTOFF: "STOPPED",
    # The guest crashed and libvirt kept it (on_crash preserve): neither
    # running nor cleanly stopped.
    libvirt.VIR_DOMAIN_CRASHED: "UNKNOWN",
    # Suspended by the guest's own power management (S3/S4).
    libvirt.VIR_DOMAIN_PMSUSPENDED: "PAUSED",
}

# The same states as domain snapshot XML spells them in <state>. A snapshot's
# state is the state the guest returns to on revert.
SNAPSHOT_STATE_MAP = {
    "nostate": "UNKNOWN",
    "running": "STARTED",
    "blocked": "STARTED",
    "paused": "PAUSED",
    "shutdown": "STARTED",
    "shutoff": "STOPPED",
    "crashed": "UNKNOWN",
    "pmsuspended": "PAUSED",
    # A disk-only snapshot of a running guest contains no memory, so a
    # revert leaves the guest shut off.
    "disk-snapshot": "STOPPED",
}

HYPERVISOR_NAMES = {
    "kvm": "libvirt (KVM)",
    "qemu": "libvirt (QEMU)",
    "lxc": "libvirt (LXC)",
    "hyperv": "libvirt (Hyper-V)",
    "test": "libvirt (test driver)",
}

DRIVERS = ("qemu", "lxc", "test", "hyperv")

# Per driver, the features it lacks and why, as measured on libvirt 9.0.
# Operations check these before they change anything.
DRIVER_GAPS = {
    "test": {
        "device_hotplug": "the test driver cannot attach or detach devices",
        "device_update": "the test driver cannot change devices "
                         "(no virDomainUpdateDeviceFlags)",
        "volume_resize": "the test driver cannot resize storage volumes",
        "volume_stream": "the test driver cannot upload or download "
                         "storage volumes",
        "dhcp_leases": "the test driver has no DHCP leases",
        "vlan": "the test driver has no Open vSwitch bridges",
    },
    "lxc": {
        "snapshots": "the LXC driver has no snapshot support",
        "disks": "LXC containers use a root directory, not disk volumes",
        "media": "LXC containers have no CD-ROM drive",
        "rename": "the LXC driver cannot rename domains",
        "volume_stream": "LXC containers have no disk image to transfer",
        "vlan": "VLAN networks need an Open vSwitch bridge",
    },
    "qemu": {
        "vlan": "VLAN networks need an Open vSwitch bridge",
    },
    "hyperv": {},
}

# libvirt error code -> simplestack error class. Codes missing here become
# HypervisorError, except the ones classified in _translate_error.
NOT_FOUND_CODES = frozenset((
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_NETWORK,
    libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
))
UNSUPPORTED_CODES = frozenset((
    libvirt.VIR_ERR_NO_SUPPORT,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
))
AUTH_CODES = frozenset((
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_AUTH_CANCELLED,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE,
))
TIMEOUT_CODES = frozenset((
    libvirt.VIR_ERR_OPERATION_TIMEOUT,
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
))
# Raised by a connection that could not be made or was lost.
CONNECTION_CODES = frozenset((
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_NO_CONNECT,
))
# Raised by virConnectOpen when this libvirt build has no driver for the
# URI: NO_CONNECT for an unknown scheme, CONFIG_UNSUPPORTED for a known
# driver left out at build time (hyperv on Debian 12).
MISSING_DRIVER_CODES = frozenset((
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
))

ERROR_CODE_NAMES = {
    value: name for name, value in vars(libvirt).items()
    if name.startswith("VIR_ERR_") and isinstance(value, int)
    and name not in ("VIR_ERR_NONE", "VIR_ERR_WARNING", "VIR_ERR_ERROR")
}


def _discard_libvirt_error(context, error):
    """Drop libvirt's report: the adapter raises it as an exception."""


# Without a handler, libvirt prints every error to stderr as well.
libvirt.registerErrorHandler(_discard_libvirt_error, None)


# -- settings ---------------------------------------------------------------

DEFAULT_SETTINGS = {
    "driver": "",
    "uri_template": "",
    "local_uri": "",
    "local_hosts": "localhost",
    "storage_pool": "default",
    "network": "",
    "domain_type": "kvm",
    "timeout": "",
    "hosts": "",
    "container_root": "",
    "container_init": "/sbin/init",
}

DEFAULT_URIS = {
    # driver: (uri_template, local_uri)
    "qemu": ("qemu+tls://{host}/system", "qemu:///system"),
    "lxc": ("lxc+tls://{host}/", "lxc:///"),
    "hyperv": ("hyperv://{host}/?transport=https", ""),
    "test": ("", ""),
}

TEST_DEFAULT_HOST = "default"
TEST_DEFAULT_URI = "test:///default"


def _parse_test_hosts(text):
    """Parse ``name=/abs/path.xml`` lines into {name: test driver URI}."""
    hosts = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        name, separator, path = line.partition("=")
        name, path = name.strip(), path.strip()
        if not separator or not name or not os.path.isabs(path):
            raise ValueError(
                "hosts: invalid line %r; expected name=/absolute/path.xml"
                % line)
        if not os.path.isfile(path):
            raise ValueError("hosts: file %s for host %r does not exist"
                             % (path, name))
        hosts[name] = "test://" + path
    return hosts


# -- domain XML -------------------------------------------------------------

class DiskDevice:
    """A <disk> of a domain: a disk or a CD-ROM."""

    def __init__(self, element):
        self.element = element
        self.device = element.get("device", "disk")
        target = element.find("target")
        self.target = target.get("dev") if target is not None else None
        self.bus = target.get("bus") if target is not None else None
        source = element.find("source")
        self.path = None
        if source is not None:
            self.path = (source.get("file") or source.get("dev")
                         or source.get("name"))
        driver = element.find("driver")
        self.format = driver.get("type") if driver is not None else None
        self.number = _target_index(self.target)


class InterfaceDevice:
    """An <interface> of a domain."""

    def __init__(self, element, number):
        self.element = element
        self.number = number
        mac = element.find("mac")
        self.mac = mac.get("address").lower() if mac is not None else None
        source = element.find("source")
        self.network = None
        if source is not None:
            self.network = source.get("network") or source.get("bridge")
        link = element.find("link")
        self.active = link is None or link.get("state") != "down"
        outbound = element.find("bandwidth/outbound")
        self.rate_limit = None
        if outbound is not None and outbound.get("average"):
            # libvirt's average is in kibibytes per second.
            self.rate_limit = int(outbound.get("average")) * KIB * 8


class DomainDescription:
    """The parts of a domain's XML that the records need."""

    def __init__(self, xml_text):
        self.root = ET.fromstring(xml_text)
        self.name = self.root.findtext("name")
        self.uuid = self.root.findtext("uuid").lower()
        self.memory_kib = _memory_kib(self.root.find("memory"))
        vcpu = self.root.find("vcpu")
        self.cpus = 0
        if vcpu is not None:
            self.cpus = int(vcpu.get("current") or vcpu.text)
        self.os_type = self.root.findtext("os/type")
        devices = self.root.findall("devices/disk")
        self.disks = sorted(
            (DiskDevice(element) for element in devices
             if element.get("device", "disk") == "disk"),
            key=lambda disk: disk.number)
        self.cdroms = [DiskDevice(element) for element in devices
                       if element.get("device") == "cdrom"]
        self.interfaces = [
            InterfaceDevice(element, number) for number, element
            in enumerate(self.root.findall("devices/interface"))]
        self.agent_connected = False
        for channel in self.root.findall("devices/channel/target"):
            if (channel.get("name") == GUEST_AGENT_CHANNEL
                    and channel.get("state") == "connected"):
                self.agent_connected = True
        tags = self.root.find("metadata/{%s}tags" % METADATA_NAMESPACE)
        self.tags = set()
        if tags is not None:
            self.tags = {tag.text or "" for tag in tags}

    def used_targets(self):
        return {element.get("dev")
                for element in self.root.findall("devices/disk/target")}


def _memory_kib(element):
    if element is None:
        return 0
    factors = {"b": 1 / KIB, "bytes": 1 / KIB, "k": 1, "kib": 1, "kb": 1,
               "m": KIB, "mib": KIB, "mb": KIB, "g": MIB, "gib": MIB,
               "gb": MIB}
    unit = element.get("unit", "KiB").lower()
    return int(int(element.text) * factors.get(unit, 1))


TARGET_PREFIXES = ("xvd", "sd", "vd", "hd", "ubd")


def _target_index(dev):
    """Return the position a target device name encodes (sda 0, sdaa 26).

    The letters after the bus prefix count in bijective base 26, as libvirt
    numbers them. An unknown name returns a large number so it sorts last.
    """
    if not dev:
        return 1 << 20
    for prefix in TARGET_PREFIXES:
        if dev.startswith(prefix) and dev[len(prefix):].isalpha():
            index = 0
            for letter in dev[len(prefix):]:
                index = index * 26 + (ord(letter) - ord("a") + 1)
            return index - 1
    return 1 << 20


def _target_name(prefix, index):
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("a") + remainder) + letters
    return prefix + letters


def _free_target(description, prefix="sd"):
    used = description.used_targets()
    index = 0
    while _target_name(prefix, index) in used:
        index += 1
    return _target_name(prefix, index)


#: USB ports of the controller of the QEMU guests this adapter creates.
USB_PORTS = 15


def _free_usb_port(description):
    """Return the lowest port of USB bus 0 that no device of the guest uses.

    Guests defined elsewhere may have libvirt's default controller, whose
    port count the XML does not state, so the count is a best guess there.
    """
    controller = description.root.find(
        "devices/controller[@type='usb'][@index='0']")
    ports = USB_PORTS
    if controller is not None and controller.get("ports"):
        ports = int(controller.get("ports"))
    elif controller is not None:
        # NOTE: libvirt's default piix3-uhci has 2 ports.
        ports = 2
    used = {address.get("port") for address in description.root.findall(
        "devices/*/address[@type='usb']") if address.get("bus", "0") == "0"}
    for port in range(1, ports + 1):
        if str(port) not in used:
            return port
    raise errors.Conflict("guest %s has no free USB port for another "
                          "network interface (%d ports)"
                          % (description.name, ports))


def _to_xml(element):
    return ET.tostring(element, encoding="unicode")


def _iso8601(timestamp):
    moment = datetime.datetime.fromtimestamp(int(timestamp),
                                             datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_iso8601():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


UUID_PATTERN = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    re.IGNORECASE)


def _is_uuid(text):
    """Tell whether ``text`` is a UUID in the 36-character form libvirt
    parses; braces and ``urn:uuid:`` prefixes are names, not UUIDs."""
    return isinstance(text, str) and bool(UUID_PATTERN.match(text))


def _validate_name(kind, name):
    """Raise InvalidArguments unless ``name`` can name a libvirt object.

    libvirt rejects '/' in domain and network names. A name in UUID form
    is rejected too, because the adapter reads such an id as a UUID only.
    """
    if not isinstance(name, str) or not name.strip():
        raise errors.InvalidArguments("invalid %s name %r; expected a "
                                      "non-empty string" % (kind, name))
    if "/" in name or any(ord(character) < 32 for character in name):
        raise errors.InvalidArguments(
            "invalid %s name %r; it may not contain '/' or control "
            "characters" % (kind, name))
    if _is_uuid(name):
        raise errors.InvalidArguments(
            "invalid %s name %r; a name may not have the form of a UUID"
            % (kind, name))
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidArguments(
            "invalid %s name %r; it is not valid Unicode" % (kind, name))


MAC_PATTERN = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


def _normalize_mac(mac):
    normalized = str(mac).strip().lower().replace("-", ":")
    if not MAC_PATTERN.match(normalized):
        raise errors.InvalidArguments(
            "invalid MAC address %r; expected six colon-separated hex bytes"
            % mac)
    return normalized


def _qcow2_virtual_size(header):
    """Return the virtual size in a qcow2 header (bytes 24-31, big-endian)."""
    if len(header) < 32:
        raise errors.InvalidArguments(
            "the image is too short for a qcow2 header (%d bytes)"
            % len(header))
    return struct.unpack(">Q", header[24:32])[0]


# -- process-wide test driver connections -----------------------------------

_shared_test_connections = {}
_shared_test_lock = threading.Lock()


def _shared_test_connection(uri):
    """Return the process-wide connection to a test driver URI.

    libvirt's test driver keeps its domains, pools and networks only while
    a connection to the URI is open, and each open of a file URI
    (``test:///path.xml``) starts from a fresh copy of the file. One
    connection per URI therefore stays open for the life of the process;
    it is the only connection the adapter never closes.
    """
    with _shared_test_lock:
        connection = _shared_test_connections.get(uri)
        if connection is None:
            connection = libvirt.open(uri)
            _shared_test_connections[uri] = connection
        return connection


# libvirt has no atomic change of domain metadata, so tag updates, which
# read the tags and write them back, take this lock.
_tags_lock = threading.Lock()


# -- event loop for keepalive ---------------------------------------------------

_event_loop_lock = threading.Lock()
_event_loop_thread = None


def _run_event_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


def _start_event_loop():
    """Start libvirt's default event loop in a daemon thread, once.

    Keepalive probes run in this loop; it must be registered before the
    connection that uses them is opened.
    """
    global _event_loop_thread
    with _event_loop_lock:
        if _event_loop_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        _event_loop_thread = threading.Thread(
            target=_run_event_loop, name="libvirt-event-loop", daemon=True)
        _event_loop_thread.start()


# -- the adapter ------------------------------------------------------------

class LibvirtAdapter(base.Adapter):
    """Adapter for the libvirt drivers QEMU, LXC, test and Hyper-V."""

    def __init__(self, type_name, host, credentials, config):
        super().__init__(type_name, host, credentials, config)
        self.hypervisor_name = HYPERVISOR_NAMES.get(
            type_name, "libvirt (%s)" % type_name)
        self.driver = config["driver"]
        self._conn = None
        self._owns_connection = True

    # -- settings ----------------------------------------------------------

    @classmethod
    def parse_settings(cls, type_name, settings):
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError("unknown libvirt settings for %s: %s"
                             % (type_name, ", ".join(sorted(unknown))))
        config = dict(DEFAULT_SETTINGS)
        config.update({key: value.strip() for key, value in settings.items()})

        driver = config["driver"]
        if driver not in DRIVERS:
            raise ValueError("driver: invalid value %r for %s; expected one "
                             "of %s" % (driver, type_name, ", ".join(DRIVERS)))
        if driver == "test" and "storage_pool" not in settings:
            # The pool that test:///default comes with.
            config["storage_pool"] = "default-pool"
        default_template, default_local = DEFAULT_URIS[driver]
        config["uri_template"] = config["uri_template"] or default_template
        config["local_uri"] = config["local_uri"] or default_local
        if driver != "test" and "{host}" not in config["uri_template"]:
            raise ValueError("uri_template: %r for %s has no {host} field"
                             % (config["uri_template"], type_name))
        config["local_hosts"] = frozenset(config["local_hosts"].split())

        if config["domain_type"] not in ("kvm", "qemu"):
            raise ValueError("domain_type: invalid value %r for %s; expected "
                             "kvm or qemu" % (config["domain_type"], type_name))

        timeout = config["timeout"]
        if timeout:
            try:
                config["timeout"] = float(timeout)
            except ValueError:
                config["timeout"] = 0
            if config["timeout"] <= 0:
                raise ValueError("timeout: invalid value %r for %s; expected "
                                 "a positive number of seconds"
                                 % (timeout, type_name))
        else:
            config["timeout"] = None

        config["hosts"] = _parse_test_hosts(config["hosts"])
        if config["hosts"] and driver != "test":
            raise ValueError("hosts: only the test driver takes host files")
        return config

    # -- connection --------------------------------------------------------

    def _host_without_port(self):
        host = self.host
        if host.startswith("["):
            return host[1:].partition("]")[0]
        if host.count(":") == 1:
            return host.partition(":")[0]
        return host

    def _uri(self):
        """Return (uri, remote) for the URL host."""
        if self.driver == "test":
            if self.host == TEST_DEFAULT_HOST:
                return TEST_DEFAULT_URI, False
            if self.host in self.config["hosts"]:
                return self.config["hosts"][self.host], False
            raise errors.EntityNotFound(
                "unknown test driver host %r; use %r or a name from the "
                "'hosts' setting" % (self.host, TEST_DEFAULT_HOST))
        if (self.config["local_uri"]
                and self._host_without_port() in self.config["local_hosts"]):
            return self.config["local_uri"], False
        return self.config["uri_template"].format(host=self.host), True

    def open(self):
        if self._conn is not None:
            return
        uri, remote = self._uri()
        if remote and self.config["timeout"]:
            _start_event_loop()
        self.calls += 1
        try:
            if self.driver == "test":
                shared = _shared_test_connection(uri)
                if uri == TEST_DEFAULT_URI:
                    self._conn = libvirt.open(uri)
                else:
                    # A new connection to a file URI would start from a
                    # fresh copy, so requests share the kept one.
                    self._conn = shared
                    self._owns_connection = False
            elif remote:
                self._conn = libvirt.openAuth(uri, self._auth(), 0)
            else:
                self._conn = libvirt.open(uri)
        except libvirt.libvirtError as error:
            raise self._translate_open_error(error, uri) from error
        logger.debug("opened libvirt connection to %s", uri)
        if remote and self.config["timeout"]:
            self._set_keepalive()

    def _auth(self):
        username, password = self.credentials or (None, None)

        def answer(requested, user_data):
            for credential in requested:
                if credential[0] == libvirt.VIR_CRED_AUTHNAME:
                    credential[4] = username
                elif credential[0] == libvirt.VIR_CRED_PASSPHRASE:
                    credential[4] = password
                else:
                    return -1
            return 0

        return [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE],
                answer, None]

    def _set_keepalive(self):
        """Make libvirt close the connection after ``timeout`` seconds
        without a reply: three keepalive probes, a third of it apart."""
        interval = max(1, int(self.config["timeout"] // 3))
        self._call(self._conn.setKeepAlive, interval, 2)

    def _translate_open_error(self, error, uri):
        code = error.get_error_code()
        scheme = uri.partition(":")[0]
        if code in MISSING_DRIVER_CODES:
            return errors.FeatureNotImplemented(
                "%s cannot connect: the libvirt library of this service has "
                "no driver for %s URIs (%s)"
                % (self.hypervisor_name, scheme, error.get_error_message()),
                original=error)
        if code in AUTH_CODES:
            return errors.HypervisorAuthenticationFailed(
                "%s rejected the credentials" % self.hypervisor_name,
                original=error)
        if (code == libvirt.VIR_ERR_SYSTEM_ERROR
                or code in CONNECTION_CODES):
            return errors.HypervisorUnreachable(
                "%s at %s is unreachable: %s"
                % (self.hypervisor_name, self.host, error.get_error_message()),
                original=error)
        return self._translate_error(error)

    def close(self):
        connection, self._conn = self._conn, None
        if connection is None or not self._owns_connection:
            return
        try:
            connection.close()
        except libvirt.libvirtError as error:
            logger.warning("closing the libvirt connection to %s failed: %s",
                           self.host, error.get_error_message())

    @property
    def conn(self):
        if self._conn is None:
            self.open()
        return self._conn

    # -- calls and errors --------------------------------------------------

    def _call(self, function, *args, domain=None):
        """Call the binding, count the call and translate its errors.

        ``domain`` is the virDomain the call acts on, so that an
        operation-invalid error can name the guest's current state.
        """
        self.calls += 1
        try:
            return function(*args)
        except libvirt.libvirtError as error:
            raise self._translate_error(error, domain) from error

    def _translate_error(self, error, domain=None):
        code = error.get_error_code()
        message = error.get_error_message() or "unknown libvirt error"
        if code in NOT_FOUND_CODES:
            return errors.EntityNotFound(message, original=error)
        if code == libvirt.VIR_ERR_OPERATION_INVALID:
            state = self._state_for_message(domain)
            return errors.InvalidState(
                "%s rejected the operation while the guest is %s: %s"
                % (self.hypervisor_name, state, message), original=error)
        if code in UNSUPPORTED_CODES:
            return errors.FeatureNotImplemented(
                "%s cannot do this: %s" % (self.hypervisor_name, message),
                original=error)
        if code in AUTH_CODES:
            return errors.HypervisorAuthenticationFailed(
                "%s rejected the credentials" % self.hypervisor_name,
                original=error)
        if code in TIMEOUT_CODES:
            return errors.HypervisorTimeout(
                "%s timed out: %s" % (self.hypervisor_name, message),
                original=error)
        if code in CONNECTION_CODES or (
                code == libvirt.VIR_ERR_SYSTEM_ERROR
                and error.get_error_domain() == libvirt.VIR_FROM_RPC):
            return errors.HypervisorUnreachable(
                "the connection to %s at %s failed: %s"
                % (self.hypervisor_name, self.host, message), original=error)
        params = [value for value in (error.get_str1(), error.get_str2(),
                                      error.get_str3(), error.get_int1(),
                                      error.get_int2())
                  if value not in (None, -1, "")]
        return errors.HypervisorError(
            "%s failed: %s" % (self.hypervisor_name, message),
            code=ERROR_CODE_NAMES.get(code, code), params=params,
            original=error)

    def _state_for_message(self, domain):
        if domain is None:
            return "in a state that forbids it"
        try:
            return self._state(domain)
        except errors.SimplestackError:
            return "UNKNOWN"

    def _require(self, feature, operation):
        """Raise FeatureNotImplemented when the driver lacks ``feature``."""
        reason = DRIVER_GAPS[self.driver].get(feature)
        if reason:
            raise self.not_implemented(operation, reason)

    # -- lookups -----------------------------------------------------------

    def _lookup(self, kind, identifier, by_uuid, by_name):
        """Find a domain, pool or network by UUID or, failing the UUID
        form, by name.

        A UUID is never tried as a name: a guest named with another
        guest's former UUID must not answer for it.
        """
        identifier = str(identifier)
        try:
            if _is_uuid(identifier):
                return self._call(by_uuid, identifier.lower())
            return self._call(by_name, identifier)
        except errors.EntityNotFound as error:
            raise errors.EntityNotFound(
                "%s %s not found" % (kind, identifier),
                original=error.original)
        except errors.HypervisorError as error:
            # libvirt rejects a name it can never hold (VIR_ERR_INVALID_ARG)
            # instead of reporting it missing.
            if error.original is not None and (
                    error.original.get_error_code()
                    == libvirt.VIR_ERR_INVALID_ARG):
                raise errors.EntityNotFound(
                    "%s %s not found" % (kind, identifier),
                    original=error.original)
            raise

    def _domain(self, guest_id):
        return self._lookup("guest", guest_id, self.conn.lookupByUUIDString,
                            self.conn.lookupByName)

    def _describe(self, domain, inactive=False, secure=False):
        """Parse the domain's XML: the persistent definition when
        ``inactive``, with secrets such as VNC passwords when ``secure``
        (needed for XML that is defined again)."""
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        if secure:
            flags |= libvirt.VIR_DOMAIN_XML_SECURE
        return DomainDescription(
            self._call(domain.XMLDesc, flags, domain=domain))

    def _state(self, domain):
        state, _reason = self._call(domain.state, domain=domain)
        return STATE_MAP.get(state, "UNKNOWN")

    def _pool(self, storage_id):
        return self._lookup("storage", storage_id,
                            self.conn.storagePoolLookupByUUIDString,
                            self.conn.storagePoolLookupByName)

    def _default_pool(self, storage_id=None):
        if storage_id is not None:
            return self._pool(storage_id)
        name = self.config["storage_pool"]
        try:
            return self._call(self.conn.storagePoolLookupByName, name)
        except errors.EntityNotFound as error:
            raise errors.HypervisorError(
                "the storage pool %r of the storage_pool setting does not "
                "exist on %s" % (name, self.host), original=error.original)

    def _network(self, network_id):
        return self._lookup("network", network_id,
                            self.conn.networkLookupByUUIDString,
                            self.conn.networkLookupByName)

    def _volume_by_path(self, path):
        """Return the storage volume at ``path``, or None when none is."""
        try:
            return self._call(self.conn.storageVolLookupByPath, path)
        except errors.EntityNotFound:
            return None

    def _volumes_named(self, name):
        """Return every volume called ``name``, across all pools."""
        found = []
        for pool in self._call(self.conn.listAllStoragePools,
                               libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            try:
                found.append(self._call(pool.storageVolLookupByName, name))
            except errors.EntityNotFound:
                continue
        return found

    def _hostname(self):
        return self._call(self.conn.getHostname)

    # -- pool and hosts ----------------------------------------------------

    def _capabilities(self):
        return ET.fromstring(self._call(self.conn.getCapabilities))

    def _host_record(self, capabilities=None):
        capabilities = (capabilities if capabilities is not None
                        else self._capabilities())
        hostname = self._hostname()
        # The test driver's capabilities have no host UUID.
        host_uuid = capabilities.findtext("host/uuid") or hostname
        return {
            "id": host_uuid.lower(),
            "name": hostname,
            "address": self._host_without_port(),
        }

    def get_pool(self):
        info = self._call(self.conn.getInfo)
        free_bytes = self._call(self.conn.getFreeMemory)
        total_mib = info[1]
        host = self._host_record()
        library_version = self._call(self.conn.getLibVersion)
        hypervisor_version = self._call(self.conn.getVersion)
        return {
            "used_memory": max(total_mib - free_bytes // MIB, 0),
            "total_memory": total_mib,
            "uuid": host["id"],
            "master": host["address"],
            "software_info": {
                "version": _version_string(library_version),
                "hypervisor": self._call(self.conn.getType),
                "hypervisor_version": _version_string(hypervisor_version),
                "driver": self.driver,
            },
        }

    def list_hosts(self):
        return [self._host_record()]

    def get_host(self, host_id):
        host = self._host_record()
        if str(host_id).lower() not in (host["id"], host["name"].lower()):
            raise errors.EntityNotFound("host %s not found" % host_id)
        return host

    # -- storages ----------------------------------------------------------

    def _storage_record(self, pool):
        root = ET.fromstring(self._call(pool.XMLDesc, 0))
        _state, capacity, allocation, _available = self._call(pool.info)
        # allocated_space sums the virtual sizes of the pool's volumes, so
        # it can exceed size when volumes are sparse (thin provisioning).
        virtual_total = 0
        if self._call(pool.isActive):
            for volume in self._call(pool.listAllVolumes, 0):
                try:
                    virtual_total += self._call(volume.info)[1]
                except errors.EntityNotFound:
                    continue  # deleted since listAllVolumes
        return {
            "id": pool.UUIDString().lower(),
            "name": pool.name(),
            "type": root.get("type"),
            "used_space": allocation // GIB,
            "allocated_space": virtual_total // GIB,
            "size": capacity // GIB,
        }

    def list_storages(self):
        records = []
        for pool in self._call(self.conn.listAllStoragePools, 0):
            try:
                records.append(self._storage_record(pool))
            except errors.EntityNotFound:
                continue  # deleted since listAllStoragePools
        return records

    def get_storage(self, storage_id):
        return self._storage_record(self._pool(storage_id))

    # -- guest records -----------------------------------------------------

    def _guest_record(self, description, state, disk_sizes, leases,
                      hostname):
        """Build a guest record from data already fetched.

        ``disk_sizes`` maps target device names to bytes; ``leases`` maps
        MACs to IPv4 addresses.
        """
        hdd_bytes = sum(disk_sizes.get(disk.target, 0)
                        for disk in description.disks)
        ip = None
        for interface in description.interfaces:
            if interface.mac in leases:
                ip = leases[interface.mac]
                break
        return {
            "id": description.uuid,
            "name": description.name,
            "cpus": description.cpus,
            "memory": description.memory_kib // KIB,
            "hdd": hdd_bytes // GIB,
            # Xen paravirtualization is the only kind the API means, and
            # no driver served here runs Xen guests.
            "paravirtualized": description.os_type == "xen",
            # libvirt has no agent version to compare against, so an
            # agent that is connected counts as up to date.
            "tools_up_to_date": True if description.agent_connected else None,
            "ip": ip,
            "state": state,
            "host": hostname if state != "STOPPED" else None,
        }

    def _disk_sizes(self, domain, description, block_stats=None):
        """Map target device -> virtual size in bytes for the domain's disks.

        ``block_stats`` is the domain's entry from getAllDomainStats with the
        block group, which on QEMU has every readable disk's capacity. A
        disk missing there costs one virDomainGetBlockInfo call. The test
        driver's block info is a fixed fake, so there a disk costs a volume
        lookup and a volume info call instead.
        """
        sizes = {}
        if block_stats:
            for index in range(block_stats.get("block.count", 0)):
                name = block_stats.get("block.%d.name" % index)
                capacity = block_stats.get("block.%d.capacity" % index)
                if name and capacity is not None:
                    sizes[name] = capacity
        for disk in description.disks:
            if disk.target in sizes or not disk.target:
                continue
            if self.driver != "qemu" and disk.path:
                volume = self._volume_by_path(disk.path)
                if volume is not None:
                    sizes[disk.target] = self._call(volume.info)[1]
                    continue
            sizes[disk.target] = self._block_capacity(domain, disk)
        return sizes

    def _block_capacity(self, domain, disk):
        """Return the disk's virtual size from libvirt, or 0 when unknown."""
        try:
            return self._call(domain.blockInfo, disk.target, 0,
                              domain=domain)[0]
        except (errors.FeatureNotImplemented, errors.HypervisorError,
                errors.InvalidState) as error:
            # An image that is missing or unreadable must not hide the
            # guest from lists; its size counts as 0.
            logger.warning("could not read the size of disk %s of guest %s:"
                           " %s", disk.target, domain.UUIDString(),
                           error.message)
            return 0

    def _leases(self, network_names):
        """Map MAC -> IPv4 address from the DHCP leases of the networks."""
        if DRIVER_GAPS[self.driver].get("dhcp_leases"):
            return {}
        leases = {}
        for name in sorted(network_names):
            try:
                network = self._call(self.conn.networkLookupByName, name)
                if not self._call(network.isActive):
                    continue
                entries = self._call(network.DHCPLeases)
            except (errors.EntityNotFound, errors.FeatureNotImplemented):
                continue
            for entry in entries:
                if entry.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                    leases.setdefault(entry["mac"].lower(), entry["ipaddr"])
        return leases

    def _stats_groups(self):
        if self.driver == "qemu":
            return libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BLOCK
        if self.driver == "test":
            return libvirt.VIR_DOMAIN_STATS_STATE
        # LXC has no getAllDomainStats in libvirt 9.0.
        return 0

    def _guest_from_domain(self, domain):
        description = self._describe(domain)
        stats = {}
        groups = self._stats_groups()
        if groups:
            result = self._call(self.conn.domainListGetStats, [domain],
                                groups, domain=domain)
            stats = result[0][1] if result else {}
        if "state.state" in stats:
            state = STATE_MAP.get(stats["state.state"], "UNKNOWN")
        else:
            state = self._state(domain)
        sizes = self._disk_sizes(domain, description, stats)
        leases = self._leases({interface.network for interface
                               in description.interfaces
                               if interface.network})
        hostname = self._hostname() if state != "STOPPED" else None
        return self._guest_record(description, state, sizes, leases,
                                  hostname)

    def list_guests(self):
        domains = self._call(self.conn.listAllDomains, 0)
        if not domains:
            return []

        states, block_stats = self._bulk_states(domains)

        # NOTE: libvirt 9.0 has no bulk call for domain XML, so this costs
        # one XMLDesc per guest. Only the XML has the MACs (for the IP) and
        # the device kinds (CD-ROMs are not in hdd), and on the test and
        # LXC drivers also the vCPU and memory figures.
        descriptions = {}
        for domain in domains:
            try:
                descriptions[domain.UUIDString()] = self._describe(domain)
            except errors.EntityNotFound:
                continue  # deleted since listAllDomains

        network_names = {interface.network
                         for description in descriptions.values()
                         for interface in description.interfaces
                         if interface.network}
        leases = self._leases(network_names)
        hostname = None
        if any(state != "STOPPED" for state in states.values()):
            hostname = self._hostname()

        records = []
        for domain in domains:
            key = domain.UUIDString()
            if key not in descriptions or key not in states:
                continue
            description = descriptions[key]
            try:
                sizes = self._disk_sizes(domain, description,
                                         block_stats.get(key))
            except errors.EntityNotFound:
                continue  # deleted since listAllDomains
            records.append(self._guest_record(
                description, states[key], sizes, leases, hostname))
        records.sort(key=lambda record: record["id"])
        return records

    def _bulk_states(self, domains):
        """Return ({uuid: API state}, {uuid: block stats}) for ``domains``."""
        states = {}
        block_stats = {}
        groups = self._stats_groups()
        if groups:
            for domain, stats in self._call(self.conn.getAllDomainStats,
                                            groups, 0):
                key = domain.UUIDString()
                states[key] = STATE_MAP.get(stats.get("state.state"),
                                            "UNKNOWN")
                block_stats[key] = stats
        else:
            # Without bulk stats, list by state: three calls whatever the
            # number of guests.
            for flag, state in (
                    (libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING, "STARTED"),
                    (libvirt.VIR_CONNECT_LIST_DOMAINS_PAUSED, "PAUSED"),
                    (libvirt.VIR_CONNECT_LIST_DOMAINS_SHUTOFF, "STOPPED")):
                for domain in self._call(self.conn.listAllDomains, flag):
                    states[domain.UUIDString()] = state
        # Guests in rarer states (blocked, shutting down, crashed,
        # pmsuspended) or defined since the first listing: one call each.
        for domain in domains:
            if domain.UUIDString() not in states:
                try:
                    states[domain.UUIDString()] = self._state(domain)
                except errors.EntityNotFound:
                    continue  # deleted since listAllDomains
        return states, block_stats

    def get_guest(self, guest_id):
        return self._guest_from_domain(self._domain(guest_id))

    # -- guest creation ----------------------------------------------------

    def _check_name_free(self, name):
        _validate_name("guest", name)
        try:
            self._call(self.conn.lookupByName, name)
        except errors.EntityNotFound:
            return
        raise errors.Conflict(
            "a guest named %r already exists; libvirt needs unique names"
            % name)

    def _check_volume_name_free(self, pool, name):
        try:
            self._call(pool.storageVolLookupByName, name)
        except errors.EntityNotFound:
            return
        raise errors.Conflict("a volume named %r already exists in storage %s"
                              % (name, pool.name()))

    def _template_volume(self, template):
        """Find the volume ``template`` names: a key, a path or a name."""
        template = str(template)
        if template.startswith("/"):
            volume = self._volume_by_path(template)
            if volume is not None:
                return volume
        try:
            return self._call(self.conn.storageVolLookupByKey, template)
        except errors.EntityNotFound:
            pass
        volumes = self._volumes_named(template)
        if not volumes:
            raise errors.EntityNotFound("template %s not found" % template)
        if len(volumes) > 1:
            raise errors.Conflict(
                "template name %r matches volumes in %d storages; use the "
                "volume path instead" % (template, len(volumes)))
        return volumes[0]

    @staticmethod
    def _volume_xml(name, capacity_bytes, volume_format="qcow2"):
        volume = ET.Element("volume")
        ET.SubElement(volume, "name").text = name
        ET.SubElement(volume, "capacity", unit="bytes").text = str(
            capacity_bytes)
        # Sparse: allocate nothing up front.
        ET.SubElement(volume, "allocation", unit="bytes").text = "0"
        target = ET.SubElement(volume, "target")
        ET.SubElement(target, "format", type=volume_format)
        if volume_format == "qcow2":
            # libvirt 9.0 writes qcow2 version 2 by default, and qemu-img
            # cannot resize a version 2 image that has snapshots.
            ET.SubElement(target, "compat").text = "1.1"
        return _to_xml(volume)

    def _disk_element(self, path, target, volume_format="qcow2"):
        disk = ET.Element("disk", type="file", device="disk")
        if self.driver == "qemu":
            ET.SubElement(disk, "driver", name="qemu", type=volume_format)
        ET.SubElement(disk, "source", file=path)
        ET.SubElement(disk, "target", dev=target, bus="scsi")
        return disk

    def _cdrom_element(self, target, path=None):
        cdrom = ET.Element("disk", type="file", device="cdrom")
        if self.driver == "qemu":
            ET.SubElement(cdrom, "driver", name="qemu", type="raw")
        if path:
            ET.SubElement(cdrom, "source", file=path)
        ET.SubElement(cdrom, "target", dev=target, bus="scsi")
        ET.SubElement(cdrom, "readonly")
        return cdrom

    def _interface_element(self, network, mac=None, usb_port=1):
        interface = ET.Element("interface", type="network")
        if mac:
            ET.SubElement(interface, "mac", address=mac)
        ET.SubElement(interface, "source", network=network)
        if self.driver == "qemu":
            # usb-net unplugs at once; a PCI NIC waits for the guest OS to
            # release it, which a guest without one never does.
            ET.SubElement(interface, "model", type="usb-net")
            # libvirt 9.0 does not know usb-net is a USB device: without a
            # full USB address it looks for a PCI slot ("Cannot
            # automatically add a new PCI bus") or starts QEMU with an
            # empty port.
            ET.SubElement(interface, "address", type="usb", bus="0",
                          port=str(usb_port))
        return interface

    def _domain_element(self, name, memory_mib, cpus):
        domain_type = {"qemu": self.config["domain_type"], "lxc": "lxc",
                       "test": "test"}[self.driver]
        domain = ET.Element("domain", type=domain_type)
        ET.SubElement(domain, "name").text = name
        ET.SubElement(domain, "memory", unit="MiB").text = str(memory_mib)
        ET.SubElement(domain, "vcpu").text = str(cpus)
        os_element = ET.SubElement(domain, "os")
        if self.driver == "lxc":
            ET.SubElement(os_element, "type").text = "exe"
            ET.SubElement(os_element, "init").text = self.config[
                "container_init"]
        else:
            ET.SubElement(os_element, "type").text = "hvm"
            ET.SubElement(os_element, "boot", dev="hd")
            # ACPI lets QEMU hot-plug and unplug devices.
            features = ET.SubElement(domain, "features")
            ET.SubElement(features, "acpi")
        devices = ET.SubElement(domain, "devices")
        if self.driver == "qemu":
            # One virtio-scsi controller carries the disks and the CD-ROM:
            # SCSI devices unplug synchronously, PCI disks do not.
            ET.SubElement(devices, "controller", type="scsi", index="0",
                          model="virtio-scsi")
            # The NICs are USB devices, one port each.
            ET.SubElement(devices, "controller", type="usb", index="0",
                          model="qemu-xhci", ports=str(USB_PORTS))
            channel = ET.SubElement(devices, "channel", type="unix")
            ET.SubElement(channel, "target", type="virtio",
                          name=GUEST_AGENT_CHANNEL)
        if self.driver == "lxc":
            ET.SubElement(devices, "console", type="pty")
        return domain

    def _validate_guest_spec(self, spec):
        """Check a create spec; return (cpus, memory MiB, hdd GiB or None)."""
        if self.driver == "hyperv":
            raise self.not_implemented("create guests",
                                       "the hyperv driver is not available")
        if spec.get("paravirtualized"):
            raise self.not_implemented(
                "create paravirtualized guests",
                "the %s driver runs full virtualization or containers only"
                % self.driver)
        cpus = spec.get("cpus", 1)
        memory = spec.get("memory", 512)
        hdd = spec.get("hdd")
        for key, value in (("cpus", cpus), ("memory", memory)):
            if not isinstance(value, int) or isinstance(value, bool) \
                    or value < 1:
                raise errors.InvalidArguments(
                    "invalid %s %r; expected a positive integer"
                    % (key, value))
        if hdd is not None and (not isinstance(hdd, int)
                                or isinstance(hdd, bool) or hdd < 1):
            raise errors.InvalidArguments(
                "invalid hdd %r; expected a positive number of GiB" % (hdd,))
        if self.driver == "lxc":
            if hdd is not None or spec.get("template") is not None:
                raise self.not_implemented("create guests with disks",
                                           DRIVER_GAPS["lxc"]["disks"])
            if not self.config["container_root"]:
                raise self.not_implemented(
                    "create containers",
                    "the container_root setting names no root directory")
        return cpus, memory, hdd

    def create_guest(self, spec):
        name = spec.get("name")
        cpus, memory, hdd = self._validate_guest_spec(spec)
        self._check_name_free(name)
        network = spec.get("network") or self.config["network"] or None
        if network is not None:
            self._network(network)

        template = None
        pool = None
        if spec.get("template") is not None:
            template = self._template_volume(spec["template"])
        if hdd is not None or template is not None:
            pool = self._default_pool(spec.get("storage_id"))
        elif spec.get("storage_id") is not None:
            self._pool(spec["storage_id"])

        capacity = hdd * GIB if hdd is not None else None
        if template is not None:
            template_size = self._call(template.info)[1]
            if capacity is not None and capacity < template_size:
                raise errors.InvalidArguments(
                    "hdd %d GiB is smaller than the template's %d GiB"
                    % (hdd, template_size // GIB))
            capacity = max(capacity or 0, template_size)
        volume_name = "%s-disk0.qcow2" % name
        if pool is not None:
            self._check_volume_name_free(pool, volume_name)

        domain_element = self._domain_element(name, memory, cpus)
        devices = domain_element.find("devices")
        created_volumes = []
        try:
            if pool is not None:
                volume_xml = self._volume_xml(volume_name, capacity)
                if template is not None:
                    volume = self._call(pool.createXMLFrom, volume_xml,
                                        template, 0)
                else:
                    volume = self._call(pool.createXML, volume_xml, 0)
                created_volumes.append(volume)
                devices.append(self._disk_element(
                    self._call(volume.path), "sda"))
            if self.driver == "lxc":
                filesystem = ET.SubElement(devices, "filesystem",
                                           type="mount")
                ET.SubElement(filesystem, "source",
                              dir=self.config["container_root"])
                ET.SubElement(filesystem, "target", dir="/")
                ET.SubElement(filesystem, "readonly")
            else:
                devices.append(self._cdrom_element(
                    "sdb" if pool is not None else "sda"))
            if network is not None:
                devices.append(self._interface_element(network))
            domain = self._call(self.conn.defineXML, _to_xml(domain_element))
        except errors.SimplestackError:
            self._delete_volumes(created_volumes)
            raise
        logger.info("created guest %s (%s) on %s", name,
                    domain.UUIDString(), self.host)
        return self._guest_from_domain(domain)

    def _delete_volumes(self, volumes):
        """Delete volumes made by a failed operation, logging failures."""
        for volume in volumes:
            try:
                self._call(volume.delete, 0)
            except errors.SimplestackError as error:
                logger.error("could not delete volume %s after a failed "
                             "operation: %s", volume.name(), error.message)

    # -- guest changes -----------------------------------------------------

    UPDATE_KEYS = ("name", "memory", "cpus", "hdd", "paravirtualized")

    def update_guest(self, guest_id, changes):
        domain = self._domain(guest_id)
        unknown = sorted(set(changes) - set(self.UPDATE_KEYS))
        if unknown:
            raise self.not_implemented(
                "update %s" % ", ".join(unknown),
                "the libvirt adapter changes only name, memory, cpus and hdd")
        self._check_update_types(changes)
        description = self._describe(domain, inactive=True, secure=True)
        state = self._state(domain)

        new_name = changes.get("name")
        if new_name is not None and new_name == description.name:
            new_name = None
        memory = changes.get("memory")
        if memory is not None and memory * KIB == description.memory_kib:
            memory = None
        cpus = changes.get("cpus")
        if cpus is not None and cpus == description.cpus:
            cpus = None
        if (new_name is not None or memory is not None
                or cpus is not None) and state != "STOPPED":
            raise errors.InvalidState(
                "guest %s is %s; stop it to change its name, memory or cpus"
                % (description.name, state))
        if new_name is not None:
            self._require("rename", "rename guests")
            self._check_name_free(new_name)
        grow = None
        if changes.get("hdd") is not None:
            grow = self._plan_hdd_growth(domain, description, changes["hdd"])

        # The rename goes first: it is the change libvirt is most likely to
        # reject, and nothing else has changed yet when it does.
        if new_name is not None:
            self._call(domain.rename, new_name, 0, domain=domain)
            description.root.find("name").text = new_name
        if memory is not None or cpus is not None:
            # One redefinition changes both at once, on every driver: the
            # LXC driver has no virDomainSetVcpusFlags.
            root = description.root
            if memory is not None:
                root.find("memory").text = str(memory * KIB)
                root.find("memory").set("unit", "KiB")
                current = root.find("currentMemory")
                if current is not None:
                    root.remove(current)
            if cpus is not None:
                vcpu = root.find("vcpu")
                vcpu.text = str(cpus)
                vcpu.attrib.pop("current", None)
            self._call(self.conn.defineXML, _to_xml(root))
        if grow is not None:
            self._grow_disk(domain, *grow)
        return self._guest_from_domain(domain)

    def _check_update_types(self, changes):
        """Reject values of the wrong type before anything changes."""
        for key in ("memory", "cpus"):
            value = changes.get(key)
            if isinstance(value, dict):
                # Xen's {memory_target, ...} and {vcpus_at_startup, ...}.
                raise self.not_implemented(
                    "set %s as a map" % key,
                    "libvirt guests take one integer for %s" % key)
            if value is not None and (not isinstance(value, int)
                                      or isinstance(value, bool)
                                      or value < 1):
                raise errors.InvalidArguments(
                    "invalid %s %r; expected a positive integer"
                    % (key, value))
        paravirtualized = changes.get("paravirtualized")
        if paravirtualized not in (None, False):
            # True, or Xen's PV kernel arguments as a string.
            raise self.not_implemented(
                "make a guest paravirtualized",
                "the %s driver runs full virtualization or containers only"
                % self.driver)
        if changes.get("name") is not None:
            _validate_name("guest", changes["name"])

    def _plan_hdd_growth(self, domain, description, hdd):
        """Check a new hdd total; return (disk, new size in bytes) or None."""
        if not isinstance(hdd, int) or isinstance(hdd, bool) or hdd < 0:
            raise errors.InvalidArguments(
                "invalid hdd %r; expected a number of GiB" % (hdd,))
        sizes = self._disk_sizes(domain, description)
        current = sum(sizes.get(disk.target, 0) for disk in description.disks)
        if hdd * GIB == current or (hdd == current // GIB
                                    and hdd * GIB < current):
            return None
        self._require("disks", "change the disk size")
        if hdd * GIB < current:
            raise errors.InvalidArguments(
                "hdd %d GiB is smaller than the guest's disks (%d GiB); "
                "disks can only grow" % (hdd, current // GIB))
        if not description.disks:
            raise errors.InvalidArguments(
                "guest %s has no disk to grow" % description.name)
        last = description.disks[-1]
        new_size = sizes.get(last.target, 0) + hdd * GIB - current
        self._check_growable(last)
        return last, new_size

    def _check_growable(self, disk):
        self._require("volume_resize", "grow disks")
        if disk.path is None or self._volume_by_path(disk.path) is None:
            raise self.not_implemented(
                "grow disk %s" % disk.target,
                "its image is not a storage volume")

    def _grow_disk(self, domain, disk, new_size):
        if self._call(domain.isActive, domain=domain):
            # A running QEMU must learn the new size from libvirt itself.
            self._call(domain.blockResize, disk.target, new_size,
                       libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES, domain=domain)
        else:
            volume = self._volume_by_path(disk.path)
            self._call(volume.resize, new_size, 0)

    def delete_guest(self, guest_id):
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        volumes = [volume for volume in
                   (self._volume_by_path(disk.path)
                    for disk in description.disks if disk.path)
                   if volume is not None]

        if self._call(domain.isActive, domain=domain):
            self._call(domain.destroy, domain=domain)
        # Internal snapshots live inside the qcow2 files deleted below, so
        # dropping their metadata loses nothing else.
        flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                 | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        if self.driver == "qemu":
            flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        elif self.driver == "lxc":
            # The LXC driver rejects every undefine flag, and has neither
            # snapshots nor managed saves to drop.
            flags = 0
        self._call(domain.undefineFlags, flags, domain=domain)
        for volume in volumes:
            self._call(volume.delete, 0)
        logger.info("deleted guest %s (%s) and %d volumes on %s",
                    description.name, description.uuid, len(volumes),
                    self.host)

    # -- power -------------------------------------------------------------

    # action -> (states it starts from, binding method name)
    POWER_TRANSITIONS = {
        "start": (("STOPPED",), "create"),
        "stop": (("STARTED",), "shutdown"),
        "force_stop": (("STARTED", "PAUSED", "UNKNOWN"), "destroy"),
        "pause": (("STARTED",), "suspend"),
        "resume": (("PAUSED",), "resume"),
    }

    def set_power(self, guest_id, action):
        if action not in self.POWER_TRANSITIONS:
            raise errors.InvalidArguments(
                "invalid power action %r; expected one of %s"
                % (action, ", ".join(base.POWER_ACTIONS)))
        domain = self._domain(guest_id)
        allowed, method = self.POWER_TRANSITIONS[action]
        native_state = self._call(domain.state, domain=domain)[0]
        state = STATE_MAP.get(native_state, "UNKNOWN")
        if state not in allowed:
            raise errors.InvalidState(
                "cannot %s guest %s: it is %s"
                % (action.replace("_", " "), guest_id, state))
        if action == "resume" and \
                native_state == libvirt.VIR_DOMAIN_PMSUSPENDED:
            self._call(domain.pMWakeup, 0, domain=domain)
        elif action == "stop" and self.driver == "lxc":
            # The LXC driver's default shutdown returns success and leaves
            # the container running (libvirt 9.0); SIGTERM to its init
            # reaches an init that handles it.
            self._call(domain.shutdownFlags,
                       libvirt.VIR_DOMAIN_SHUTDOWN_SIGNAL, domain=domain)
        else:
            self._call(getattr(domain, method), domain=domain)
        # An ACPI shutdown returns before the guest acts on it (and a guest
        # without an OS never does), so this is the state right now.
        return self._state(domain)

    def reboot_guest(self, guest_id, force=False):
        domain = self._domain(guest_id)
        state = self._state(domain)
        if state != "STARTED":
            raise errors.InvalidState("cannot reboot guest %s: it is %s"
                                      % (guest_id, state))
        if force and self.driver == "lxc":
            # The LXC driver has no virDomainReset (libvirt 9.0); a hard
            # restart of a container is a destroy and a start.
            self._call(domain.destroy, domain=domain)
            self._call(domain.create, domain=domain)
        elif force:
            self._call(domain.reset, 0, domain=domain)
        else:
            self._call(domain.reboot, 0, domain=domain)
        return self._state(domain)

    # -- clone, export, import ---------------------------------------------

    def clone_guest(self, guest_id, name):
        domain = self._domain(guest_id)
        state = self._state(domain)
        if state != "STOPPED":
            raise errors.InvalidState("cannot clone guest %s: it is %s; stop "
                                      "it first" % (guest_id, state))
        self._check_name_free(name)
        description = self._describe(domain, inactive=True, secure=True)

        copies = []
        for disk in description.disks:
            volume = self._volume_by_path(disk.path) if disk.path else None
            if volume is None:
                raise self.not_implemented(
                    "clone guest %s" % description.name,
                    "disk %s is not a storage volume" % disk.target)
            pool = self._call(volume.storagePoolLookupByVolume)
            copy_name = "%s-disk%d.%s" % (name, disk.number,
                                          disk.format or "qcow2")
            self._check_volume_name_free(pool, copy_name)
            copies.append((disk, volume, pool, copy_name))

        root = description.root
        root.find("name").text = name
        root.remove(root.find("uuid"))
        for interface in root.findall("devices/interface"):
            # libvirt generates a new MAC for an interface without one.
            mac = interface.find("mac")
            if mac is not None:
                interface.remove(mac)
            target = interface.find("target")
            if target is not None:
                interface.remove(target)
        created = []
        try:
            for disk, volume, pool, copy_name in copies:
                capacity = self._call(volume.info)[1]
                copy = self._call(pool.createXMLFrom, self._volume_xml(
                    copy_name, capacity, disk.format or "qcow2"), volume, 0)
                created.append(copy)
                disk.element.find("source").set("file",
                                                self._call(copy.path))
            clone = self._call(self.conn.defineXML, _to_xml(root))
        except errors.SimplestackError:
            self._delete_volumes(created)
            raise
        logger.info("cloned guest %s to %s (%s) on %s", description.name,
                    name, clone.UUIDString(), self.host)
        return self._guest_from_domain(clone)

    def export_guest(self, guest_id):
        self._require("volume_stream", "export guests")
        domain = self._domain(guest_id)
        state = self._state(domain)
        if state != "STOPPED":
            raise errors.InvalidState("cannot export guest %s: it is %s; "
                                      "stop it first" % (guest_id, state))
        description = self._describe(domain, inactive=True)
        if not description.disks:
            raise errors.InvalidArguments(
                "guest %s has no disk to export" % description.name)
        # NOTE: only the first disk leaves; the API has one image per guest.
        disk = description.disks[0]
        volume = self._volume_by_path(disk.path) if disk.path else None
        if volume is None:
            raise self.not_implemented(
                "export guest %s" % description.name,
                "disk %s is not a storage volume" % disk.target)
        length = self._call(volume.infoFlags,
                            libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2]
        stream = self._call(self.conn.newStream, 0)
        self._call(volume.download, stream, 0, 0, 0)
        return base.ImageStream(
            chunks=self._receive_chunks(stream),
            content_type=("application/x-qemu-disk"
                          if disk.format == "qcow2"
                          else "application/octet-stream"),
            filename="%s.%s" % (description.name, disk.format or "img"),
            length=length,
            close=lambda: self._close_stream(stream))

    def _receive_chunks(self, stream):
        while True:
            data = self._call(stream.recv, STREAM_CHUNK_SIZE)
            if not data:
                break
            yield data
        self._call(stream.finish)

    def _close_stream(self, stream):
        """Abort ``stream`` if it is unfinished, then close the connection."""
        try:
            stream.abort()
        except libvirt.libvirtError:
            # A finished stream cannot be aborted; nothing is left to free.
            pass
        self.close()

    IMPORT_CONTENT_TYPES = ("application/x-qemu-disk",
                            "application/octet-stream",
                            "application/json", None)

    def import_guest(self, stream, length, content_type, name=None,
                     storage_id=None):
        self._require("volume_stream", "import guests")
        if self.driver == "hyperv":
            raise self.not_implemented("import guests",
                                       "the hyperv driver is not available")
        if content_type not in self.IMPORT_CONTENT_TYPES:
            raise self.not_implemented(
                "import %s images" % content_type,
                "libvirt imports qcow2 or raw disk images only")
        if not isinstance(length, int) or length <= 0:
            raise errors.InvalidArguments(
                "invalid image length %r; expected a positive number of "
                "bytes" % (length,))
        name = name or "import-%s" % uuid.uuid4().hex[:8]
        self._check_name_free(name)
        pool = self._default_pool(storage_id)

        first = _read_exactly(stream, min(length, STREAM_CHUNK_SIZE))
        if first.startswith(QCOW2_MAGIC):
            volume_format = "qcow2"
            capacity = _qcow2_virtual_size(first)
        elif len(first) >= 262 and first[257:262] == b"ustar":
            raise self.not_implemented(
                "import tar archives (XVA, OVA)",
                "libvirt imports qcow2 or raw disk images only")
        else:
            volume_format = "raw"
            capacity = length
        volume_name = "%s-disk0.%s" % (name, volume_format)
        self._check_volume_name_free(pool, volume_name)

        volume = self._call(pool.createXML, self._volume_xml(
            volume_name, capacity, volume_format), 0)
        try:
            self._upload(volume, stream, first, length)
            domain_element = self._domain_element(name, 512, 1)
            devices = domain_element.find("devices")
            devices.append(self._disk_element(self._call(volume.path), "sda",
                                              volume_format))
            devices.append(self._cdrom_element("sdb"))
            if self.config["network"]:
                devices.append(self._interface_element(
                    self.config["network"]))
            domain = self._call(self.conn.defineXML, _to_xml(domain_element))
        except BaseException:
            self._delete_volumes([volume])
            raise
        logger.info("imported guest %s (%s, %s, %d bytes) on %s", name,
                    domain.UUIDString(), volume_format, length, self.host)
        return self._guest_from_domain(domain)

    def _upload(self, volume, source, first, length):
        """Send ``length`` bytes (``first`` then the rest of ``source``)."""
        stream = self._call(self.conn.newStream, 0)
        self._call(volume.upload, stream, 0, length, 0)
        try:
            sent = 0
            data = first
            while True:
                view = memoryview(data)
                while view:
                    count = self._call(stream.send, bytes(view))
                    view = view[count:]
                sent += len(data)
                if sent >= length:
                    break
                data = _read_exactly(source,
                                     min(STREAM_CHUNK_SIZE, length - sent))
                if not data:
                    raise errors.InvalidArguments(
                        "the image ended after %d of %d bytes"
                        % (sent, length))
            self._call(stream.finish)
        except BaseException:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            raise

    # -- disks -------------------------------------------------------------

    def _disk_record(self, disk, size):
        name = os.path.basename(disk.path) if disk.path else None
        return {
            "id": str(disk.number),
            "name": name,
            "number": disk.number,
            "size": size // GIB,
            "extra_info": disk.path,
        }

    def list_disks(self, guest_id):
        domain = self._domain(guest_id)
        description = self._describe(domain)
        sizes = self._disk_sizes(domain, description)
        return [self._disk_record(disk, sizes.get(disk.target, 0))
                for disk in description.disks]

    def _find_disk(self, description, disk_id):
        for disk in description.disks:
            if str(disk.number) == str(disk_id):
                return disk
        raise errors.EntityNotFound("disk %s of guest %s not found"
                                    % (disk_id, description.name))

    def get_disk(self, guest_id, disk_id):
        domain = self._domain(guest_id)
        description = self._describe(domain)
        disk = self._find_disk(description, disk_id)
        sizes = self._disk_sizes(domain, description)
        return self._disk_record(disk, sizes.get(disk.target, 0))

    def _device_flags(self, domain):
        """Change the persistent definition, and the live guest if running."""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if self._call(domain.isActive, domain=domain):
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        return flags

    def create_disk(self, guest_id, spec):
        self._require("disks", "add disks")
        self._require("device_hotplug", "add disks")
        size = spec.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise errors.InvalidArguments(
                "invalid size %r; expected a positive number of GiB"
                % (size,))
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        pool = self._default_pool(spec.get("storage_id"))
        target = _free_target(description)
        number = _target_index(target)
        volume_name = spec.get("name") or "%s-disk%d.qcow2" % (
            description.name, number)
        if "/" in volume_name:
            raise errors.InvalidArguments(
                "invalid disk name %r; it may not contain '/'" % volume_name)
        self._check_volume_name_free(pool, volume_name)

        volume = self._call(pool.createXML,
                            self._volume_xml(volume_name, size * GIB), 0)
        try:
            disk_element = self._disk_element(self._call(volume.path), target)
            self._call(domain.attachDeviceFlags, _to_xml(disk_element),
                       self._device_flags(domain), domain=domain)
        except errors.SimplestackError:
            self._delete_volumes([volume])
            raise
        return self.get_disk(guest_id, number)

    def update_disk(self, guest_id, disk_id, changes):
        domain = self._domain(guest_id)
        description = self._describe(domain)
        disk = self._find_disk(description, disk_id)
        unknown = sorted(set(changes) - {"name", "size"})
        if unknown:
            raise errors.InvalidArguments(
                "unknown disk fields: %s" % ", ".join(unknown))
        current_name = os.path.basename(disk.path) if disk.path else None
        if changes.get("name") not in (None, current_name):
            raise self.not_implemented(
                "rename disks",
                "a disk's name is its storage volume's name, and libvirt "
                "cannot rename volumes")
        size = changes.get("size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool):
                raise errors.InvalidArguments(
                    "invalid size %r; expected a number of GiB" % (size,))
            current = self._disk_sizes(domain, description).get(
                disk.target, 0)
            if size * GIB < current and size != current // GIB:
                raise errors.InvalidArguments(
                    "disk %s is %d GiB; it cannot shrink to %d GiB"
                    % (disk_id, current // GIB, size))
            if size * GIB > current:
                self._check_growable(disk)
                self._grow_disk(domain, disk, size * GIB)
        return self.get_disk(guest_id, disk_id)

    def delete_disk(self, guest_id, disk_id):
        self._require("device_hotplug", "delete disks")
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        disk = self._find_disk(description, disk_id)
        volume = self._volume_by_path(disk.path) if disk.path else None
        self._call(domain.detachDeviceFlags, _to_xml(disk.element),
                   self._device_flags(domain), domain=domain)
        if volume is not None:
            self._call(volume.delete, 0)

    # -- media device ------------------------------------------------------

    def _cdrom(self, description):
        if not description.cdroms:
            raise errors.InvalidState("guest %s has no CD-ROM drive"
                                      % description.name)
        return description.cdroms[0]

    def get_media(self, guest_id):
        self._require("media", "show the media device")
        domain = self._domain(guest_id)
        cdrom = self._cdrom(self._describe(domain))
        if not cdrom.path:
            return {"name": None}
        volume = self._volume_by_path(cdrom.path)
        return {"name": volume.name() if volume is not None
                else os.path.basename(cdrom.path)}

    def set_media(self, guest_id, name):
        self._require("media", "change the media device")
        domain = self._domain(guest_id)
        cdrom = self._cdrom(self._describe(domain))
        self._require("device_update", "change the media device")
        path = None
        if name is not None:
            volumes = self._volumes_named(name)
            if not volumes:
                raise errors.EntityNotFound("image %s not found" % name)
            if len(volumes) > 1:
                raise errors.Conflict(
                    "image name %r matches volumes in %d storages"
                    % (name, len(volumes)))
            path = self._call(volumes[0].path)
        element = self._cdrom_element(cdrom.target, path)
        self._call(domain.updateDeviceFlags, _to_xml(element),
                   self._device_flags(domain), domain=domain)
        return self.get_media(guest_id)

    # -- network interfaces ------------------------------------------------

    @staticmethod
    def _nic_record(interface):
        return {
            "id": interface.mac,
            "number": interface.number,
            "mac": interface.mac,
            "network": interface.network,
            # libvirt has no per-NIC locking mode or address allow-lists.
            "locking_mode": None,
            "ipv4_allowed": [],
            "ipv6_allowed": [],
            "rate_limit": interface.rate_limit,
        }

    def list_nics(self, guest_id):
        description = self._describe(self._domain(guest_id))
        return [self._nic_record(interface)
                for interface in description.interfaces]

    @staticmethod
    def _find_interface(description, mac):
        normalized = str(mac).lower().replace("-", ":")
        for interface in description.interfaces:
            if interface.mac == normalized:
                return interface
        raise errors.EntityNotFound("network interface %s of guest %s not "
                                    "found" % (mac, description.name))

    def get_nic(self, guest_id, mac):
        description = self._describe(self._domain(guest_id))
        return self._nic_record(self._find_interface(description, mac))

    def create_nic(self, guest_id, spec):
        self._require("device_hotplug", "add network interfaces")
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        network = spec.get("network")
        if not network:
            raise errors.InvalidArguments("a network name is required")
        self._network(network)
        mac = spec.get("mac")
        if mac is not None:
            mac = _normalize_mac(mac)
            if any(interface.mac == mac
                   for interface in description.interfaces):
                raise errors.Conflict("guest %s already has a network "
                                      "interface with MAC %s"
                                      % (description.name, mac))
        else:
            mac = _random_mac()
        usb_port = 1
        if self.driver == "qemu":
            usb_port = _free_usb_port(description)
        element = self._interface_element(network, mac, usb_port)
        self._call(domain.attachDeviceFlags, _to_xml(element),
                   self._device_flags(domain), domain=domain)
        return self.get_nic(guest_id, mac)

    NIC_UPDATE_KEYS = ("network", "active", "rate_limit")
    NIC_UNSUPPORTED_KEYS = ("locking_mode", "ipv4_allowed", "ipv6_allowed")

    def update_nic(self, guest_id, mac, changes):
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        interface = self._find_interface(description, mac)
        unsupported = sorted(key for key in changes
                             if key in self.NIC_UNSUPPORTED_KEYS)
        if unsupported:
            raise self.not_implemented(
                "set %s on network interfaces" % ", ".join(unsupported),
                "libvirt has no per-interface locking mode or address "
                "allow-lists")
        unknown = sorted(set(changes) - set(self.NIC_UPDATE_KEYS))
        if unknown:
            raise errors.InvalidArguments(
                "unknown network interface fields: %s" % ", ".join(unknown))
        self._require("device_update", "update network interfaces")
        if self.driver == "lxc" and self._call(domain.isActive,
                                               domain=domain):
            raise self.not_implemented(
                "update network interfaces of a running container",
                "the LXC driver changes the devices of stopped containers "
                "only")

        element = interface.element
        if changes.get("network") is not None:
            self._network(changes["network"])
            source = element.find("source")
            element.set("type", "network")
            source.attrib.clear()
            source.set("network", changes["network"])
        if changes.get("active") is not None:
            link = element.find("link")
            if link is None:
                link = ET.SubElement(element, "link")
            link.set("state", "up" if changes["active"] else "down")
        if "rate_limit" in changes:
            self._set_rate_limit(element, changes["rate_limit"])
        self._call(domain.updateDeviceFlags, _to_xml(element),
                   self._device_flags(domain), domain=domain)
        return self.get_nic(guest_id, mac)

    @staticmethod
    def _set_rate_limit(element, rate_limit):
        bandwidth = element.find("bandwidth")
        if bandwidth is not None:
            element.remove(bandwidth)
        if rate_limit is None:
            return
        if (not isinstance(rate_limit, int) or isinstance(rate_limit, bool)
                or rate_limit < 8 * KIB):
            raise errors.InvalidArguments(
                "invalid rate_limit %r; expected at least 8192 bits per "
                "second (libvirt counts whole KiB/s)" % (rate_limit,))
        average = str(rate_limit // (8 * KIB))
        bandwidth = ET.SubElement(element, "bandwidth")
        ET.SubElement(bandwidth, "inbound", average=average)
        ET.SubElement(bandwidth, "outbound", average=average)

    def delete_nic(self, guest_id, mac):
        self._require("device_hotplug", "delete network interfaces")
        domain = self._domain(guest_id)
        description = self._describe(domain, inactive=True)
        interface = self._find_interface(description, mac)
        self._call(domain.detachDeviceFlags, _to_xml(interface.element),
                   self._device_flags(domain), domain=domain)

    # -- networks ----------------------------------------------------------

    def _network_record(self, network):
        root = ET.fromstring(self._call(network.XMLDesc, 0))
        bridge = root.find("bridge")
        tag = root.find("vlan/tag")
        forward = root.find("forward")
        description = root.findtext(
            "metadata/{%s}description" % METADATA_NAMESPACE)
        return {
            "id": network.UUIDString().lower(),
            "name_label": network.name(),
            "name_description": description or "",
            "bridge": bridge.get("name") if bridge is not None else None,
            "vlan": int(tag.get("id")) if tag is not None else None,
            "other_config": {
                "forward_mode": (forward.get("mode", "nat")
                                 if forward is not None else "isolated"),
                "active": bool(self._call(network.isActive)),
                "persistent": bool(self._call(network.isPersistent)),
            },
        }

    def list_networks(self):
        networks = self._call(self.conn.listAllNetworks, 0)
        return [self._network_record(network) for network in networks]

    def get_network(self, network_id):
        return self._network_record(self._network(network_id))

    def create_network(self, spec):
        if self.driver == "hyperv":
            raise self.not_implemented("create networks",
                                       "the hyperv driver is not available")
        name = spec.get("name")
        _validate_name("network", name)
        if spec.get("other_config"):
            raise self.not_implemented(
                "set other_config on networks",
                "libvirt networks have no free-form configuration")
        try:
            self._call(self.conn.networkLookupByName, name)
        except errors.EntityNotFound:
            pass
        else:
            raise errors.Conflict("a network named %r already exists" % name)

        vlan = spec.get("vlan")
        if vlan is not None and (not isinstance(vlan, int)
                                 or isinstance(vlan, bool)
                                 or not 0 <= vlan <= 4095):
            raise errors.InvalidArguments(
                "invalid vlan %r; expected an integer from 0 to 4095"
                % (vlan,))
        root = ET.Element("network")
        ET.SubElement(root, "name").text = name
        if spec.get("description"):
            metadata = ET.SubElement(root, "metadata")
            ET.SubElement(metadata, "{%s}description"
                          % METADATA_NAMESPACE).text = spec["description"]
        if spec.get("from_network") is not None:
            self._vlan_network_xml(root, spec["from_network"], vlan)
        elif vlan is not None:
            raise self.not_implemented(
                "create an isolated network with a VLAN tag",
                "libvirt tags VLANs only on Open vSwitch bridges; name one "
                "in from_network")
        # Without <forward> and <ip> the network is isolated: guests on it
        # reach each other and nothing else.

        network = self._call(self.conn.networkDefineXML, _to_xml(root))
        try:
            self._call(network.create)
            self._call(network.setAutostart, 1)
        except errors.SimplestackError:
            try:
                self._call(network.undefine)
            except errors.SimplestackError as error:
                logger.error("could not undefine network %s after a failed "
                             "start: %s", name, error.message)
            raise
        logger.info("created network %s on %s", name, self.host)
        return self._network_record(network)

    def _vlan_network_xml(self, root, from_network, vlan):
        """Fill ``root`` as a VLAN on ``from_network``'s Open vSwitch bridge."""
        if vlan is None:
            raise errors.InvalidArguments(
                "from_network needs a vlan: the new network is a VLAN on it")
        self._require("vlan", "create VLAN networks")
        parent = ET.fromstring(self._call(
            self._network(from_network).XMLDesc, 0))
        bridge = parent.find("bridge")
        if parent.find("virtualport[@type='openvswitch']") is None or \
                bridge is None:
            raise self.not_implemented(
                "create a VLAN on network %s" % from_network,
                "libvirt tags VLANs only on Open vSwitch bridges, and this "
                "network is not one")
        for existing in self._call(self.conn.listAllNetworks, 0):
            other = ET.fromstring(self._call(existing.XMLDesc, 0))
            other_bridge = other.find("bridge")
            other_tag = other.find("vlan/tag")
            if (other_bridge is not None and other_tag is not None
                    and other_bridge.get("name") == bridge.get("name")
                    and int(other_tag.get("id")) == vlan):
                raise errors.Conflict(
                    "network %s already has VLAN %d on bridge %s"
                    % (existing.name(), vlan, bridge.get("name")))
        ET.SubElement(root, "forward", mode="bridge")
        ET.SubElement(root, "bridge", name=bridge.get("name"))
        ET.SubElement(root, "virtualport", type="openvswitch")
        ET.SubElement(ET.SubElement(root, "vlan"), "tag", id=str(vlan))

    # -- snapshots ---------------------------------------------------------

    def _snapshot_record(self, snapshot):
        root = ET.fromstring(self._call(snapshot.getXMLDesc, 0))
        created = root.findtext("creationTime")
        sources = {}
        for disk in root.findall("domain/devices/disk"):
            target = disk.find("target")
            source = disk.find("source")
            if target is not None and source is not None:
                sources[target.get("dev")] = source.get("file")
        # path: where the snapshot's data lives, which for an internal
        # snapshot is the image of its first disk.
        path = None
        for disk in root.findall("disks/disk"):
            kind = disk.get("snapshot")
            if kind == "internal":
                path = sources.get(disk.get("name"))
            elif kind == "external" and disk.find("source") is not None:
                path = disk.find("source").get("file")
            if path:
                break
        return {
            "id": snapshot.getName(),
            "name": root.findtext("description") or snapshot.getName(),
            "state": SNAPSHOT_STATE_MAP.get(root.findtext("state"),
                                            "UNKNOWN"),
            "path": path,
            "created": _iso8601(created) if created else None,
        }

    def _snapshot(self, domain, snapshot_id):
        snapshot_id = str(snapshot_id)
        # The adapter names snapshots with lower-case UUIDs, and ids are
        # accepted in any case.
        names = [snapshot_id]
        if _is_uuid(snapshot_id) and snapshot_id.lower() != snapshot_id:
            names.append(snapshot_id.lower())
        for name in names:
            try:
                return self._call(domain.snapshotLookupByName, name, 0,
                                  domain=domain)
            except errors.EntityNotFound as error:
                not_found = error
        raise errors.EntityNotFound("snapshot %s not found" % snapshot_id,
                                    original=not_found.original)

    def list_snapshots(self, guest_id):
        self._require("snapshots", "list snapshots")
        domain = self._domain(guest_id)
        snapshots = self._call(domain.listAllSnapshots, 0, domain=domain)
        records = [self._snapshot_record(snapshot) for snapshot in snapshots]
        return sorted(records, key=lambda record: record["id"])

    def get_snapshot(self, guest_id, snapshot_id):
        self._require("snapshots", "show a snapshot")
        domain = self._domain(guest_id)
        return self._snapshot_record(self._snapshot(domain, snapshot_id))

    def create_snapshot(self, guest_id, name=None):
        self._require("snapshots", "create snapshots")
        domain = self._domain(guest_id)
        self._check_snapshot_possible(domain)
        root = ET.Element("domainsnapshot")
        ET.SubElement(root, "name").text = str(uuid.uuid4())
        ET.SubElement(root, "description").text = name or _now_iso8601()
        snapshot = self._call(domain.snapshotCreateXML, _to_xml(root), 0,
                              domain=domain)
        return self._snapshot_record(snapshot)

    def _check_snapshot_possible(self, domain):
        """Raise InvalidState for a live QEMU guest with a usb-net NIC.

        A snapshot of a live guest saves its memory the way a migration
        does, and QEMU 7.2 marks usb-net as not migratable, so libvirt
        would reject the snapshot after checking every other condition.
        """
        if self.driver != "qemu":
            return
        state = self._state(domain)
        if state == "STOPPED":
            return
        description = self._describe(domain)
        for interface in description.interfaces:
            model = interface.element.find("model")
            if model is not None and model.get("type") == "usb-net":
                raise errors.InvalidState(
                    "cannot snapshot guest %s while it is %s: QEMU cannot "
                    "save the state of its usb-net network interface %s; "
                    "stop the guest or remove the interface first"
                    % (description.name, state, interface.mac))

    def delete_snapshot(self, guest_id, snapshot_id):
        self._require("snapshots", "delete snapshots")
        domain = self._domain(guest_id)
        snapshot = self._snapshot(domain, snapshot_id)
        self._call(snapshot.delete, 0, domain=domain)

    def revert_snapshot(self, guest_id, snapshot_id):
        self._require("snapshots", "revert to snapshots")
        domain = self._domain(guest_id)
        snapshot = self._snapshot(domain, snapshot_id)
        self._call(domain.revertToSnapshot, snapshot, 0, domain=domain)
        return self._guest_from_domain(domain)

    # -- tags --------------------------------------------------------------

    def list_tags(self, guest_id):
        return sorted(self._describe(self._domain(guest_id)).tags)

    def _write_tags(self, domain, tags):
        root = ET.Element("tags")
        for tag in sorted(tags):
            ET.SubElement(root, "tag").text = tag
        self._call(domain.setMetadata, libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                   _to_xml(root), METADATA_PREFIX, METADATA_NAMESPACE,
                   self._device_flags(domain), domain=domain)

    def add_tag(self, guest_id, name):
        if not isinstance(name, str) or not name:
            raise errors.InvalidArguments("invalid tag %r; expected a "
                                          "non-empty string" % (name,))
        domain = self._domain(guest_id)
        # NOTE: the lock serializes the read and the write of the tags in
        # this process only; two service processes can still lose a tag.
        with _tags_lock:
            tags = self._describe(domain).tags
            if name not in tags:
                tags.add(name)
                self._write_tags(domain, tags)
        return sorted(tags)

    def delete_tag(self, guest_id, name):
        domain = self._domain(guest_id)
        with _tags_lock:
            tags = self._describe(domain).tags
            if name in tags:
                tags.discard(name)
                self._write_tags(domain, tags)


def _version_string(number):
    """Format libvirt's version number (major * 1e6 + minor * 1e3 + micro)."""
    major, rest = divmod(number, 1000000)
    minor, micro = divmod(rest, 1000)
    return "%d.%d.%d" % (major, minor, micro)


def _random_mac():
    """Return a random MAC in QEMU's locally administered 52:54:00 range."""
    tail = uuid.uuid4().bytes[:3]
    return "52:54:00:%02x:%02x:%02x" % tuple(tail)


def _read_exactly(stream, size):
    """Read up to ``size`` bytes, retrying short reads until EOF."""
    parts = []
    remaining = size
    while remaining > 0:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)
