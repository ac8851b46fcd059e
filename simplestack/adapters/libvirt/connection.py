"""Opening and closing the connection to libvirt.

Besides the adapter's methods, this module keeps the process-wide
connections to test driver URIs and the event loop thread that runs
keepalive probes.
"""

import logging
import threading
import time
import urllib.parse

import libvirt

from simplestack import errors
from simplestack.adapters.libvirt.calls import (
    AUTH_CODES, CONNECTION_CODES, MISSING_DRIVER_CODES)
from simplestack.adapters.libvirt.settings import (
    TEST_DEFAULT_HOST, TEST_DEFAULT_URI, is_tls_uri)

logger = logging.getLogger(__name__)


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


# -- bounded opening of remote connections -------------------------------------

#: Remote opens that may run at once in worker threads. A host that accepts
#: the connection and never replies holds its thread until it hangs up,
#: so this bounds the threads that hung hosts can hold; past it, opens
#: fail as timed out.
MAX_PENDING_OPENS = 16

_open_slots = threading.BoundedSemaphore(MAX_PENDING_OPENS)


class OpenTimeout(Exception):
    def __init__(self, seconds):
        super().__init__("no connection within %s s" % seconds)
        self.seconds = seconds


def open_within(uri, auth, timeout):
    """Return ``libvirt.openAuth(uri, auth, 0)``, or raise OpenTimeout
    after ``timeout`` seconds.

    virConnectOpenAuth has no timeout of its own: it resolves the name,
    connects, shakes hands and authenticates for as long as the host lets
    it. It runs here in a worker thread, which is abandoned when late and
    closes the connection if it is made after all. The thread ends when
    the host replies or drops the connection, or when TCP gives up.
    """
    deadline = time.monotonic() + timeout
    if not _open_slots.acquire(timeout=timeout):
        raise OpenTimeout(timeout)
    lock = threading.Lock()
    outcome = {}
    finished = threading.Event()

    def run():
        connection = None
        try:
            connection = libvirt.openAuth(uri, auth, 0)
        except Exception as error:  # raised again in the waiting thread
            outcome["error"] = error
        finally:
            _open_slots.release()
        with lock:
            abandoned = outcome.get("abandoned", False)
            if not abandoned:
                outcome["connection"] = connection
            finished.set()
        if abandoned and connection is not None:
            logger.info("closing the libvirt connection that opened after "
                        "its %s s connect timeout", timeout)
            _close_quietly(connection)

    threading.Thread(target=run, name="libvirt-open", daemon=True).start()
    finished.wait(max(0, deadline - time.monotonic()))
    with lock:
        if not finished.is_set():
            outcome["abandoned"] = True
            raise OpenTimeout(timeout)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["connection"]


def _close_quietly(connection):
    try:
        connection.close()
    except libvirt.libvirtError as error:
        logger.warning("closing a late libvirt connection failed: %s",
                       error.get_error_code())


def with_tls_parameters(uri, config):
    """Return ``uri`` with the ``pkipath`` and ``no_verify`` parameters of
    the type's TLS settings, for TLS URIs."""
    if not is_tls_uri(uri):
        return uri
    parameters = []
    if config["pkipath"]:
        parameters.append(("pkipath", config["pkipath"]))
    if config["insecure"]:
        parameters.append(("no_verify", "1"))
    if not parameters:
        return uri
    separator = "&" if "?" in uri else "?"
    return uri + separator + urllib.parse.urlencode(
        parameters, safe="/", quote_via=urllib.parse.quote)


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


def host_without_port(host):
    """Return the URL host ``host`` without its port or IPv6 brackets."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


# -- the adapter's connection -----------------------------------------------

class ConnectionMixin:
    """Methods of LibvirtAdapter that open, hold and close its connection.

    ``self._conn`` is the virConnect, or None while closed.
    """

    def _host_without_port(self):
        return host_without_port(self.host)

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
        uri = self.config["uri_template"].format(host=self.host)
        return with_tls_parameters(uri, self.config), True

    def open(self):
        if self._conn is not None:
            return
        # Network handles that guest_records kept belong to an earlier
        # connection.
        self._network_handles = None
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
                if self.config["insecure"] and is_tls_uri(uri):
                    logger.warning(
                        "connecting to libvirt host %s without verifying "
                        "its TLS certificate (insecure = true)", self.host)
                self._conn = open_within(uri, self._auth(),
                                         self.config["connect_timeout"])
            else:
                self._conn = libvirt.open(uri)
        except libvirt.libvirtError as error:
            raise self._translate_open_error(error, uri) from error
        except OpenTimeout as error:
            raise errors.HypervisorTimeout(
                "%s at %s did not complete the connection within %s s"
                % (self.hypervisor_name, self.host, error.seconds),
                original=error) from None
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
        # The kept network handles hold references on the connection, so
        # they go first, before the close that drops the last reference.
        self._network_handles = None
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

    # -- reuse across requests (see simplestack.sessions) ---------------------

    @classmethod
    def can_reuse_connections(cls, config):
        # The test driver has no login to save, and its connections to one
        # URI share one in-memory host (the process keeps one open), so a
        # pool would change nothing but the count of open connections.
        return config["driver"] != "test"

    @classmethod
    def pool_credentials(cls, config, host, credentials):
        # The local unix socket ignores the token's credentials, because
        # libvirtd checks the service's own user.
        if config["local_uri"] and \
                host_without_port(host) in config["local_hosts"]:
            return None
        return credentials

    def begin_request(self):
        self.calls = 0
        if not self._connection_alive():
            # NOTE: libvirt notices a closed connection only when keepalive
            # (remote hosts with a timeout) or a call reads from it. A
            # connection dropped since its last request may still look
            # alive here, so its first call fails with a 502 and the
            # connection is not pooled again. Calls are not repeated,
            # because libvirt cannot prove that a failed call never ran.
            logger.info("the pooled libvirt connection to %s is closed; "
                        "connecting again", self.host)
            self.close()
            self.open()

    def connection_reusable(self):
        return self._owns_connection and self._connection_alive()

    def _connection_alive(self):
        """Ask the binding whether the connection is open; no round trip."""
        if self._conn is None:
            return False
        try:
            return self._conn.isAlive() == 1
        except libvirt.libvirtError:
            return False
