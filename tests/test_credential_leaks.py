"""The canary password never appears in responses, logs or exception texts,
even when the hypervisor quotes it in its own error."""

import logging

import pytest
from pyramid.paster import get_appsettings
from webtest import TestApp

from simplestack import main
from simplestack.adapters.base import Credentials
from simplestack.credentials import redact
from tests.api.conftest import app_settings
from tests.conftest import CANARY_PASSWORD, make_token
from tests.server import TESTING_INI
from tests.simulators.vcsim_fixtures import vcsim_simulator  # noqa: F401
from tests.test_timeouts import SilentServer, refused_port
from tests.xen_fixtures import xapi_simulator  # noqa: F401


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def exception_texts(caplog):
    """Return the texts of the exceptions attached to log records, causes
    and contexts included."""
    texts = []
    for record in caplog.records:
        if not record.exc_info:
            continue
        error = record.exc_info[1]
        while error is not None:
            texts.append(repr(error))
            texts.append(str(error))
            error = error.__cause__ or error.__context__
    return texts


def assert_no_canary(response, caplog):
    assert CANARY_PASSWORD not in response.text
    assert make_token("root") not in response.text
    assert CANARY_PASSWORD not in caplog.text
    for text in exception_texts(caplog):
        assert CANARY_PASSWORD not in text


def canary_api(settings, username="root"):
    return TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(username)})


@pytest.fixture
def xen_settings(xapi_simulator):  # noqa: F811
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.hypervisor.xen.ca_bundle"] = \
        xapi_simulator.ca_bundle
    return settings


def test_redact_replaces_password():
    credentials = Credentials("root", CANARY_PASSWORD)

    assert redact("bad password %s!" % CANARY_PASSWORD, credentials) == \
        "bad password <hidden>!"
    assert redact("nothing here", credentials) == "nothing here"
    assert redact("text", None) == "text"
    assert redact("text", Credentials("root", "")) == "text"


def test_xen_wrong_password(xapi_simulator, xen_settings, all_logs):  # noqa: F811,E501
    api = canary_api(xen_settings)

    response = api.get("/xen/%s/guests" % xapi_simulator.netloc, status=401)

    assert response.json["error"] == "HypervisorAuthenticationFailed"
    assert_no_canary(response, all_logs)


def test_xen_failure_quoting_password(xapi_simulator, xen_settings,  # noqa: F811,E501
                                      all_logs):
    # A XAPI whose error parameters quote the password it was sent.
    xapi_simulator.set_fault(
        "session.login_with_password",
        error=["SESSION_AUTHENTICATION_FAILED", "root",
               "wrong password: " + CANARY_PASSWORD], times=1)
    api = canary_api(xen_settings)
    try:
        response = api.get("/xen/%s/guests" % xapi_simulator.netloc,
                           status=401)
    finally:
        xapi_simulator.clear_faults()

    assert response.json["hypervisor"]["params"] == [
        "root", "wrong password: <hidden>"]
    assert_no_canary(response, all_logs)


def test_xen_server_error_quoting_password(xapi_simulator, xen_settings,  # noqa: F811,E501
                                           all_logs):
    # A 5xx error, which the exception view logs.
    xapi_simulator.set_fault(
        "session.login_with_password",
        error=["INTERNAL_ERROR", "login of root/" + CANARY_PASSWORD],
        times=1)
    api = canary_api(xen_settings)
    try:
        response = api.get("/xen/%s/guests" % xapi_simulator.netloc,
                           status=502)
    finally:
        xapi_simulator.clear_faults()

    assert_no_canary(response, all_logs)


def test_vmware_wrong_password(vcsim_simulator, all_logs):  # noqa: F811
    settings = dict(get_appsettings(TESTING_INI, name="main"))
    settings["simplestack.hypervisor.vmware.ca_bundle"] = \
        vcsim_simulator.ca_bundle
    api = canary_api(settings, vcsim_simulator.username)

    response = api.get("/vmware/%s/guests" % vcsim_simulator.netloc,
                       status=401)

    assert response.json["error"] == "HypervisorAuthenticationFailed"
    assert_no_canary(response, all_logs)


def test_libvirt_remote_errors(all_logs):
    api = canary_api(app_settings(**{
        "simplestack.hypervisor.tcp.connect_timeout": "1"}))
    silent = SilentServer()
    try:
        refused = api.get("/tcp/127.0.0.1:%d/guests" % refused_port(),
                          status=502)
        timed_out = api.get("/tcp/127.0.0.1:%d/guests" % silent.port,
                            status=504)
    finally:
        silent.close()

    assert_no_canary(refused, all_logs)
    assert_no_canary(timed_out, all_logs)
