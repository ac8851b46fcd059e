"""The paths that stay public when caller tokens are on.

They answer without a caller token, leak no credentials, hosts or digests,
and answer only the methods they document; every other path gets 401
before anything else is looked at.
"""

import hashlib

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from tests.attacks.conftest import assert_error
from tests.conftest import CANARY_PASSWORD, make_token
from tests.server import TESTING_INI

CALLER_TOKEN = b"round3-caller-token"
CALLER_DIGEST = "sha256:" + hashlib.sha256(CALLER_TOKEN).hexdigest()

PUBLIC_PATHS = ["/", "/healthz", "/metrics", "/openapi.json", "/docs",
                "/docs/init.js", "/docs/static/swagger-ui.css"]


@pytest.fixture(scope="module")
def app():
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.caller_token_digests"] = CALLER_DIGEST
    return TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_public_path_leaks_nothing(app, path):
    # Requests with the caller token first, so that /metrics has seen
    # hosts and types that it must not list.
    app.get("/test/default/guests",
            headers={"x-simplestack-token": CALLER_TOKEN.decode()})
    app.get("/xen/192.0.2.1/guests", expect_errors=True,
            headers={"x-simplestack-token": CALLER_TOKEN.decode()})

    response = app.get(path)

    assert response.status_int == 200
    text = response.body.decode("utf-8", "replace")
    assert CANARY_PASSWORD not in text
    assert make_token() not in text
    assert CALLER_DIGEST[7:] not in text
    assert CALLER_TOKEN.decode() not in text
    assert "192.0.2.1" not in text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH",
                                    "OPTIONS"])
@pytest.mark.parametrize("path", ["/docs/static/swagger-ui.css",
                                  "/docs/static/swagger-ui-bundle.js"])
def test_static_file_only_for_get(app, method, path):
    response = app.request(path, method=method, expect_errors=True)

    # Without the static route, traversal takes "docs" for a hypervisor
    # type, so the caller token is checked first.
    assert_error(response, 401, "Unauthorized")


@pytest.mark.parametrize("path", [
    "/test", "/test/default", "/test/default/guests", "/nothing",
    "/TEST/default/guests", "//test/default/guests", "/xen/192.0.2.1",
    "/docs/x/%2E%2E/%2E%2E/test/default/guests",
])
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "OPTIONS"])
def test_other_path_needs_caller_token(app, path, method):
    response = app.request(path, method=method, expect_errors=True)

    if "%2E%2E" in path:
        # Dot segments are rejected before traversal, token or not.
        assert response.status_int == 400
    else:
        assert response.status_int == 401


@pytest.mark.parametrize("value", ["", " ", "\t", "  \t "])
def test_empty_token_rejected_even_if_listed(value):
    # The digest of the empty token on the list must not open the service
    # to callers that send an empty or blank header.
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.caller_token_digests"] = "\n".join([
        CALLER_DIGEST, "sha256:" + hashlib.sha256(b"").hexdigest()])
    app = TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})

    response = app.get("/test/default/guests", expect_errors=True,
                       headers={"x-simplestack-token": value})

    assert_error(response, 401, "Unauthorized")
