"""Run production.ini's gunicorn (through pserve) on loopback for tests."""

import json
import os
import shutil
import time
import urllib.error
import urllib.request

from tests.server import ROOT, Server

PRODUCTION_INI = os.path.join(ROOT, "production.ini")


def http_get(url, headers=None, timeout=10):
    """Return (status, headers, body) of a GET; HTTP errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def derive_production_ini(path, overrides):
    """Write production.ini to ``path`` with ``overrides`` in [app:main].

    Lines that set an overridden key are dropped. ``%(here)s`` becomes the
    checkout, so the copy keeps production.ini's metrics directory.
    """
    with open(PRODUCTION_INI, encoding="utf-8") as production:
        lines = production.read().replace("%(here)s", ROOT).splitlines()
    kept = [line for line in lines
            if line.partition("=")[0].strip() not in overrides]
    anchor = kept.index("use = egg:simplestack")
    added = ["%s = %s" % item for item in overrides.items()]
    kept[anchor + 1:anchor + 1] = added
    with open(path, "w", encoding="utf-8") as derived:
        derived.write("\n".join(kept) + "\n")
    return path


class ProductionServer(Server):
    """``pserve production.ini http_port=PORT``: gunicorn with its workers.

    The instance writes its metrics to .state/metrics/PORT and its control
    socket to .state/gunicorn-PORT.ctl, as production.ini sets them;
    ``stop`` removes both. ``ini_path`` names a copy made by
    :func:`derive_production_ini`.
    """

    def __init__(self, log_path, ini_path=PRODUCTION_INI):
        super().__init__(log_path, ini_path)
        self.metrics_dir = os.path.join(
            ROOT, ".state", "metrics", str(self.port))
        self.control_socket = os.path.join(
            ROOT, ".state", "gunicorn-%d.ctl" % self.port)

    def start(self, timeout=30):
        """Start gunicorn and wait until a worker returns /healthz."""
        super().start(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status, _, _ = http_get(self.url + "/healthz", timeout=1)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not return /healthz within %d s; "
                           "log: %s" % (timeout, self.read_log()))

    def stop(self):
        """Stop gunicorn's master with SIGTERM; return its exit code."""
        super().stop()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        if os.path.exists(self.control_socket):
            os.remove(self.control_socket)
        return self.process.returncode if self.process else None

    def log_entries(self):
        """Return the log's JSON lines, parsed; other lines are skipped."""
        entries = []
        for line in self.read_log().splitlines():
            if line.startswith("{"):
                entries.append(json.loads(line))
        return entries
