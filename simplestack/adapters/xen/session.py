"""Logging in to XAPI and out again, and every XML-RPC call in between.

``_call`` is the one way the adapter reaches XAPI: it counts the call,
sends int64 values as strings, refuses None (XAPI rejects ``<nil/>``) and
translates every failure into a Simplestack error.
"""

import logging
import xml.parsers.expat
import xmlrpc.client

import XenAPI

from simplestack import errors
from simplestack.access import check_redirect
from simplestack.adapters.base import SessionReuseMixin
from simplestack.credentials import redact
from simplestack.adapters.tls import (
    load_tls_context, timeout_error, translate_connection_error)
from simplestack.adapters.xen.constants import STATE_MAP
from simplestack.adapters.xen.failures import (
    CAPACITY_CODES, capacity_message, classify, public_params)
from simplestack.adapters.xen.transport import (
    Endpoint, XmlRpcTransport, master_host, tls_context)

logger = logging.getLogger(__name__)

#: The API version sent at login. XAPI accepts any value and behaves as
#: its own version does.
API_VERSION = "1.0"


def to_wire(value):
    """Return ``value`` as XAPI takes it: ints as decimal strings.

    XML-RPC ints are 32-bit, XAPI's are 64-bit, and XAPI takes either form
    for an int64 parameter; strings work for every size. None has no XAPI
    form: passing one is a bug of the caller.
    """
    if value is None:
        raise TypeError("None cannot be sent to XAPI")
    if isinstance(value, bool) or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_wire(item) for key, item in value.items()}
    raise TypeError("cannot send a %s to XAPI" % type(value).__name__)


class SingleTrySession(XenAPI.Session):
    """A XenAPI session that raises SESSION_INVALID as a XenAPI.Failure.

    XenAPI.Session (XenAPI 24.x) logs in again and repeats a call, up to
    three times, when XAPI returns SESSION_INVALID. Those logins escape the
    adapter's call count, so the adapter decides instead: it renews the
    session once per request (see SessionMixin._call).
    """

    def xenapi_request(self, methodname, params):
        if methodname.startswith("login") or \
                methodname in ("logout", "session.logout"):
            return super().xenapi_request(methodname, params)
        result = getattr(self, methodname)(self._session, *params)
        if isinstance(result, dict) and result.get("Status") != "Success":
            description = result.get("ErrorDescription") or []
            if description[:1] == ["SESSION_INVALID"]:
                raise XenAPI.Failure(description)
        return XenAPI.XenAPI._parse_result(result)


class SessionMixin(SessionReuseMixin):
    """Methods of XenAdapter that hold the XAPI session and call XAPI.

    ``self._session`` is the logged-in XenAPI.Session, or None.
    ``self._endpoint`` is the host it reached (the pool master).
    ``self._uuids`` maps the references read so far to UUIDs, which error
    parameters show in place of the references. ``self._named_refs`` maps
    the references of the objects that the request names to their classes.
    """

    def open(self):
        if self._session is not None:
            return
        endpoint = Endpoint(self.host, self.config, self._tls_context())
        if self.config["insecure"]:
            logger.warning("connecting to Xen host %s without verifying "
                           "its TLS certificate (insecure = true)",
                           self.host)
        try:
            self._session = self._login(endpoint)
        except XenAPI.Failure as failure:
            if failure.details[:1] != ["HOST_IS_SLAVE"] or \
                    len(failure.details) < 2:
                raise self._translate_failure(failure, "login") from failure
            # A pool member refers every client to the master, and the
            # master never does: one redirection at most.
            master = master_host(self.host, failure.details[1])
            # NOTE: the master must pass the host allow-list, or a member,
            # or a server that claims to be one, could draw the credentials
            # to any host. An adapter built without the service's settings
            # (no allowed_hosts in its config) follows any redirect.
            check_redirect(self.config, self.host, master)
            endpoint = endpoint.moved_to(master)
            logger.info("Xen host %s is a pool member; logging in to its "
                        "master %s", self.host, endpoint.host)
            try:
                self._session = self._login(endpoint)
            except XenAPI.Failure as second:
                raise self._translate_failure(second, "login") from second
        self._endpoint = endpoint

    def _tls_context(self):
        if self.config["scheme"] != "https":
            return None
        return load_tls_context(self.config, tls_context)

    def _login(self, endpoint):
        """Return a session logged in at ``endpoint``; raise
        XenAPI.Failure as it comes, other errors translated."""
        transport = XmlRpcTransport(endpoint)
        session = SingleTrySession(endpoint.url, transport=transport)
        username, password = self.credentials
        self.calls += 1
        try:
            session.xenapi.login_with_password(
                username, password, API_VERSION, self.config["originator"])
        except XenAPI.Failure:
            transport.close()
            raise
        except Exception as error:
            transport.close()
            translated = self._translate_transport_error(error, endpoint)
            if translated is None:
                raise
            raise translated from error
        logger.debug("logged in to Xen host %s as originator %s",
                     endpoint.host, self.config["originator"])
        return session

    def close(self):
        session, self._session = self._session, None
        if session is None:
            return
        self.calls += 1
        try:
            session.xenapi.session.logout()
        except Exception as error:  # close() must not raise: log instead
            logger.warning("logging out of Xen host %s failed: %s",
                           self._endpoint.host, type(error).__name__)
        finally:
            session.transport.close()

    @property
    def session(self):
        if self._session is None:
            self.open()
        return self._session

    # -- calls ---------------------------------------------------------------

    def _call(self, method, *args, vm=None):
        """Call the XAPI ``method`` ("VM.start") and return its value.

        ``vm`` is the VM reference the call acts on, so that an error of
        state can name the guest's current state.
        """
        arguments = [to_wire(argument) for argument in args]
        try:
            return self._send(method, arguments)
        except XenAPI.Failure as failure:
            if failure.details[:1] != ["SESSION_INVALID"] or \
                    not self.may_renew_session():
                raise self._translate_failure(failure, method, vm,
                                              arguments) from failure
        # XAPI checks the session before it runs a call, so SESSION_INVALID
        # proves that the call never ran and can be sent again.
        self.renew_session()
        try:
            return self._send(method, arguments)
        except XenAPI.Failure as failure:
            raise self._translate_failure(failure, method, vm,
                                          arguments) from failure

    def _send(self, method, arguments):
        """Send one call; raise XenAPI.Failure as it comes, other errors
        translated."""
        function = self.session.xenapi
        for part in method.split("."):
            function = getattr(function, part)
        self.calls += 1
        try:
            return function(*arguments)
        except XenAPI.Failure:
            raise
        except Exception as error:
            # The connection's state is unknown: never pool it.
            self.connection_failed = True
            translated = self._translate_transport_error(
                error, self._endpoint)
            if translated is None:
                raise
            raise translated from error

    # -- reuse across requests (see simplestack.sessions) ---------------------

    def begin_request(self):
        super().begin_request()
        self._uuids = {}
        self._named_refs = {}

    def has_session(self):
        return self._session is not None

    def _log_in_again(self):
        """Log in again at the same endpoint."""
        logger.info("the session on Xen host %s is gone; logging in again",
                    self._endpoint.host)
        # The logout of a session that XAPI reported gone normally fails;
        # it is sent anyway, so that a session still alive is not left
        # open.
        self.close()
        try:
            self._session = self._login(self._endpoint)
        except XenAPI.Failure as failure:
            raise self._translate_failure(failure, "login") from failure

    def _translate_failure(self, failure, method, vm=None, arguments=()):
        """Return the Simplestack error for a XAPI failure of ``method``.

        ``arguments`` are the call's arguments. A not-found failure is 404
        only when it is about an object that the request names (see
        LookupsMixin._names_request_object), and 502 otherwise.
        """
        details = [str(item) for item in failure.details] or ["UNKNOWN"]
        code, params = details[0], details[1:]
        public = [redact(value, self.credentials)
                  for value in public_params(params, self._uuids)]
        error_class = classify(code,
                               self._names_request_object(code, arguments))
        summary = code
        if public:
            summary += " (%s)" % ", ".join(public)

        if code in CAPACITY_CODES:
            message = "%s: %s" % (self.hypervisor_name,
                                  capacity_message(code, public))
        else:
            state = None
            # Only an InvalidState message names the state, which may take
            # a call to read.
            if error_class is errors.InvalidState:
                state = self._state_for_message(code, params, vm)
            message = self.failure_message(error_class, method, summary,
                                           state)
        return error_class(message, code=code, params=public,
                           original=failure)

    def _state_for_message(self, code, params, vm):
        """Return the API state to name in an InvalidState message, or
        None when the failed call acted on no guest."""
        if code == "VM_BAD_POWER_STATE" and len(params) >= 3:
            return STATE_MAP.get(params[2].capitalize(), "UNKNOWN")
        if vm is None:
            return None
        try:
            return STATE_MAP.get(self._call("VM.get_power_state", vm),
                                 "UNKNOWN")
        except errors.SimplestackError:
            return "UNKNOWN"

    def _translate_transport_error(self, error, endpoint):
        """Translate a failure to reach XAPI; None for anything else."""
        where = "%s at %s" % (self.hypervisor_name, endpoint.host)
        # XAPI's HTTP proxy reports a timed-out call as XML-RPC fault 504.
        if isinstance(error, xmlrpc.client.Fault) and error.faultCode == 504:
            return timeout_error(where, self.config["read_timeout"], error)
        translated = translate_connection_error(
            error, where, self.config["read_timeout"])
        if translated is not None:
            return translated
        if isinstance(error, xmlrpc.client.ProtocolError):
            return errors.HypervisorError(
                "%s returned HTTP %d instead of an XML-RPC response"
                % (where, error.errcode), original=error)
        if isinstance(error, (xmlrpc.client.Error,
                              xml.parsers.expat.ExpatError)):
            return errors.HypervisorError(
                "%s sent a malformed XML-RPC response" % where,
                original=error)
        return None
