"""The batched metric updates of multiprocess mode return the same scrape
as prometheus_client's own updates.

prometheus_client fixes its mode at its first import, so each mode runs in
a subprocess of its own with PROMETHEUS_MULTIPROC_DIR set.
"""

import json
import subprocess
import sys

from tests.server import ROOT

SCRIPT = r"""
import json
import os
import sys
import tempfile

with tempfile.TemporaryDirectory() as directory:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory

    from prometheus_client.parser import text_string_to_metric_families
    from webtest import TestApp

    from simplestack import main, metrics
    from tests.api.conftest import app_settings
    from tests.conftest import make_token

    app = TestApp(main({}, **app_settings()), extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})
    if sys.argv[1] == "stock":
        metrics._metrics._batch = None
    batched = metrics._metrics._batch is not None

    for _ in range(5):
        app.get("/test/default/guests")
    for _ in range(3):
        app.get("/test/default/guests/no-such-guest", status=404)
    app.get("/healthz")
    app.post("/test/default/guests", "not json", status=400,
             content_type="application/json")
    # Nothing listens on port 1: a hypervisor error, counted by name.
    app.get("/tcp/127.0.0.1:1/guests", status=502)

    samples = []
    for family in text_string_to_metric_families(app.get("/metrics").text):
        for sample in family.samples:
            samples.append([sample.name, sample.labels, sample.value])
    print(json.dumps({"batched": batched, "samples": samples}))
"""


def scrape_after_requests(mode):
    finished = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True,
        text=True, timeout=120, cwd=ROOT)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.splitlines()[-1])


def timing_free(samples):
    """Return {(name, labels): value} without the samples that depend on
    request durations: histogram sums and finite buckets."""
    samples_by_key = {}
    for name, labels, value in samples:
        if name.endswith("_sum"):
            continue
        if name.endswith("_bucket") and labels["le"] != "+Inf":
            continue
        samples_by_key[(name, tuple(sorted(labels.items())))] = value
    return samples_by_key


def test_batched_updates_match_stock_updates():
    batched = scrape_after_requests("batched")
    stock = scrape_after_requests("stock")

    assert batched["batched"] is True
    assert stock["batched"] is False
    assert timing_free(batched["samples"]) == timing_free(stock["samples"])


def test_batched_histogram_is_consistent():
    samples = scrape_after_requests("batched")["samples"]
    guests = "/{hypervisor}/{host}/guests"
    labels = {"hypervisor": "test", "endpoint": guests, "method": "GET",
              "status": "200"}

    def value(name, **extra):
        expected_labels = dict(labels, **extra)
        found, = [sample[2] for sample in samples
                  if sample[0] == name and sample[1] == expected_labels]
        return found

    buckets = [sample for sample in samples
               if sample[0] == "simplestack_request_duration_seconds_bucket"
               and dict(sample[1], le=None) == dict(labels, le=None)]
    counts = [sample[2] for sample in buckets]
    assert counts == sorted(counts)
    assert counts[-1] == 5
    assert value("simplestack_request_duration_seconds_count") == 5
    assert 0 < value("simplestack_request_duration_seconds_sum") < 60
    assert value("simplestack_requests_total") == 5
    in_progress = [sample[2] for sample in samples
                   if sample[0] == "simplestack_requests_in_progress"
                   and sample[1] == {"hypervisor": "test"}]
    assert in_progress == [0.0]
