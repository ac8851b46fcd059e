"""The request and response classes of the application."""

from urllib.parse import unquote_to_bytes

from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.request import Request as PyramidRequest
from pyramid.response import Response as PyramidResponse
from webob.multidict import GetDict

#: The environ key where WebOb caches the parsed query with its source.
#: Request.GET stores its result there too, so WebOb's other readers of
#: the query (``request.params``) see the same parameters.
PARSED_QUERY_KEY = "webob._parsed_query_vars"


def parse_query(query_string):
    """Parse a WSGI QUERY_STRING into (name, value) pairs of text.

    The pairs are separated by ``&`` only, as in the WHATWG URL standard,
    Python's urllib.parse and nginx. WebOb 1.8 also splits at ``;``, so
    ``?name=web;db`` meant the name ``web``. Like WebOb, ``+`` is a space,
    a pair without ``=`` has an empty value, empty pairs are skipped, and
    text that is not UTF-8 once percent-decoded raises UnicodeDecodeError.
    """
    raw = query_string.encode("latin-1").replace(b"+", b" ")
    pairs = []
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        pairs.append((unquote_to_bytes(name).decode("utf-8"),
                      unquote_to_bytes(value).decode("utf-8")))
    return pairs


class Request(PyramidRequest):
    """A Pyramid request whose query parameters are split at ``&`` only."""

    @property
    def GET(self):
        environ = self.environ
        source = environ.get("QUERY_STRING", "")
        cached = environ.get(PARSED_QUERY_KEY)
        if cached is not None and cached[1] == source:
            return cached[0]
        parameters = GetDict(parse_query(source), environ)
        environ[PARSED_QUERY_KEY] = (parameters, source)
        return parameters


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
    """Set the request class: the request factory set earlier, else
    Request, with the request properties of add_request_method moved onto
    one subclass of it, made once.

    Pyramid applies such properties (Cornice's ``current_service``) to each
    request by creating a new subclass of the request class for it. That
    cost 25 to 60 µs of CPU per request in bench/request_cpu.py on a shared
    2-core machine, and a new type object that only the cyclic garbage
    collector frees. As class attributes they behave the same: a reified
    property still stores its value on the request instance.
    Commits the configuration so far, so call it after every include.
    """
    config.commit()
    base = config.registry.queryUtility(IRequestFactory, default=Request)
    extensions = config.registry.queryUtility(IRequestExtensions)
    if extensions is None or not extensions.descriptors:
        config.set_request_factory(base)
        return
    request_class = type("Request", (base,), dict(
        extensions.descriptors, __module__=base.__module__))
    extensions.descriptors = {}
    config.set_request_factory(request_class)
