"""Logging in to vSphere and out again, and every SOAP call in between.

All calls go through one pyVmomi stub per adapter, which counts them,
enforces the connect and read timeouts and translates every failure into
a Simplestack error naming the vSphere method.
"""

import http.client
import logging
import ssl

from pyVmomi import SoapStubAdapter, vim, vmodl

from simplestack import errors
from simplestack.adapters.base import SessionReuseMixin
from simplestack.credentials import redact
from simplestack.adapters.tls import (
    bounded_create_connection, connect_within, load_tls_context,
    translate_connection_error)
from simplestack.adapters.vmware.constants import API_VERSION, state_of
from simplestack.adapters.vmware.faults import (
    classify, fault_name, field, public_params)

logger = logging.getLogger(__name__)

DEFAULT_PORT = 443


def split_host(host):
    """Return (name, port) of a URL host such as "10.0.0.1:443" or
    "[fd00::1]:443"; the port defaults to 443."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, port = host.split(":")
    else:
        name, port = host, ""
    if not port:
        return name, DEFAULT_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise errors.InvalidArguments("invalid port %r in host %r"
                                      % (port, host))
    return name, int(port)


def timed_connection_class(connect_timeout, resolve_timeout):
    """Return an HTTPSConnection class that resolves the host name within
    ``resolve_timeout`` seconds and connects within ``connect_timeout``,
    then waits up to its ``timeout`` (the read timeout) for each reply."""

    class TimedHTTPSConnection(http.client.HTTPSConnection):
        def connect(self):
            read_timeout = self.timeout
            self.timeout = connect_timeout
            self._create_connection = bounded_create_connection(
                resolve_timeout)
            try:
                connect_within(super().connect, connect_timeout)
            finally:
                self.timeout = read_timeout
            self.sock.settimeout(read_timeout)

    return TimedHTTPSConnection


class CountingStub(SoapStubAdapter):
    """A SOAP stub that counts calls and translates their failures."""

    def __init__(self, adapter, **kwargs):
        super().__init__(**kwargs)
        self._adapter = adapter

    def InvokeMethod(self, mo, info, args, outerStub=None):  # noqa: N802
        try:
            return self._invoke(mo, info, args, outerStub)
        except vim.fault.NotAuthenticated as fault:
            if not self._adapter.may_renew_session():
                raise self._adapter.translate_fault(fault, info.wsdlName) \
                    from fault
        # vSphere checks the session before it runs a method, so
        # NotAuthenticated proves that the call never ran.
        self._adapter.renew_session()
        try:
            return self._invoke(mo, info, args, outerStub)
        except vmodl.MethodFault as fault:
            raise self._adapter.translate_fault(fault, info.wsdlName) \
                from fault

    def _invoke(self, mo, info, args, outerStub):  # noqa: N803
        """Send one call; raise NotAuthenticated as it comes, other
        errors translated."""
        self._adapter.calls += 1
        try:
            return self._send(mo, info, args, outerStub)
        except vim.fault.NotAuthenticated:
            raise
        except vmodl.MethodFault as fault:
            raise self._adapter.translate_fault(fault, info.wsdlName) \
                from fault
        except errors.SimplestackError:
            raise
        except Exception as error:
            # The connection's state is unknown: never pool it.
            self._adapter.connection_failed = True
            translated = self._adapter.translate_transport_error(error)
            if translated is None:
                raise
            raise translated from error



    def _send(self, mo, info, args, outerStub):  # noqa: N803
        """Send a call; send it once more on a new connection when a kept
        connection turns out to be closed.

        A TLS connection that the server closed while it was idle in
        pyVmomi's pool fails with SSLEOFError on its next use. A pooled
        session's connections sit idle between requests.
        NOTE: a call that the server ran before it dropped the connection
        runs twice.
        """
        reused = bool(self.pool)
        try:
            return super().InvokeMethod(mo, info, args, outerStub)
        except ssl.SSLEOFError:
            # pyVmomi dropped its connections, so this opens a new one.
            if not reused:
                raise
            return super().InvokeMethod(mo, info, args, outerStub)


class SessionMixin(SessionReuseMixin):
    """Methods of VmwareAdapter that hold the vSphere session.

    ``self._content`` is the ServiceContent of the logged-in session, or
    None; ``self._stub`` the stub that carries it.
    """

    def open(self):
        if self._content is not None:
            return
        name, port = split_host(self.host)
        # pyVmomi gets a context always, because without one it turns
        # verification off for loopback hosts.
        context = load_tls_context(self.config)
        if self.config["insecure"]:
            logger.warning("connecting to VMware server %s without "
                           "verifying its TLS certificate (insecure = true)",
                           self.host)

        stub = CountingStub(
            self, host=name, port=port, version=API_VERSION,
            sslContext=context,
            httpConnectionTimeout=self.config["read_timeout"],
            connectionPoolTimeout=-1)
        stub.scheme = timed_connection_class(self.config["connect_timeout"],
                                             self.config["resolve_timeout"])
        self._stub = stub
        try:
            instance = vim.ServiceInstance("ServiceInstance", stub)
            content = instance.RetrieveContent()
            username, password = self.credentials
            content.sessionManager.Login(username, password)
        except BaseException:
            self._stub = None
            stub.DropConnections()
            raise
        self._content = content
        logger.debug("logged in to VMware server %s (%s)", self.host,
                     content.about.apiType)

    def close(self):
        content, self._content = self._content, None
        stub, self._stub = self._stub, None
        if content is None:
            return
        try:
            content.sessionManager.Logout()
        except Exception as error:  # close() must not raise: log instead
            logger.warning("logging out of VMware server %s failed: %s",
                           self.host, type(error).__name__)
        finally:
            stub.DropConnections()

    @property
    def content(self):
        if self._content is None:
            self.open()
        return self._content

    # -- reuse across requests (see simplestack.sessions) ---------------------

    def has_session(self):
        return self._content is not None

    def _log_in_again(self):
        """Log in again on the same stub. The server sends a new session
        cookie, which the stub keeps."""
        logger.info("the session on VMware server %s is gone; logging in "
                    "again", self.host)
        username, password = self.credentials
        self._content.sessionManager.Login(username, password)

    @property
    def instance_uuid(self):
        """The server's instance UUID (vCenter), or its host name (ESXi)."""
        about = self.content.about
        return about.instanceUuid or self.host

    # -- errors --------------------------------------------------------------

    def translate_fault(self, fault, method):
        """Return the Simplestack error of a vSphere fault raised by
        ``method`` (a vSphere method name such as "PowerOnVM_Task")."""
        code = fault_name(fault)
        params = [redact(value, self.credentials)
                  for value in public_params(fault)]
        error_class = classify(fault)
        summary = code
        if params:
            summary += " (%s)" % ", ".join(params)

        # classify() returns FeatureNotImplemented for MethodNotFound, so
        # this branch replaces only that class's generic message.
        if code == "MethodNotFound":
            missing = field(fault, "method") or method
            message = "%s at %s does not implement the method %s" % (
                self.hypervisor_name, self.host, missing)
        else:
            state = None
            existing = field(fault, "existingState")
            if error_class is errors.InvalidState and existing:
                state = state_of(existing)
            message = self.failure_message(error_class, method, summary,
                                           state)
        return error_class(message, code=code, params=params,
                           original=fault)

    def translate_transport_error(self, error):
        """Translate a failure to reach the server; None for anything
        else."""
        where = "%s at %s" % (self.hypervisor_name, self.host)
        return translate_connection_error(
            error, where, self.config["read_timeout"])
