"""Run the service under a real WSGI server (pserve + waitress) for tests."""

import os
import signal
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


def wait_until_listening(process, port, timeout, name, read_log):
    """Wait until 127.0.0.1:``port`` accepts TCP connections.

    Raise RuntimeError with the text of ``read_log()`` when ``process``
    exits first, and RuntimeError when ``timeout`` seconds pass. ``name``
    is the program's name in those messages.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("%s exited with %s; log: %s" % (
                name, process.returncode, read_log()))
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("%s did not listen within %d s" % (name, timeout))


def stop_process(process, stop_signal=signal.SIGTERM):
    """Send ``stop_signal`` to a running ``process`` and wait for it.

    A process still running after 10 s gets SIGKILL.
    """
    if process is None or process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


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
        try:
            wait_until_listening(self.process, self.port, timeout, "pserve",
                                 self.read_log)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        stop_process(self.process)
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def read_log(self):
        with open(self.log_path, "rb") as log:
            return log.read().decode("utf-8", "replace")
