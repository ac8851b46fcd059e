"""A whole stack for attack tests: simulators that take the canary password,
and the service under pserve with an INI generated from testing.ini.

Every simulator started here logs in with CANARY_PASSWORD only, so every
request to it carries the canary, and a leak of it into a response or the
server log is caught. The generated INI keeps testing.ini's hypervisor types
and adds short connect and read timeouts, so a request to a refused or hung
hypervisor ends within seconds.
"""

import contextlib
import json
import os
import re
import time

import requests

from simplestack.adapters import guest_locks, shared_folder
from simplestack.adapters.libvirt import shared_changes
from tests.conftest import CANARY_PASSWORD, make_token
from tests.derived_servers import derive_ini
from tests.operations.servers import PRODUCTION_INI, ProductionServer
from tests.server import TESTING_INI, Server
from tests.simulators.fixtures import XapiSimulator
from tests.simulators.vcsim_fixtures import VcsimSimulator

#: Connect and read timeouts, in seconds, of the Xen and VMware types of
#: the generated INI.
CONNECT_TIMEOUT = 2
READ_TIMEOUT = 3

#: The token header of the API.
TOKEN_HEADER = "x-simplestack-hypervisor-token"

#: Seconds a test waits for any single response of the service.
CLIENT_TIMEOUT = 60


def canary_token(username):
    return make_token(username, CANARY_PASSWORD)


def start_xapi(vms=3):
    """Start a XAPI simulator whose only password is the canary."""
    simulator = XapiSimulator("--vms", str(vms), "--password", CANARY_PASSWORD)
    simulator.password = CANARY_PASSWORD
    return simulator.start()


def start_vcsim(model="vpx", temporary_dir=None):
    """Start a vSphere simulator whose only password is the canary."""
    simulator = VcsimSimulator(model, temporary_dir=temporary_dir)
    simulator.password = CANARY_PASSWORD
    return simulator.start()


def write_ini(path, extra_settings=None):
    """Write testing.ini with short timeouts and ``extra_settings`` added
    to its [app:main] section, and return ``path``."""
    settings = {
        "simplestack.hypervisor.xen.connect_timeout": CONNECT_TIMEOUT,
        "simplestack.hypervisor.xen.read_timeout": READ_TIMEOUT,
        "simplestack.hypervisor.vmware.connect_timeout": CONNECT_TIMEOUT,
        "simplestack.hypervisor.vmware.read_timeout": READ_TIMEOUT,
    }
    settings.update(extra_settings or {})
    with open(TESTING_INI, encoding="utf-8") as source:
        text = source.read()
    # testing.ini's %(here)s must still name the checkout.
    text = text.replace("%(here)s", os.path.dirname(TESTING_INI))
    lines = "".join("%s = %s\n" % item for item in settings.items())
    text, count = re.subn(r"(?m)^\[server:main\]", lines + "\n[server:main]", text)
    assert count == 1, "testing.ini has no [server:main] section"
    with open(path, "w", encoding="utf-8") as ini:
        ini.write(text)
    return path


def start_server(folder, extra_settings=None):
    """Start pserve on the generated INI; its log is folder/pserve.log."""
    ini_path = write_ini(os.path.join(folder, "attack.ini"), extra_settings)
    server = Server(os.path.join(folder, "pserve.log"), ini_path=ini_path)
    return server.start()


class Client:
    """A requests session on the service that checks every response for the
    canary and, for errors, for the JSON error shape."""

    def __init__(self, base_url, token):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers[TOKEN_HEADER] = token

    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", CLIENT_TIMEOUT)
        response = self.session.request(method, self.base_url + path, **kwargs)
        check_response(response)
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, document=None, **kwargs):
        return self.request("POST", path, json=document, **kwargs)

    def put(self, path, document=None, **kwargs):
        return self.request("PUT", path, json=document, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def close(self):
        self.session.close()


def read_until_close(sock, timeout=10):
    """Return every byte received on ``sock`` until the server closes it,
    waiting at most ``timeout`` seconds for each read."""
    sock.settimeout(timeout)
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk


def leaks_canary(data):
    """Tell whether bytes or text contain the canary or its token forms."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    secrets = [CANARY_PASSWORD] + [canary_token(name) for name in (
        "root", "administrator@vsphere.local")]
    return any(secret in data for secret in secrets)


def check_response(response):
    """Assert that a response has no canary and that an error is JSON of
    the form {"error": name, "message": text}."""
    streamed = response.headers.get("Content-Type", "").startswith(
        "application/octet-stream")
    if not streamed:
        assert not leaks_canary(response.content), response.text[:500]
    assert not leaks_canary(json.dumps(dict(response.headers)))
    if response.status_code < 400:
        return
    assert response.headers.get("Content-Type", "").startswith(
        "application/json"), (response.status_code, response.text[:500])
    body = response.json()
    assert isinstance(body.get("error"), str), body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert "Traceback" not in response.text


def wait_for(function, expected, timeout=10):
    """Poll ``function`` until it returns ``expected``; return its last value."""
    deadline = time.monotonic() + timeout
    value = function()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        value = function()
    return value


def open_descriptors(pid):
    """Return how many file descriptors process ``pid`` has open, without
    those it keeps for its life on the files that the service processes
    share: the guest lock file, opened at the first guest change, and one
    change log per libvirt URI, opened at the first list."""
    count = 0
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except FileNotFoundError:
            continue  # closed meanwhile
        if not _lifetime_shared_file(target):
            count += 1
    return count


def _lifetime_shared_file(path):
    folder, name = os.path.split(path)
    return folder == shared_folder.SHARED_DIR and (
        name == guest_locks.LOCK_FILE
        or name.endswith(shared_changes.LOG_SUFFIX))


@contextlib.contextmanager
def small_production_server(folder, app_settings=None):
    """Run production.ini's gunicorn with one worker of two threads and
    ``app_settings`` added to its app section; yield the server."""
    ini_path = derive_ini(PRODUCTION_INI, {
        "app:main": dict(app_settings or {}),
        "server:main": {"workers": 1, "threads": 2},
    }, str(folder / "production.ini"))
    running = ProductionServer(str(folder / "gunicorn.log"), ini_path)
    running.start()
    try:
        yield running
    finally:
        running.stop()
