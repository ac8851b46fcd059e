"""deploy/nginx/simplestack.conf in front of two production instances.

nginx runs as a process of this test, with its own prefix, pid file, logs
and temporary directories, on loopback, with a certificate of the
development CA. The deployed file is used as it is, except for the ports,
certificate paths and log path, which the test replaces.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.backends import unique_name
from tests.conftest import CANARY_PASSWORD, make_token
from tests.operations.servers import ProductionServer, derive_production_ini
from tests.server import ROOT, free_port, stop_process, wait_until_listening
from tests.simulators import ca
from tests.simulators.fixtures import xapi_simulator  # noqa: F401

SITE_CONF = os.path.join(ROOT, "deploy", "nginx", "simplestack.conf")
TOKEN_HEADER = "x-simplestack-hypervisor-token"
REQUEST_COUNT = 20

NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/simplestack.conf;
}}
"""


def replace_once(text, old, new):
    assert text.count(old) == 1, (
        "deploy/nginx/simplestack.conf should contain %r once" % old)
    return text.replace(old, new)


def render_site(prefix, nginx_port, instance_ports):
    """Return the deployed site configuration with this test's values."""
    with open(SITE_CONF, encoding="utf-8") as site:
        text = site.read()
    certificate, key = ca.server_cert_paths()
    text = replace_once(text, "server 127.0.0.1:6543 ",
                        "server 127.0.0.1:%d " % instance_ports[0])
    text = replace_once(text, "server 127.0.0.1:6544 ",
                        "server 127.0.0.1:%d " % instance_ports[1])
    text = replace_once(text, "listen 443 ssl;",
                        "listen 127.0.0.1:%d ssl;" % nginx_port)
    text = replace_once(text, "listen [::]:443 ssl;", "")
    text = replace_once(text, "/etc/ssl/simplestack/fullchain.pem",
                        certificate)
    text = replace_once(text, "/etc/ssl/simplestack/privkey.pem", key)
    text = replace_once(text, "/var/log/nginx/simplestack.access.log",
                        os.path.join(prefix, "access.log"))
    return text


class Nginx:
    """Debian's nginx binary, run in the foreground under ``prefix``."""

    def __init__(self, prefix, instance_ports):
        self.prefix = str(prefix)
        self.port = free_port()
        self.url = "https://127.0.0.1:%d" % self.port
        self.process = None
        with open(os.path.join(self.prefix, "simplestack.conf"), "w") as site:
            site.write(render_site(self.prefix, self.port, instance_ports))
        # As root, nginx would run its worker as "nobody", which cannot
        # enter the test's private temporary directories.
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf_path = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf_path, "w") as conf:
            conf.write(NGINX_CONF.format(user=user, prefix=self.prefix))

    def start(self, timeout=15):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        assert os.path.exists(nginx), (
            "Debian's nginx package is missing; scripts/bootstrap --daemons "
            "installs it")
        self.process = subprocess.Popen(
            [nginx, "-p", self.prefix, "-c", self.conf_path,
             "-e", os.path.join(self.prefix, "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_until_listening(self.process, self.port, timeout, "nginx",
                                 lambda: self.read("error.log"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        # SIGQUIT: nginx's graceful shutdown.
        stop_process(self.process, signal.SIGQUIT)

    def read(self, name):
        path = os.path.join(self.prefix, name)
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def upstreams_of(self, request_id):
        """Return the upstream addresses that the access log lists for
        ``request_id``."""
        pattern = re.compile(
            r"upstream=(.*) request_id=%s$" % re.escape(request_id))
        # nginx writes the line after the response has been sent.
        deadline = time.monotonic() + 5
        while True:
            for line in self.read("access.log").splitlines():
                match = pattern.search(line)
                if match:
                    return [address.strip()
                            for address in match.group(1).split(",")]
            if time.monotonic() > deadline:
                raise AssertionError(
                    "no access log line for %s" % request_id)
            time.sleep(0.05)


def https_request(url, method="GET", headers=None, body=None, timeout=30):
    """Return (status, headers, body) over TLS checked against the
    development CA; HTTP errors included."""
    request = urllib.request.Request(
        url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(
                request, timeout=timeout,
                context=ca.client_context()) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def kill_instance(server):
    """SIGKILL an instance's gunicorn workers, then its master, by pid."""
    master = server.process.pid
    with open("/proc/%d/task/%d/children" % (master, master)) as children:
        workers = [int(pid) for pid in children.read().split()]
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    os.kill(master, signal.SIGKILL)
    server.process.wait(10)
    for pid in workers:
        while os.path.exists("/proc/%d" % pid):
            time.sleep(0.05)


def list_guests(nginx, request_id):
    return https_request(
        nginx.url + "/test/default/guests",
        headers={TOKEN_HEADER: make_token(), "X-Request-ID": request_id})


def assert_error_shape(status, body, expected_status, expected_error):
    assert status == expected_status
    error = json.loads(body)
    assert set(error) == {"error", "message"}
    assert error["error"] == expected_error


@pytest.fixture
def cluster(tmp_path):
    """Two production instances behind nginx; stopped at the end.

    The instances may reach Xen pools on loopback, whose certificates the
    development CA signs, so that images can stream through the proxy.
    """
    ini_path = derive_production_ini(str(tmp_path / "production.ini"), {
        "simplestack.hypervisor.xen.allowed_hosts": "127.0.0.0/8",
        "simplestack.hypervisor.xen.ca_bundle": ca.ca_bundle_path(),
    })
    instances = [
        ProductionServer(str(tmp_path / ("instance-%d.log" % number)),
                         ini_path)
        for number in (1, 2)]
    nginx = None
    try:
        for instance in instances:
            instance.start()
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        nginx = Nginx(prefix, [instance.port for instance in instances])
        nginx.start()
        yield nginx, instances
    finally:
        if nginx is not None:
            nginx.stop()
        for instance in instances:
            instance.stop()
            assert CANARY_PASSWORD not in instance.read_log()


def test_requests_spread_and_survive_loss(cluster):
    nginx, instances = cluster
    addresses = ["127.0.0.1:%d" % instance.port for instance in instances]

    for number in range(REQUEST_COUNT):
        status, headers, _ = list_guests(nginx, "spread-%d" % number)
        assert status == 200
        assert headers["X-Request-ID"] == "spread-%d" % number
    served = [nginx.upstreams_of("spread-%d" % number)[-1]
              for number in range(REQUEST_COUNT)]
    assert set(served) == set(addresses)
    # Each instance's own log has the requests that nginx sent to it.
    for address, instance in zip(addresses, instances):
        log = instance.read_log()
        for number, upstream in enumerate(served):
            if upstream == address:
                assert '"request_id": "spread-%d"' % number in log

    kill_instance(instances[0])
    for number in range(REQUEST_COUNT):
        status, _, _ = list_guests(nginx, "after-loss-%d" % number)
        assert status == 200
        assert nginx.upstreams_of("after-loss-%d" % number)[-1] == \
            addresses[1]

    kill_instance(instances[1])
    status, headers, body = list_guests(nginx, "all-lost")
    assert_error_shape(status, body, 502, "BadGateway")
    assert headers["X-Request-ID"] == "all-lost"


def test_request_id_generated_by_proxy(cluster):
    nginx, instances = cluster
    status, headers, _ = https_request(
        nginx.url + "/test/default/guests",
        headers={TOKEN_HEADER: make_token()})
    assert status == 200
    request_id = headers["X-Request-ID"]
    assert re.match(r"^[0-9a-f]{32}$", request_id)
    logs = "".join(instance.read_log() for instance in instances)
    assert '"request_id": "%s"' % request_id in logs


def test_proxy_errors_are_json(cluster):
    nginx, _ = cluster
    status, _, body = https_request(nginx.url + "/metrics")
    assert_error_shape(status, body, 403, "Forbidden")

    # Plain HTTP on the TLS port.
    with socket.create_connection(("127.0.0.1", nginx.port), 5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Connection: close\r\n\r\n")
        raw = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert_error_shape(400, body, 400, "InvalidArguments")

    # Errors of the service itself pass through unchanged.
    status, _, body = https_request(nginx.url + "/no-such-type/x/guests",
                                    headers={TOKEN_HEADER: make_token()})
    assert status == 404
    assert json.loads(body)["message"].startswith("unknown hypervisor type")


def test_image_streams_through_proxy(cluster, xapi_simulator):
    nginx, _ = cluster
    pool = "%s/xen/%s" % (nginx.url, xapi_simulator.netloc)
    headers = {TOKEN_HEADER: make_token(xapi_simulator.username,
                                        xapi_simulator.password)}
    status, _, body = https_request(
        pool + "/guests", method="POST",
        headers={**headers, "Content-Type": "application/json"},
        body=json.dumps({"name": unique_name("proxied"), "hdd": 2}).encode())
    assert status == 201, body
    guest = json.loads(body)
    imported_name = unique_name("proxied-import")
    try:
        status, response_headers, image = https_request(
            "%s/guests/%s/export" % (pool, guest["id"]), headers=headers)
        assert status == 200
        assert response_headers["Content-Type"] == "application/x-xva"
        # An XVA has at least the first and the last 1 MiB block of each
        # disk, so it exceeds nginx's default body limit of 1 MiB.
        assert len(image) > 2 * 1024 * 1024

        status, _, body = https_request(
            "%s/guests?name=%s" % (pool, imported_name), method="POST",
            headers={**headers, "Content-Type": "application/octet-stream"},
            body=image)
        assert status == 201, body
        imported = json.loads(body)
        assert imported["name"] == imported_name
        assert imported["hdd"] == 2
    finally:
        https_request("%s/guests/%s" % (pool, guest["id"]), method="DELETE",
                      headers=headers)
        status, _, body = https_request(pool + "/guests", headers=headers)
        for record in json.loads(body):
            if record["name"] == imported_name:
                https_request("%s/guests/%s" % (pool, record["id"]),
                              method="DELETE", headers=headers)
