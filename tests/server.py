"""Run the service under a real WSGI server (pserve + waitress) for tests."""

import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTING_INI = os.path.join(ROOT, "testing.ini")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``pserve testing.ini`` (or ``ini_path``) on a free loopback port,
    its log in a file."""

    def __init__(self, log_path, ini_path=TESTING_INI):
        self.ini_path = ini_path
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = log_path
        self.process = None

    def start(self, timeout=30):
        pserve = os.path.join(os.path.dirname(sys.executable), "pserve")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [pserve, self.ini_path, "http_port=%d" % self.port],
            cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("pserve exited with %s; log: %s" % (
                    self.process.returncode, self.read_log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("pserve did not listen within %ds" % timeout)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def read_log(self):
        with open(self.log_path, "rb") as log:
            return log.read().decode("utf-8", "replace")
