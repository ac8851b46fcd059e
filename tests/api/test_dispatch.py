"""URL dispatch and Cornice's request set-up, as the application runs them.

The application tries only the routes whose slash count fits the path, and
calls Cornice's NewRequest subscriber from its tween, so Pyramid sends no
request events. These tests check that both choose and return what Pyramid's
own mapper and events did.
"""

import pytest
from pyramid.interfaces import IRoutesMapper
from pyramid.request import Request
from pyramid.urldispatch import RoutesMapper
from webtest import TestApp

from simplestack.routing import SlashCountRoutesMapper, fixed_slash_count

HOST = "/test/default"

PATHS = [
    "/",
    "/docs",
    "/docs/init.js",
    "/docs/static/swagger-ui.css",
    "/docs/static/guests/x",
    "/docs/static/a/b/c/d/e/f/g",
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/test/default",
    "/test/default/",
    "//default",
    "/test/default/guests",
    "/test/default/guests/",
    "/test/default/guests/abc",
    "/test/default/guests//",
    "/test/default/guests/abc/disks",
    "/test/default/guests/abc/disks/vda",
    "/test/default/guests/abc/snapshots/s1/revert",
    "/test/default/guests/abc/snapshots/s1/revert/more",
    "/test/default/guests/abc/tags/a%2Fb",
    "/test/default/storages/pool/guests",
    "/test/default/unknown/abc",
    "/a/b/c/d/e/f/g/h/i/j/k/l",
    "/test/default/guests/abc\n",
]


def pyramid_mapper_of(mapper):
    """Return Pyramid's own mapper with the routes of ``mapper``, in order."""
    plain = RoutesMapper()
    for route in mapper.get_routes():
        plain.connect(route.name, route.pattern, factory=route.factory,
                      predicates=route.predicates)
    return plain


def matched_name(mapper, path, method):
    request = Request.blank("/", method=method)
    request.environ["PATH_INFO"] = path
    info = mapper(request)
    route = info["route"]
    return None if route is None else route.name, info["match"]


def test_application_uses_slash_count_mapper(wsgi_app):
    mapper = wsgi_app.registry.queryUtility(IRoutesMapper)

    assert isinstance(mapper, SlashCountRoutesMapper)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", PATHS)
def test_mapper_matches_pyramid_mapper(wsgi_app, path, method):
    mapper = wsgi_app.registry.queryUtility(IRoutesMapper)
    plain = pyramid_mapper_of(mapper)

    assert matched_name(mapper, path, method) == \
        matched_name(plain, path, method)


@pytest.mark.parametrize("pattern, expected", [
    ("/", 1),
    ("/{hypervisor}/{host}/guests/{guest_id}", 4),
    ("docs/static/*subpath", None),
    (r"/items/{id:\d+}", None),
    ("/items/:id", None),
    ("/items/{id:[^/]+/[^/]+}", None),
])
def test_fixed_slash_count(pattern, expected):
    assert fixed_slash_count(pattern) == expected


def test_mapper_keeps_route_order():
    mapper = SlashCountRoutesMapper()
    mapper.connect("star", "/a/*rest")
    mapper.connect("guest", "/{hypervisor}/{host}/guests/{guest_id}")

    assert matched_name(mapper, "/x/b/guests/c", "GET")[0] == "guest"
    assert matched_name(mapper, "/a/b/guests/c", "GET")[0] == "star"
    assert matched_name(mapper, "/a/1/2/3/4/5/6/7/8/9", "GET")[0] == "star"
    assert matched_name(mapper, "/b/1/2/3/4/5/6/7/8/9", "GET")[0] is None

    # A route added after the first request is tried too.
    mapper.connect("deep", "/{a}/{b}/{c}/{d}/{e}/{f}")

    assert matched_name(mapper, "/x/y/z/w/v/u", "GET")[0] == "deep"
    assert matched_name(mapper, "/a/y/z/w/v/u", "GET")[0] == "star"


def test_request_events_are_off(wsgi_app):
    # A fresh application: the session's may have a test's subscriber.
    from simplestack import main
    from tests.api.conftest import app_settings

    app = main({}, **app_settings())

    assert app.registry.has_listeners is False
    assert list(app.registry.registeredHandlers()) == []


def test_other_subscribers_keep_events():
    # Cornice then registers its localizer, which must run before the
    # subscriber that builds request.errors.
    from simplestack import main
    from tests.api.conftest import app_settings
    from tests.conftest import make_token

    app = main({}, **app_settings(available_languages="en fr"))
    client = TestApp(app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})

    assert app.registry.has_listeners is True
    assert len(list(app.registry.registeredHandlers())) == 2
    response = client.get(HOST + "/guests?limit=-1", status=400,
                          headers={"Accept-Language": "fr"})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json["details"][0]["name"] == "limit"


def test_success_has_nosniff_header(api, guest):
    response = api.get(HOST + "/guests/" + guest["id"], status=200)

    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_error_has_nosniff_header(api):
    response = api.get(HOST + "/guests/no-such-guest", status=404)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json["error"] == "EntityNotFound"


def test_validation_error_lists_details(api):
    response = api.get(HOST + "/guests?limit=-1", status=400)

    assert response.json["error"] == "InvalidArguments"
    assert response.json["details"][0]["name"] == "limit"
