"""The service under its production-like servers, from copies of its INIs.

``waitress`` runs development.ini's server section (pserve, waitress, its
thread count) and ``gunicorn`` runs production.ini's (gunicorn gthread
workers), each on a free loopback port. Both get loopback in the Xen and
VMware allow-lists, the simulators' development CA and any extra type
settings, written into a copy of the INI under .state/bench/. The
benchmarks and the tests of process exit use them.
"""

import configparser
import http.client
import os
import shutil
import time

from tests.conftest import make_token
from tests.server import ROOT, Server

STATE_DIR = os.path.join(ROOT, ".state", "bench")
CA_BUNDLE = os.path.join(ROOT, ".state", "dev-ca", "ca.pem")
SERVER_INIS = {
    "waitress": os.path.join(ROOT, "development.ini"),
    "gunicorn": os.path.join(ROOT, "production.ini"),
}
SIMULATED_TYPES = ("xen", "vmware")


def derive_ini(source, overrides, path):
    """Write a copy of the INI ``source`` to ``path`` with ``overrides``
    ({section: {key: value}}) replacing or adding keys.

    ``%(here)s`` is replaced by the repository root, so paths in the copy
    stay those of the original.
    """
    with open(source, encoding="utf-8") as original:
        lines = original.read().replace("%(here)s", ROOT).splitlines()
    output = []
    section = None
    pending = {}
    skipping = False

    def flush():
        for key, value in pending.items():
            output.append("%s = %s" % (key, value))
        pending.clear()

    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            flush()
            section = stripped[1:-1]
            pending.update(overrides.get(section, {}))
            skipping = False
            output.append(line)
            continue
        if skipping and line[:1] in (" ", "\t") and stripped:
            continue  # a continuation line of a replaced key
        skipping = False
        key = line.partition("=")[0].strip()
        if "=" in line and not line[:1].isspace() and key in pending:
            output.append("%s = %s" % (key, pending.pop(key)))
            skipping = True
            continue
        output.append(line)
    flush()
    with open(path, "w", encoding="utf-8") as copy:
        copy.write("\n".join(output) + "\n")
    return path


def server_threads(kind, ini_path):
    """Return the worker threads of the server section: waitress threads,
    or gunicorn workers x threads."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini_path)
    server = parser["server:main"]
    if kind == "gunicorn":
        return int(server.get("workers", "1")) * int(server.get("threads", "1"))
    return int(server.get("threads", "4"))


class ServiceServer:
    """The service under ``kind`` ("waitress" or "gunicorn") with
    ``type_settings`` ({type: {key: value}}) added."""

    def __init__(self, kind, type_settings=None, name="bench"):
        os.makedirs(STATE_DIR, exist_ok=True)
        overrides = {}
        for type_name in SIMULATED_TYPES:
            prefix = "simplestack.hypervisor.%s." % type_name
            overrides[prefix + "allowed_hosts"] = "127.0.0.0/8"
            overrides[prefix + "ca_bundle"] = CA_BUNDLE
        for type_name, settings in (type_settings or {}).items():
            for key, value in settings.items():
                overrides["simplestack.hypervisor.%s.%s" % (type_name, key)] = \
                    str(value)
        sections = {"app:main": overrides}
        if kind == "waitress":
            sections["server:main"] = {"listen": "127.0.0.1:%(http_port)s"}
        self.kind = kind
        self.ini_path = derive_ini(
            SERVER_INIS[kind], sections,
            os.path.join(STATE_DIR, "%s-%s-%d.ini" % (name, kind, os.getpid())))
        self.threads = server_threads(kind, self.ini_path)
        self.server = Server(self.ini_path + ".log", self.ini_path)

    def __enter__(self):
        self.server.start()
        self._wait_ready()
        return self

    def __exit__(self, *exc_info):
        self.server.stop()
        # production.ini puts gunicorn's metrics and control socket under
        # .state, named after the port.
        shutil.rmtree(os.path.join(ROOT, ".state", "metrics", str(self.port)),
                      ignore_errors=True)
        for path in (self.ini_path, self.ini_path + ".log",
                     os.path.join(ROOT, ".state",
                                  "gunicorn-%d.ctl" % self.port)):
            if os.path.exists(path):
                os.remove(path)

    def _wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.get("/", None)[0] < 500:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the %s server did not respond within %d s"
                           % (self.kind, timeout))

    @property
    def port(self):
        return self.server.port

    def get(self, path, simulator):
        """Send one GET on a new connection; return (status, body)."""
        headers = {}
        if simulator is not None:
            headers["x-simplestack-hypervisor-token"] = make_token(
                simulator.username, simulator.password)
        connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                timeout=300)
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()
