"""The base classes of traversal resources."""

import weakref

# The environ key that the request tween sets when a request ends.
REQUEST_ENDED_KEY = "simplestack.request_ended"


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
    cost one collection per about 35 requests.

    Reading ``request`` raises RuntimeError once the request has ended or
    been freed. A HostContext would otherwise open a hypervisor session
    after the request tween released its adapter, and no one would close
    that session.
    """

    def __init__(self, name, parent, request):
        super().__init__(name, parent)
        self._request_ref = weakref.ref(request)

    @property
    def request(self):
        request = self._request_ref()
        if request is None or request.environ.get(REQUEST_ENDED_KEY):
            raise RuntimeError(
                "resource %r was used after its request ended"
                % (self.__name__,))
        return request
