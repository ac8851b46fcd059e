"""HTTP(S) connections to a XAPI host: TLS context, timeouts, host names.

The XenAPI SDK has no timeout and no CA argument, so the adapter hands it
an XML-RPC transport whose connections verify TLS against the configured
CAs and time out. The HTTP handlers for images use the same connections.
"""

import http.client
import os
import ssl
import threading
import xmlrpc.client

from simplestack.adapters.tls import (
    bounded_create_connection, connect_within, create_tls_context)
from simplestack.adapters.xen.xmlrpc_parser import loads_response

_contexts = {}
_contexts_lock = threading.Lock()


def tls_context(config):
    """Return the SSL context for ``config``, shared while its CA file is
    unchanged.

    Raises OSError when the CA bundle cannot be read and ssl.SSLError when
    it contains no valid certificate.
    """
    cafile = config["ca_bundle"] or None
    stamp = os.stat(cafile).st_mtime_ns if cafile else None
    key = (cafile, stamp, config["insecure"])
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = create_tls_context(config)
            _contexts[key] = context
        return context


def split_host(host):
    """Split ``host``, ``host:port`` or ``[v6]:port`` into (host, port)."""
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        return address, rest[1:] if rest.startswith(":") else None
    if host.count(":") == 1:
        address, _, port = host.partition(":")
        return address, port
    return host, None


def join_host(address, port):
    if ":" in address:
        address = "[%s]" % address
    return "%s:%s" % (address, port) if port else address


def master_host(current_host, master_address):
    """Return the URL host of the master that HOST_IS_SLAVE named.

    XAPI names the master by address alone, because every host of a pool
    listens on the same port. The port of ``current_host`` is kept unless
    the address has its own.
    """
    address, port = split_host(master_address)
    if port is None:
        port = split_host(current_host)[1]
    return join_host(address, port)


class _TimedConnectionMixin:
    """Open the socket within the connect timeout, then read with the
    read timeout: a slow XAPI call must not be cut at the connect limit."""

    read_timeout = None

    def connect(self):
        connect_within(super().connect, self.timeout)
        self.sock.settimeout(self.read_timeout)


class TimedHTTPConnection(_TimedConnectionMixin, http.client.HTTPConnection):
    def __init__(self, host, connect_timeout, read_timeout,
                 resolve_timeout):
        super().__init__(host, timeout=connect_timeout)
        self.read_timeout = read_timeout
        self._create_connection = bounded_create_connection(resolve_timeout)


class TimedHTTPSConnection(_TimedConnectionMixin,
                           http.client.HTTPSConnection):
    def __init__(self, host, connect_timeout, read_timeout, resolve_timeout,
                 context):
        super().__init__(host, timeout=connect_timeout, context=context)
        self.read_timeout = read_timeout
        self._create_connection = bounded_create_connection(resolve_timeout)


class Endpoint:
    """One XAPI host: its URL host, scheme, TLS context and timeouts."""

    def __init__(self, host, config, context):
        self.host = host
        self.scheme = config["scheme"]
        self.context = context
        self.resolve_timeout = config["resolve_timeout"]
        self.connect_timeout = config["connect_timeout"]
        self.read_timeout = config["read_timeout"]

    @property
    def url(self):
        return "%s://%s/" % (self.scheme, self.host)

    def moved_to(self, host):
        moved = Endpoint.__new__(Endpoint)
        moved.__dict__.update(self.__dict__, host=host)
        return moved

    def connection(self):
        """Return a new, unopened HTTP(S) connection to the host."""
        if self.scheme == "https":
            return TimedHTTPSConnection(
                self.host, self.connect_timeout, self.read_timeout,
                self.resolve_timeout, self.context)
        return TimedHTTPConnection(self.host, self.connect_timeout,
                                   self.read_timeout, self.resolve_timeout)


class XmlRpcTransport(xmlrpc.client.SafeTransport):
    """The SDK's transport: the endpoint's connections, kept alive.

    ``event_fields`` and ``record_fields``, while set, are passed to
    loads_response for each response (see _load_classes and
    _records_where).
    """

    def __init__(self, endpoint):
        super().__init__(context=endpoint.context)
        self.endpoint = endpoint
        self.event_fields = None
        self.record_fields = None

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        self._connection = host, self.endpoint.connection()
        return self._connection[1]

    def request(self, host, handler, request_body, verbose=False):
        """Send a call; send it once more on a new connection when a kept
        connection turns out to be closed.

        xmlrpc.client does so for RemoteDisconnected and ECONNRESET, but a
        TLS connection that the server closed while it was idle fails with
        SSLEOFError, which it raises. A pooled session's connection
        sits idle between requests, and its logout comes last of all.
        NOTE: a call that the server ran before it dropped the connection
        runs twice, the risk that xmlrpc.client takes for ECONNRESET too.
        """
        reused = self._connection[1] is not None and \
            host == self._connection[0]
        try:
            return super().request(host, handler, request_body, verbose)
        except ssl.SSLEOFError:
            # single_request closed the connection, so this makes a new one.
            if not reused:
                raise
            return self.single_request(host, handler, request_body, verbose)

    def parse_response(self, response):
        """Read the whole body, then parse it with the faster parser.

        xmlrpc.client reads a response in steps of 1 KiB and parses it with
        a Python callback per XML event, which made most of the CPU time of
        a guest list.
        """
        if self._use_datetime or self._use_builtin_types or \
                response.getheader("Content-Encoding", "") == "gzip":
            return super().parse_response(response)
        return loads_response(response.read(), self.event_fields,
                              self.record_fields)
