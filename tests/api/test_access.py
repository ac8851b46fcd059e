"""The host allow-list and caller tokens, through the WSGI application."""

import hashlib
import logging
import subprocess
import sys

import pytest
from webtest import TestApp

from simplestack import main
from simplestack.access import HostAllowList, parse_token_digests
from simplestack.settings import parse_settings
from tests.api.adapters import RecordingAdapter
from tests.api.conftest import ROOT, app_settings
from tests.conftest import make_token
from tests.xen_fixtures import xapi_simulator  # noqa: F401 (a fixture)

CALLER_TOKEN = "caller-token-5d1e"
CALLER_DIGEST = "sha256:" + hashlib.sha256(
    CALLER_TOKEN.encode("ascii")).hexdigest()

# A libvirt type that records its adapters and connects over TCP, so the
# allow-list applies to it.
GUARDED_TYPE = "\nguarded = tests.api.adapters:RecordingAdapter\n"


def guarded_settings(allowed_hosts, **overrides):
    settings = app_settings(**overrides)
    settings["simplestack.hypervisors"] += GUARDED_TYPE
    settings["simplestack.hypervisor.guarded.driver"] = "qemu"
    settings["simplestack.hypervisor.guarded.uri_template"] = \
        "qemu+tcp://{host}/system"
    settings["simplestack.hypervisor.guarded.allowed_hosts"] = allowed_hosts
    # No name maps to the local libvirtd, so every host is a TCP host.
    settings["simplestack.hypervisor.guarded.local_hosts"] = ""
    return settings


def client(settings):
    return TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


@pytest.fixture
def recorded():
    RecordingAdapter.instances.clear()
    yield RecordingAdapter.instances
    RecordingAdapter.instances.clear()


# -- allow-list parsing and matching -----------------------------------------

ALLOW_LIST = HostAllowList.parse(
    "t", "allowed_hosts",
    "10.1.0.0/16, 192.0.2.7\n fd00::/64 [2001:db8::5]  Hyper-1.Example.org")


@pytest.mark.parametrize("url_host", [
    "10.1.2.3", "10.1.2.3:443", "192.0.2.7", "192.0.2.7:1",
    "[fd00::1]", "[fd00::abcd]:443", "[2001:db8::5]:8443",
    "hyper-1.example.org", "HYPER-1.EXAMPLE.ORG:443",
])
def test_allow_list_permits(url_host):
    assert ALLOW_LIST.permits(url_host)


@pytest.mark.parametrize("url_host", [
    "10.2.0.1", "192.0.2.8", "[fd00:0:0:1::1]", "[2001:db8::6]",
    # Names are never resolved and never match a network.
    "hyper-1.example.org.", "hyper-1.example.org..", "example.org",
    "hyper-1", "x.hyper-1.example.org",
    # Numeric forms that the C resolver reads as addresses in 10.1.0.0/16.
    "10.1.515", "10.65793", "0x0a.1.2.3", "010.1.2.3", "167838211",
    # An IPv4-mapped IPv6 address is not the IPv4 address.
    "[::ffff:10.1.2.3]",
])
def test_allow_list_rejects(url_host):
    assert not ALLOW_LIST.permits(url_host)


@pytest.mark.parametrize("raw", [
    "example.org.", "host:443", "10.0.0.1/33", "10.0.0.1/24", "127.1",
    "0x7f000001", "under_score.example", "-bad.example", "a..b",
])
def test_allow_list_invalid_entry(raw):
    with pytest.raises(ValueError) as raised:
        HostAllowList.parse("t", "allowed_hosts", raw)

    assert "simplestack.hypervisor.t.allowed_hosts" in str(raised.value)
    assert repr(raw) in str(raised.value) or raw in str(raised.value)


def test_allow_list_counts_entries():
    assert len(ALLOW_LIST) == 5
    assert len(HostAllowList.parse("t", "allowed_hosts", " ,\n ")) == 0


# -- allow-list through the API ----------------------------------------------

def test_host_outside_list_is_403(recorded):
    api = client(guarded_settings("127.0.0.1 localhost"))

    response = api.get("/guarded/192.0.2.1/guests", status=403)

    assert response.content_type == "application/json"
    assert response.json["error"] == "HostNotAllowed"
    assert "192.0.2.1" in response.json["message"]
    assert "guarded.allowed_hosts" in response.json["message"]
    # No adapter was built, so nothing was resolved or connected.
    assert recorded == []


def test_403_message_names_host_without_port(recorded):
    api = client(guarded_settings("127.0.0.1 localhost"))

    response = api.get("/guarded/192.0.2.1:8443/guests", status=403)

    assert "'192.0.2.1'" in response.json["message"]
    assert "8443" not in response.json["message"]
    assert recorded == []


@pytest.mark.parametrize("url_host", [
    "127.1", "2130706433", "localhost.", "LOCALHOST.", "[::ffff:127.0.0.1]",
    "127.0.0.2", "nothing.invalid",
])
def test_lookalike_hosts_are_403(recorded, url_host):
    api = client(guarded_settings("127.0.0.1 localhost"))

    response = api.get("/guarded/%s/guests" % url_host, status=403)

    assert response.json["error"] == "HostNotAllowed"
    assert recorded == []


def test_allowed_host_connects(recorded):
    # Port 1 refuses connections: the request gets past the allow-list
    # and fails at the connection, with any port and any letter case.
    api = client(guarded_settings("127.0.0.0/8, LocalHost"))

    for url_host in ("127.0.0.1:1", "localhost:1", "LOCALHOST:1"):
        response = api.get("/guarded/%s/guests" % url_host, status=502)
        assert response.json["error"] == "HypervisorUnreachable"

    assert len(recorded) == 3


def test_local_libvirtd_name_needs_entry(recorded):
    # "localhost" reaches the local libvirtd through local_uri, with the
    # service's privileges, so it must be listed like any other host.
    settings = guarded_settings("127.0.0.0/8")
    settings["simplestack.hypervisor.guarded.local_hosts"] = "localhost"

    response = client(settings).get("/guarded/localhost/guests", status=403)

    assert response.json["error"] == "HostNotAllowed"
    assert recorded == []


def test_empty_list_rejects_every_host(recorded):
    api = client(guarded_settings(""))

    for url_host in ("127.0.0.1", "localhost", "[::1]"):
        response = api.get("/guarded/%s/guests" % url_host, status=403)
        assert response.json["error"] == "HostNotAllowed"

    assert recorded == []


def test_test_driver_needs_no_entry():
    settings = guarded_settings("")
    settings["simplestack.hypervisor.test.allowed_hosts"] = ""
    api = client(settings)

    api.get("/test/default/guests", status=200)


def test_bad_entry_stops_start_up():
    with pytest.raises(ValueError) as raised:
        main({}, **guarded_settings("10.0.0.0/8 evil.example.:443"))

    assert "guarded.allowed_hosts" in str(raised.value)


def test_start_up_logs_entry_counts(caplog):
    caplog.set_level(logging.INFO, logger="simplestack.access")
    settings = guarded_settings("127.0.0.0/8 ::1 localhost")
    settings["simplestack.hypervisor.tcp.allowed_hosts"] = ""

    main({}, **settings)

    messages = [record.getMessage() for record in caplog.records]
    assert "hypervisor type guarded: allowed_hosts has 3 entries" in messages
    assert any(message.startswith("hypervisor type tcp: allowed_hosts is "
                                  "empty") for message in messages)
    assert any(message.startswith("hypervisor type test: reaches no "
                                  "network host") for message in messages)


def test_xen_master_outside_list_is_403(xapi_simulator):  # noqa: F811
    member = xapi_simulator.member_url.split("://", 1)[1].rstrip("/")
    settings = app_settings()
    settings["simplestack.hypervisor.xen.ca_bundle"] = \
        xapi_simulator.ca_bundle
    # The member (127.0.0.2) is allowed, its master (127.0.0.1) is not.
    settings["simplestack.hypervisor.xen.allowed_hosts"] = "127.0.0.2"
    api = TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            xapi_simulator.username, xapi_simulator.password)})
    xapi_simulator.reset_stats()

    response = api.get("/xen/%s/guests" % member, status=403)

    assert response.json["error"] == "HostNotAllowed"
    assert xapi_simulator.netloc in response.json["message"]
    stats = xapi_simulator.stats()
    # The member rejected the one login; the master saw none, so no
    # session is open anywhere.
    assert stats["calls"].get("session.login_with_password") == 1
    assert stats["sessions"].get("simplestack", 0) == 0


def test_xen_master_inside_list_is_followed(xapi_simulator):  # noqa: F811
    member = xapi_simulator.member_url.split("://", 1)[1].rstrip("/")
    settings = app_settings()
    settings["simplestack.hypervisor.xen.ca_bundle"] = \
        xapi_simulator.ca_bundle
    settings["simplestack.hypervisor.xen.allowed_hosts"] = \
        "127.0.0.2 127.0.0.1"
    api = TestApp(main({}, **settings), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token(
            xapi_simulator.username, xapi_simulator.password)})

    response = api.get("/xen/%s/hosts" % member, status=200)

    assert len(response.json) == 2


# -- caller tokens -----------------------------------------------------------

def token_client(extra_environ=None, digests=CALLER_DIGEST):
    settings = app_settings()
    settings["simplestack.caller_token_digests"] = digests
    environ = {"HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()}
    environ.update(extra_environ or {})
    return TestApp(main({}, **settings), extra_environ=environ)


def test_matching_caller_token_passes():
    api = token_client({"HTTP_X_SIMPLESTACK_TOKEN": CALLER_TOKEN})

    api.get("/test/default/guests", status=200)


@pytest.mark.parametrize("header", [
    None, "", "   ", CALLER_TOKEN + "x", CALLER_TOKEN.upper(),
    CALLER_DIGEST, CALLER_DIGEST[len("sha256:"):], "caller\ntoken",
    "caller-tök\u00e9n",
])
def test_wrong_caller_token_is_401(header):
    environ = {} if header is None else {"HTTP_X_SIMPLESTACK_TOKEN": header}
    api = token_client(environ)

    response = api.get("/test/default/guests", status=401)

    assert response.content_type == "application/json"
    assert response.json["error"] == "Unauthorized"
    assert "x-simplestack-token" in response.json["message"]
    if header:
        assert header not in response.json["message"]


def test_caller_token_checked_before_type(recorded):
    api = token_client()

    # An unknown type and a bad hypervisor token still get the caller
    # token's 401, and no adapter is built.
    for path in ("/nosuchtype/x/guests", "/tracked/default/guests"):
        response = api.get(path, status=401,
                           headers={"x-simplestack-hypervisor-token": "!"})
        assert "x-simplestack-token" in response.json["message"]

    assert recorded == []


def test_caller_token_checked_before_host(recorded):
    api = token_client()

    response = api.get("/tcp/192.0.2.1/guests", status=401)

    assert response.json["error"] == "Unauthorized"


def test_any_listed_digest_matches():
    other = "sha256:" + "0" * 64
    digests = "\n".join([other, "# the automation's token", CALLER_DIGEST])
    api = token_client({"HTTP_X_SIMPLESTACK_TOKEN": CALLER_TOKEN}, digests)

    api.get("/test/default/guests", status=200)


def test_header_ignored_while_off():
    api = token_client({"HTTP_X_SIMPLESTACK_TOKEN": "anything"}, digests="")

    api.get("/test/default/guests", status=200)


def test_public_paths_need_no_caller_token():
    api = token_client()

    for path in ("/", "/healthz", "/metrics", "/openapi.json", "/docs"):
        response = api.get(path, status="*")
        assert response.status_int == 200, path


@pytest.mark.parametrize("line", [
    CALLER_TOKEN, "sha256:" + "a" * 63, "sha1:" + "a" * 40,
    "sha256:" + "g" * 64, "  sha256: " + "a" * 64,
])
def test_bad_digest_line_stops_start_up(line):
    raw = "sha256:%s\n\n%s" % ("b" * 64, line)

    with pytest.raises(ValueError) as raised:
        parse_settings({"simplestack.caller_token_digests": raw})

    assert "line 3" in str(raised.value)
    assert line.strip() not in str(raised.value)


def test_digest_lines_parsed():
    digests = parse_token_digests(
        "\n  sha256:%s  \n# comment\nsha256:%s" % ("A" * 64, "0" * 64))

    assert digests == (bytes.fromhex("aa" * 32), bytes(32))


def test_tokens_command_prints_digest():
    finished = subprocess.run(
        [sys.executable, "-m", "simplestack.tokens"], cwd=ROOT,
        input=CALLER_TOKEN + "\n", capture_output=True, text=True,
        timeout=30, check=True)

    assert finished.stdout.strip() == CALLER_DIGEST
    assert CALLER_TOKEN not in finished.stdout + finished.stderr


def test_tokens_command_rejects_empty_input():
    finished = subprocess.run(
        [sys.executable, "-m", "simplestack.tokens"], cwd=ROOT,
        input="\n", capture_output=True, text=True, timeout=30)

    assert finished.returncode != 0
    assert "empty" in finished.stderr


def test_tokens_command_makes_new_token():
    finished = subprocess.run(
        [sys.executable, "-m", "simplestack.tokens", "--new"], cwd=ROOT,
        capture_output=True, text=True, timeout=30, check=True)
    token = finished.stderr.strip()

    assert len(token) >= 40
    assert finished.stdout.strip() == "sha256:" + hashlib.sha256(
        token.encode("ascii")).hexdigest()


@pytest.mark.parametrize("text, fragment", [
    ("two\nlines\n", "line break"),
    (" padded\n", "white space"),
])
def test_tokens_command_rejects_bad_input(text, fragment):
    finished = subprocess.run(
        [sys.executable, "-m", "simplestack.tokens"], cwd=ROOT,
        input=text, capture_output=True, text=True, timeout=30)

    assert finished.returncode != 0
    assert fragment in finished.stderr
    assert text.strip() not in finished.stderr
