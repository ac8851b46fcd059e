"""The host context: one hypervisor host and this request's adapter."""

import logging
import traceback

from simplestack.credentials import HEADER, parse_token
from simplestack.resources.base import Resource
from simplestack.resources.collections import HOST_CHILDREN

logger = logging.getLogger(__name__)


class HostContext(Resource):
    """One hypervisor host, and the adapter connection of this request.

    The adapter is opened on first use. The request tween closes it when
    the request ends, errors included, and a finished callback closes it
    if the tween did not. A view that streams an image hands the adapter
    to the stream with :meth:`detach_adapter`, and the stream closes it.
    """

    def __init__(self, host, parent):
        super().__init__(host, parent)
        self.host = host
        self.request = parent.request
        self.hypervisor_type = parent.hypervisor_type
        # Decoded here, before any validator runs, so that a request without
        # valid credentials gets a 401 whatever else is wrong with it.
        self.credentials = parse_token(self.request.headers.get(HEADER))
        self._adapter = None

    @property
    def adapter(self):
        if self._adapter is None:
            self._adapter = self._open_adapter()
        return self._adapter

    def _open_adapter(self):
        request = self.request
        hypervisor_type = self.hypervisor_type
        adapter = hypervisor_type.adapter_class(
            hypervisor_type.name, self.host, self.credentials,
            hypervisor_type.config)

        # Registered before open(), so a connection that fails half-way
        # is still released. The request tween usually releases it first,
        # so that its log line counts the logout; this callback is the
        # safety net for every other path.
        request.add_finished_callback(self._close_adapter)
        request.environ["simplestack.adapter"] = adapter
        request.environ["simplestack.host_context"] = self
        adapter.open()
        return adapter

    def release(self, request):
        """Close this request's adapter, unless a stream took it over."""
        self._close_adapter(request)

    def _close_adapter(self, request):
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            close_adapter(adapter)
            release_exception_frames(getattr(request, "exception", None))

    def detach_adapter(self):
        """Return the adapter and stop closing it at the end of the request."""
        adapter, self._adapter = self._adapter, None
        return adapter

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
        pending.extend((current.__cause__, current.__context__))


def close_adapter(adapter):
    try:
        adapter.close()
    except Exception:  # close() must not raise; log if one still does
        logger.exception(
            "closing the %s adapter for host %s failed",
            adapter.type_name, adapter.host)
