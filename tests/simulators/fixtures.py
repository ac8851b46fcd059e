"""pytest fixtures that run simulators as subprocesses.

Use from a conftest.py::

    from tests.simulators.fixtures import xapi_simulator  # noqa: F401

``xapi_simulator`` is session-scoped: one simulator, with 3 seeded guests,
serves every test of the run. Tests that change the pool should name their
objects uniquely and clean up.
"""

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import urllib.request

import pytest

from . import ca

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = 60


class SimulatorProcess:
    """A simulator started with ``python -m tests.simulators``."""

    def __init__(self, kind, *arguments, http=False):
        self.kind = kind
        self.arguments = list(arguments)
        self.http = http
        self.process = None
        self.url = None
        self.ca_bundle = None if http else ca.ca_bundle_path()
        self.output = []

    def start(self):
        command = [sys.executable, "-m", "tests.simulators", self.kind,
                   "--listen", "127.0.0.1:0"] + self.arguments
        if self.http:
            command.append("--http")
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        # The first line is the URL; a timer kills a simulator that never prints it.
        timer = threading.Timer(START_TIMEOUT, self.process.kill)
        timer.start()
        try:
            first = self.process.stdout.readline().strip()
        finally:
            timer.cancel()
        if not first.startswith(("http://", "https://")):
            rest = self.process.stdout.read() if self.process.poll() is not None else ""
            self.stop()
            raise RuntimeError("simulator did not start: %r %s" % (first, rest))
        self.url = first
        # Keep reading the output so the pipe never fills.
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self):
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    # Control endpoints

    def ssl_context(self):
        return None if self.http else ssl.create_default_context(cafile=self.ca_bundle)

    def request(self, method, path, document=None):
        body = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(self.url.rstrip("/") + path, data=body,
                                         method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, context=self.ssl_context(),
                                    timeout=30) as response:
            return json.loads(response.read())

    def stats(self):
        """Return {"calls": {method: n}, "sessions": {originator: open}, ...}."""
        return self.request("GET", "/simulator/stats")

    def reset_stats(self):
        return self.request("DELETE", "/simulator/stats")

    def set_fault(self, method, action="fail", error=None, times=None, seconds=None):
        """Make ``method`` fail with ``error`` ([CODE, params...]) or hang.

        ``times`` limits the rule to that many calls; ``seconds`` bounds a hang.
        """
        rule = {"method": method, "action": action}
        for key, value in (("error", error), ("times", times), ("seconds", seconds)):
            if value is not None:
                rule[key] = value
        return self.request("POST", "/simulator/faults", rule)

    def clear_faults(self):
        return self.request("DELETE", "/simulator/faults")

    def set_latency(self, seconds):
        return self.request("PUT", "/simulator/latency", {"seconds": seconds})


class XapiSimulator(SimulatorProcess):
    # Credentials the simulator accepts (its --user and --password defaults).
    username = "root"
    password = "simulator"

    def __init__(self, *arguments, http=False):
        super().__init__("xapi", *arguments, http=http)

    @property
    def member_url(self):
        """URL of the pool member, where every call fails with HOST_IS_SLAVE."""
        return self.url.replace("://127.0.0.1:", "://127.0.0.2:")

    @property
    def netloc(self):
        return self.url.split("://", 1)[1].rstrip("/")


@pytest.fixture(scope="session")
def xapi_simulator():
    simulator = XapiSimulator("--vms", "3").start()
    try:
        yield simulator
    finally:
        simulator.stop()
