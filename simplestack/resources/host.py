"""The host context: one hypervisor host and this request's adapter."""

import collections
import logging
import traceback

from simplestack import sessions
from simplestack.credentials import HEADER, parse_token
from simplestack.resources.base import RequestResource
from simplestack.resources.collections import HOST_CHILDREN

logger = logging.getLogger(__name__)

# The token header's WSGI environ key, as request.headers would look it up.
HEADER_ENVIRON_KEY = "HTTP_" + HEADER.upper().replace("-", "_")


class HostContext(RequestResource):
    """One hypervisor host, and the adapter connection of this request.

    The adapter is opened on first use, after it has taken a session slot
    of the host (see :mod:`simplestack.sessions`), or taken from the pool
    when session reuse is on. The request tween releases it when the
    request ends, errors included, and a finished callback releases it if
    the tween did not. A release closes the adapter, or returns it to the
    pool when the request left its session in a known state. A view that
    streams an image hands the adapter to the stream with
    :meth:`detach_adapter`, and the stream closes it with
    :func:`close_adapter`.
    """

    def __init__(self, host, parent):
        super().__init__(host, parent, parent.request)
        self.host = host
        self.hypervisor_type = parent.hypervisor_type
        # Decoded here, before any validator runs, so that a request without
        # valid credentials gets a 401 whatever else is wrong with it.
        self.credentials = parse_token(
            self.request.environ.get(HEADER_ENVIRON_KEY))
        self._adapter = None
        self._lease = None

    @property
    def adapter(self):
        if self._adapter is None:
            self._adapter = self._open_adapter()
        return self._adapter

    def _open_adapter(self):
        request = self.request
        if self._lease is not None:
            # An earlier open() in this request failed: free its slot.
            self._close_adapter(request)
        manager = sessions.sessions_of(request.registry)
        # Raises ServiceUnavailable before any connection when the host has
        # no free session slot.
        self._lease = manager.checkout(
            self.hypervisor_type, self.host, self.credentials)
        adapter = self._lease.adapter

        # Registered before open(), so a connection that fails half-way
        # is still released. The request tween usually releases it first,
        # so that its log line counts the logout; this callback is the
        # safety net for every other path.
        request.add_finished_callback(self._close_adapter)
        request.environ["simplestack.adapter"] = adapter
        request.environ["simplestack.host_context"] = self
        self._lease.open()
        return adapter

    def release(self, request):
        """Close or pool this request's adapter, unless a stream took it."""
        self._close_adapter(request)

    def _close_adapter(self, request):
        lease, self._lease = self._lease, None
        adapter, self._adapter = self._adapter, None
        if lease is None:
            return
        leased = lease.adapter
        exception = getattr(request, "exception", None)
        # An adapter whose open() failed is never pooled: its credentials
        # may be wrong, and its state is unknown.
        reusable = adapter is not None and (
            exception is None
            or isinstance(exception, sessions.DEFINITE_ERRORS))
        calls = lease.release(reusable)
        environ = request.environ
        if leased is not None and calls is not None \
                and environ.get("simplestack.adapter") is leased:
            # A pooled adapter may serve another request before the tween
            # logs this one, so the log reads this request's count.
            environ["simplestack.adapter"] = AdapterSummary(
                leased.type_name, leased.host, calls)
        release_exception_frames(exception)

    def detach_adapter(self):
        """Return the adapter and stop closing it at the end of the request.

        The adapter keeps its session slot until :func:`close_adapter`
        closes it, or until it is garbage collected unclosed.
        """
        lease, self._lease = self._lease, None
        self._adapter = None
        if lease is None:
            return None
        return lease.detach()

    def __getitem__(self, name):
        return HOST_CHILDREN[name](name, self)


def release_exception_frames(exception):
    """Clear the frames of an exception chain's tracebacks.

    A failed request's traceback keeps the adapter's frames, and with them
    SDK objects (a virDomain holds a reference to its virConnect), alive in
    a reference cycle until the garbage collector runs; until then libvirt
    keeps the connection open. Clearing the frames once the error has been
    rendered and logged lets the connection close with the request.
    """
    pending = [exception]
    seen = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if current.__traceback__ is not None:
            traceback.clear_frames(current.__traceback__)
        # An error of ours keeps the SDK exception as ``original``, which
        # an adapter may have caught earlier than the one it chained.
        original = getattr(current, "original", None)
        if not isinstance(original, BaseException):
            original = None
        pending.extend((current.__cause__, current.__context__, original))


class AdapterSummary(collections.namedtuple(
        "AdapterSummary", "type_name host calls")):
    """The fields of an adapter that the request log reads after its
    release."""


def close_adapter(adapter):
    """Close an adapter that a stream took over, and free its slot."""
    try:
        adapter.close()
    except Exception:  # close() must not raise; log if one still does
        logger.exception(
            "closing the %s adapter for host %s failed",
            adapter.type_name, adapter.host)
    finally:
        sessions.release_detached(adapter)
