"""Traversal resources used after their request ended.

Resources refer to their request weakly. A resource kept past the end of
its request opened a new hypervisor session when its adapter was read.
The request tween had already released the request's adapter, and Pyramid
had already run the finished callbacks, so no one closed that session.
"""

import gc

import pytest
from pyramid.request import Request

from simplestack import sessions
from tests.conftest import make_token

PATH = "/tracked/default/guests"


def run_and_keep_context(wsgi_app):
    """Run a request on the app and return the request and its context."""
    request = Request.blank(PATH, headers={
        "x-simplestack-hypervisor-token": make_token()})
    request.registry = wsgi_app.registry
    contexts = []
    request.add_finished_callback(
        lambda finished: contexts.append(finished.context))
    response = wsgi_app.invoke_request(request)
    assert response.status_int == 200, response.text
    return request, contexts[0]


def test_ended_request_opens_no_session(wsgi_app):
    manager = sessions.sessions_of(wsgi_app.registry)
    request, context = run_and_keep_context(wsgi_app)
    assert manager.slots_taken("tracked", "default") == 0

    with pytest.raises(RuntimeError, match="after its request ended"):
        context.adapter

    assert manager.slots_taken("tracked", "default") == 0


def test_freed_request_raises_runtime_error(wsgi_app):
    manager = sessions.sessions_of(wsgi_app.registry)
    request, context = run_and_keep_context(wsgi_app)
    del request
    gc.collect()

    with pytest.raises(RuntimeError, match="after its request ended"):
        context.adapter
    with pytest.raises(RuntimeError, match="after its request ended"):
        context.request

    assert manager.slots_taken("tracked", "default") == 0
