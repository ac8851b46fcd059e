"""TLS contexts, bounded connects and connection errors shared by the Xen
and VMware adapters.

Both adapters take the same ``ca_bundle``, ``insecure`` and
``resolve_timeout`` settings (see ``settings_helpers``) and reach their
servers over HTTPS, so they build their SSL contexts, open their sockets
and translate their connection failures alike.
"""

import http.client
import ipaddress
import socket
import ssl
import threading
import time

from simplestack import errors

#: Name resolutions that may run at once in worker threads. A resolver
#: that never replies holds its thread until the C library gives up
#: (its resolv.conf timeout and attempts), so this bounds the threads
#: that hung resolvers can hold; past it, connections fail as timed out.
MAX_PENDING_RESOLUTIONS = 16

_resolution_slots = threading.BoundedSemaphore(MAX_PENDING_RESOLUTIONS)


class ResolveTimeout(TimeoutError):
    """The host name did not resolve within the resolve timeout."""

    def __init__(self, host, seconds):
        super().__init__("%s did not resolve within %s s" % (host, seconds))
        self.seconds = seconds


class ConnectTimeout(TimeoutError):
    """The TCP connection, or the TLS handshake after it, did not complete
    within the connect timeout."""

    def __init__(self, seconds):
        super().__init__("no connection within %s s" % seconds)
        self.seconds = seconds


def resolve(host, port, timeout):
    """Return ``socket.getaddrinfo`` results for a TCP connection to
    ``host``, waiting at most ``timeout`` seconds for a host name.

    getaddrinfo ignores socket timeouts, so a name is resolved in a worker
    thread, which is abandoned (it ends when the C library gives up) if it
    is late. Raises ResolveTimeout, or socket.gaierror as getaddrinfo does.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0,
                                  socket.AI_NUMERICHOST)

    deadline = time.monotonic() + timeout
    if not _resolution_slots.acquire(timeout=timeout):
        raise ResolveTimeout(host, timeout)
    outcome = {}
    finished = threading.Event()

    def run():
        try:
            outcome["addresses"] = socket.getaddrinfo(
                host, port, 0, socket.SOCK_STREAM)
        except OSError as error:
            outcome["error"] = error
        finally:
            _resolution_slots.release()
            finished.set()

    threading.Thread(target=run, name="resolve-%s" % host,
                     daemon=True).start()
    if not finished.wait(max(0, deadline - time.monotonic())):
        raise ResolveTimeout(host, timeout)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["addresses"]


def bounded_create_connection(resolve_timeout):
    """Return a replacement for ``socket.create_connection``, the
    ``_create_connection`` of http.client connections, that resolves
    within ``resolve_timeout`` seconds and connects within the timeout it
    is given, over all addresses of the name together.

    The returned socket keeps that timeout, so the TLS handshake that
    HTTPSConnection runs next is bounded by it too, and still checks the
    certificate against the host name, not the address.
    """
    def create_connection(address, timeout=None, source_address=None):
        if timeout is socket._GLOBAL_DEFAULT_TIMEOUT:
            # What http.client passes when it was given no timeout.
            timeout = socket.getdefaulttimeout()
        host, port = address
        addresses = resolve(host, port, resolve_timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        last_error = None
        for family, kind, protocol, _, socket_address in addresses:
            remaining = None
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(remaining)
                if source_address:
                    sock.bind(source_address)
                sock.connect(socket_address)
            except TimeoutError:
                sock.close()
                last_error = ConnectTimeout(timeout)
            except OSError as error:
                sock.close()
                last_error = error
            else:
                sock.settimeout(timeout)
                return sock
        raise last_error or ConnectTimeout(timeout)

    return create_connection


def connect_within(connect, timeout):
    """Call ``connect()``, an http.client connection's ``connect``, and
    raise ConnectTimeout if it times out, so that a TLS handshake that
    never ends names the connect timeout, not the read timeout."""
    try:
        connect()
    except (ResolveTimeout, ConnectTimeout):
        raise
    except TimeoutError as error:
        raise ConnectTimeout(timeout) from error


def create_tls_context(config):
    """Return a new SSL context for the ``ca_bundle`` and ``insecure``
    settings of ``config``.

    Raises OSError when the CA bundle cannot be read and ssl.SSLError when
    it contains no valid certificate.
    """
    context = ssl.create_default_context(cafile=config["ca_bundle"] or None)
    if config["insecure"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def load_tls_context(config, create=create_tls_context):
    """Return ``create(config)``, raising HypervisorUnreachable that names
    the ca_bundle setting when the CA bundle cannot be read or contains no
    valid certificate."""
    try:
        return create(config)
    except OSError as error:
        raise errors.HypervisorUnreachable(
            "cannot read the CA bundle %s of the ca_bundle setting: %s"
            % (config["ca_bundle"], error.strerror or error),
            original=error) from error
    except ssl.SSLError as error:
        raise errors.HypervisorUnreachable(
            "the CA bundle %s of the ca_bundle setting contains no valid "
            "certificate" % config["ca_bundle"],
            original=error) from error


def timeout_error(where, read_timeout, error):
    """Return the HypervisorTimeout of a reply from ``where`` (the server)
    that took longer than ``read_timeout`` seconds."""
    return errors.HypervisorTimeout(
        "%s did not answer within %s s" % (where, read_timeout),
        original=error)


def translate_connection_error(error, where, read_timeout):
    """Return the Simplestack error of a failure to reach a server (TLS,
    timeout, refused connection, DNS, socket or HTTP), or None for any
    other error. ``where`` names the server in the message."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return errors.HypervisorUnreachable(
            "%s is unreachable: TLS certificate verification failed "
            "(%s); set ca_bundle to the CA that signed it"
            % (where, error.verify_message), original=error)
    if isinstance(error, ssl.SSLError):
        # The error may come during the handshake or long after it, in the
        # middle of a stream; an unexpected EOF carries no reason.
        return errors.HypervisorUnreachable(
            "the TLS connection to %s failed (%s)"
            % (where, error.reason or type(error).__name__), original=error)
    if isinstance(error, ResolveTimeout):
        return errors.HypervisorTimeout(
            "%s is unreachable: its name did not resolve within %s s"
            % (where, error.seconds), original=error)
    if isinstance(error, ConnectTimeout):
        return errors.HypervisorTimeout(
            "%s did not complete a connection within %s s"
            % (where, error.seconds), original=error)
    # socket.timeout is an alias of TimeoutError since Python 3.10.
    if isinstance(error, TimeoutError):
        return timeout_error(where, read_timeout, error)
    if isinstance(error, ConnectionRefusedError):
        return errors.HypervisorUnreachable(
            "%s is unreachable: connection refused" % where,
            original=error)
    if isinstance(error, socket.gaierror):
        return errors.HypervisorUnreachable(
            "%s is unreachable: the host name does not resolve" % where,
            original=error)
    if isinstance(error, (OSError, http.client.HTTPException)):
        return errors.HypervisorUnreachable(
            "%s is unreachable: %s" % (where, type(error).__name__),
            original=error)
    return None
