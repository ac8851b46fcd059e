"""The request class that carries Cornice's request property.

The application moves the properties of add_request_method onto one request
class at start-up, so Pyramid no longer builds a subclass per request.
"""

from pyramid.interfaces import IContextFound, IRequestExtensions

HOST = "/test/default"


def test_extensions_have_no_properties(wsgi_app):
    extensions = wsgi_app.registry.queryUtility(IRequestExtensions)

    assert extensions.descriptors == {}
    assert hasattr(wsgi_app.request_factory, "current_service")


def test_requests_share_one_class(wsgi_app, api):
    seen = []

    def record(event):
        request = event.request
        seen.append((type(request), request.current_service))

    wsgi_app.registry.registerHandler(record, (IContextFound,))
    try:
        api.get(HOST + "/guests", status=200)
        api.get(HOST + "/networks", status=200)
    finally:
        wsgi_app.registry.unregisterHandler(record, (IContextFound,))

    assert len(seen) == 2
    (first_class, first_service), (second_class, second_service) = seen
    assert first_class is wsgi_app.request_factory
    assert second_class is wsgi_app.request_factory
    assert first_service is not None
    assert second_service is not None
    assert first_service is not second_service
