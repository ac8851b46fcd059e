"""Fixtures for the API tests: the application from testing.ini, in WebTest."""

import os
import uuid

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from tests.conftest import make_token

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
TESTING_INI = os.path.join(ROOT, "testing.ini")

# Extra hypervisor types for the tests of the service itself: one whose
# adapter records every open and close, one with a bug, one whose exports
# work on the test driver, and QEMU over plain TCP, for connections
# refused on loopback.
EXTRA_TYPES = """
tracked = tests.api.adapters:RecordingAdapter
broken = tests.api.adapters:BrokenAdapter
tcp = simplestack.adapters.libvirt:LibvirtAdapter
streaming = tests.api.adapters:StreamingAdapter
"""


def app_settings(**overrides):
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.hypervisors"] += EXTRA_TYPES
    settings["simplestack.hypervisor.tracked.driver"] = "test"
    settings["simplestack.hypervisor.broken.driver"] = "test"
    settings["simplestack.hypervisor.streaming.driver"] = "test"
    settings["simplestack.hypervisor.tcp.driver"] = "qemu"
    settings["simplestack.hypervisor.tcp.uri_template"] = \
        "qemu+tcp://{host}/system"
    settings["simplestack.hypervisor.tcp.allowed_hosts"] = "127.0.0.0/8 ::1"
    settings.update(overrides)
    return settings


@pytest.fixture(scope="session")
def wsgi_app():
    return main({}, **app_settings())


@pytest.fixture
def api(wsgi_app):
    """A WebTest client that sends a valid hypervisor token."""
    return TestApp(wsgi_app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


@pytest.fixture
def anonymous(wsgi_app):
    """A WebTest client that sends no token."""
    return TestApp(wsgi_app)


def unique_name(kind="guest"):
    return "sstest-%s-%s" % (kind, uuid.uuid4().hex[:8])


@pytest.fixture
def guest(api):
    """A stopped guest on the test driver, deleted after the test."""
    response = api.post_json("/test/default/guests", {
        "name": unique_name(), "cpus": 1, "memory": 128})
    record = response.json
    yield record
    api.delete("/test/default/guests/%s" % record["id"], status="*")
