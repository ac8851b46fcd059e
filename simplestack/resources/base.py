"""The base classes of traversal resources."""

import weakref


class Resource:
    """A node of the tree; ``__name__`` and ``__parent__`` give its URL."""

    __name__ = ""
    __parent__ = None

    def __init__(self, name, parent):
        self.__name__ = name
        self.__parent__ = parent


class RequestResource(Resource):
    """A node of the tree that refers to the request it was built for.

    The reference is weak. Pyramid stores the root and the context on the
    request, so a strong one would make the request and its tree a
    reference cycle. The cyclic garbage collector, not the request's end,
    would then free them, and with them the adapter and its libvirt
    objects. With strong references, GET /guests/{id} on the test driver
    cost one collection per about 35 requests. ``request`` is None once
    the request has been freed.
    """

    def __init__(self, name, parent, request):
        super().__init__(name, parent)
        self._request_ref = weakref.ref(request)

    @property
    def request(self):
        return self._request_ref()
