"""The response class of the application."""

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
