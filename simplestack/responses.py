"""The request and response classes of the application."""

from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request as PyramidRequest
from pyramid.response import Response as PyramidResponse


class Response(PyramidResponse):
    """A response that sends its ``Location`` header exactly as set.

    WebOb turns a relative ``Location`` into an absolute URL built from the
    request's host and proxy headers when the response is sent. Clients of
    Simplestack expect the root-relative path of a created resource, and an
    absolute URL built from ``Host`` would echo whatever a caller or proxy
    put there, so the header is left untouched.
    """

    def _abs_headerlist(self, environ):
        return list(self._headerlist)


def response_factory(request):
    return Response()


def set_request_class(config):
    """Move the request properties of add_request_method onto one request
    class, made once.

    Pyramid applies such properties (Cornice's ``current_service``) to each
    request by creating a new subclass of the request class for it. That
    cost 25 to 60 µs of CPU per request in bench/request_cpu.py on a shared
    2-core machine, and a new type object that only the cyclic garbage
    collector frees. As class attributes they behave the same: a reified
    property still stores its value on the request instance.
    Commits the configuration so far, so call it after every include.
    """
    config.commit()
    extensions = config.registry.queryUtility(IRequestExtensions)
    if extensions is None or not extensions.descriptors:
        return
    base = config.registry.queryUtility(IRequestFactory,
                                        default=PyramidRequest)
    request_class = type("Request", (base,), dict(
        extensions.descriptors, __module__=base.__module__))
    extensions.descriptors = {}
    config.set_request_factory(request_class)
