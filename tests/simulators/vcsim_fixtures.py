"""pytest fixtures that run govmomi's vSphere simulator as a subprocess.

Use from a conftest.py::

    from tests.simulators.vcsim_fixtures import vcsim_simulator  # noqa: F401

``vcsim_simulator`` is session-scoped and parametrized over both models,
"vpx" (a vCenter: one datacenter, a standalone host and a cluster of three
hosts, four powered-on VMs) and "esx" (one ESX host, two powered-on VMs).
Every test that uses it runs once per model. To run on one model only::

    @pytest.mark.parametrize("vcsim_simulator", ["esx"], indirect=True)

The simulator serves HTTPS on a free loopback port with a certificate from
the development CA (tests/simulators/ca.py), and login is strict. Tests that
change the inventory should name their objects uniquely and clean up.
"""

import contextlib
import json
import os
import signal
import ssl
import subprocess
import threading
import urllib.parse
import urllib.request

import pytest

from . import ca
from .vcsim import build

START_TIMEOUT = 60
STOP_TIMEOUT = 10


class VcsimSimulator:
    """The launcher running one model, started with ``start()``."""

    def __init__(self, model="vpx", vms=None, temporary_dir=None, host="127.0.0.1",
                 delay_ms=None):
        if model not in build.MODELS:
            raise ValueError("invalid model %r; expected one of %s"
                             % (model, ", ".join(build.MODELS)))
        self.model = model
        self.vms = vms
        # Milliseconds the simulator adds to every SOAP call.
        self.delay_ms = delay_ms
        self.temporary_dir = temporary_dir
        self.host = host
        self.port = None
        self.url = None
        self.username = build.DEFAULT_USERS[model]
        self.password = build.DEFAULT_PASSWORD
        self.ca_bundle = ca.ca_bundle_path()
        self.process = None
        self.output = []

    @property
    def netloc(self):
        """``HOST:PORT``, as the service's /vmware/HOST:PORT/... paths take it."""
        return "%s:%d" % (self.host, self.port)

    def start(self):
        binary = build.build()
        command = build.launcher_command(binary, (self.host, 0), model=self.model,
                                         vms=self.vms, username=self.username,
                                         password=self.password,
                                         delay_ms=self.delay_ms)
        environment = dict(os.environ)
        if self.temporary_dir is not None:
            # The model's datastores are folders under TMPDIR, removed on SIGTERM.
            environment["TMPDIR"] = str(self.temporary_dir)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True,
                                        env=environment)
        # The first line is the URL; a timer kills a simulator that never prints it.
        timer = threading.Timer(START_TIMEOUT, self.process.kill)
        timer.start()
        try:
            first = self.process.stdout.readline().strip()
        finally:
            timer.cancel()
        if not first.startswith("https://"):
            rest = self.process.stdout.read() if self.process.poll() is not None else ""
            self.stop()
            raise RuntimeError("the vSphere simulator did not start: %r %s" % (first, rest))
        self.url = first
        self.port = urllib.parse.urlsplit(first).port
        # Keep reading the output so the pipe never fills.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self):
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self):
        """Send SIGTERM to the launcher, then SIGKILL after STOP_TIMEOUT seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)

    def ssl_context(self):
        """Return a client SSLContext that verifies the simulator's certificate."""
        return ssl.create_default_context(cafile=self.ca_bundle)

    def stats(self):
        """Return the launcher's counters: {"logins": SOAP Login calls}."""
        with urllib.request.urlopen(self.url.replace("/sdk", "/simulator/stats"),
                                    context=self.ssl_context(), timeout=30) as response:
            return json.loads(response.read())

    @contextlib.contextmanager
    def session(self, username=None, password=None):
        """Yield a pyVmomi ServiceInstance logged in over verified TLS, then log out."""
        from pyVim.connect import Disconnect, SmartConnect

        service = SmartConnect(host=self.host, port=self.port,
                               user=self.username if username is None else username,
                               pwd=self.password if password is None else password,
                               sslContext=self.ssl_context())
        try:
            yield service
        finally:
            Disconnect(service)


@contextlib.contextmanager
def running_vcsim(model="vpx", vms=None, temporary_dir=None):
    """Start a simulator of ``model`` and stop it on exit."""
    simulator = VcsimSimulator(model, vms=vms, temporary_dir=temporary_dir).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="session", params=build.MODELS)
def vcsim_simulator(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vcsim-%s" % request.param)
    with running_vcsim(request.param, temporary_dir=folder) as simulator:
        yield simulator
