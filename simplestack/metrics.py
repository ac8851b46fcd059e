"""Prometheus metrics of requests and hypervisor calls, served at /metrics.

One process keeps its metrics in memory. Under several worker processes
(gunicorn), prometheus_client's multiprocess mode applies: every process
writes its values to files in one directory, and /metrics sums the files of
all processes, live or dead, so every worker returns the same totals.
prometheus_client chooses the mode once, when ``prometheus_client.values``
is first imported, by whether ``PROMETHEUS_MULTIPROC_DIR`` is set. That is
why this module imports it only in :func:`configure_metrics`, after setting
the variable.
"""

import bisect
import logging
import os
import threading

from simplestack import errors

logger = logging.getLogger(__name__)

MULTIPROCESS_ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_KEY = "simplestack.metrics_dir"

# Seconds. Hypervisor calls range from milliseconds (a guest list) to
# minutes (a clone, or an adapter's 300 s read timeout).
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                    60, 120, 300, 600)

# Errors that report a failure of the hypervisor, not of the request.
HYPERVISOR_ERRORS = (
    errors.HypervisorError, errors.HypervisorUnreachable,
    errors.HypervisorTimeout, errors.HypervisorAuthenticationFailed)

# The method label takes these values, and "other" for any other method,
# because a caller can send any token as a method and each label value is a
# new time series.
METHOD_LABELS = frozenset((
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))
OTHER_METHOD_LABEL = "other"

_metrics = None
_metrics_lock = threading.Lock()


class Metrics:
    """The service's metrics, one set per process."""

    def __init__(self, multiprocess_dir):
        import prometheus_client

        self.multiprocess_dir = multiprocess_dir
        self.registry = prometheus_client.CollectorRegistry()
        labels = ("hypervisor", "endpoint", "method", "status")
        self.requests = prometheus_client.Counter(
            "simplestack_requests",
            "Requests answered, by hypervisor type, endpoint (the route "
            "pattern), method and status",
            labels, registry=self.registry)
        self.request_duration = prometheus_client.Histogram(
            "simplestack_request_duration_seconds",
            "Seconds from request to response headers; a streamed image "
            "body is not included",
            labels, buckets=DURATION_BUCKETS, registry=self.registry)
        # livesum: the sum over live processes only, so the gunicorn hook
        # removes the values of a worker that exited.
        self.requests_in_progress = prometheus_client.Gauge(
            "simplestack_requests_in_progress",
            "Requests being handled, by hypervisor type",
            ("hypervisor",), multiprocess_mode="livesum",
            registry=self.registry)
        self.hypervisor_calls = prometheus_client.Counter(
            "simplestack_hypervisor_calls",
            "Requests sent to hypervisors, by hypervisor type",
            ("hypervisor",), registry=self.registry)
        self.hypervisor_errors = prometheus_client.Counter(
            "simplestack_hypervisor_errors",
            "Requests that failed because of the hypervisor, by hypervisor "
            "type and error name",
            ("hypervisor", "error"), registry=self.registry)
        # Labelled children by metric and label values. labels() validates
        # and joins its arguments under a lock on every call, which was
        # about a third of the metrics' CPU time per request (cProfile). The label
        # values are bounded (see METHOD_LABELS), so this dict is too. Two
        # threads may both miss, and then both store the same child.
        self._children = {}
        # Label values -> the values that a finished request adds to, for
        # the batched updates of multiprocess mode.
        self._series = {}
        self._batch = multiprocess_batch() if multiprocess_dir else None

    def _child(self, metric, *label_values):
        key = (metric, label_values)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*label_values)
            self._children[key] = child
        return child

    def request_started(self, hypervisor):
        gauge = self._child(self.requests_in_progress, hypervisor)
        if self._batch is not None:
            self._batch.add(((gauge._value, 1),))
        else:
            gauge.inc()

    def request_finished(self, hypervisor, endpoint, method, status,
                         seconds, hypervisor_calls, exception):
        """Record a request whose response has been returned."""
        method_label = method if method in METHOD_LABELS \
            else OTHER_METHOD_LABEL
        if self._batch is not None:
            series = self._request_series(
                hypervisor, endpoint, method_label, status)
            amounts = series.amounts(seconds)
            if hypervisor_calls:
                amounts.append((self._child(
                    self.hypervisor_calls, hypervisor)._value,
                    hypervisor_calls))
            self._batch.add(amounts)
        else:
            self._child(self.requests_in_progress, hypervisor).dec()
            labels = (hypervisor, endpoint, method_label, str(status))
            self._child(self.requests, *labels).inc()
            self._child(self.request_duration, *labels).observe(seconds)
            if hypervisor_calls:
                self._child(self.hypervisor_calls, hypervisor).inc(
                    hypervisor_calls)
        if isinstance(exception, HYPERVISOR_ERRORS):
            self.hypervisor_errors.labels(hypervisor, exception.name).inc()

    def stream_failed(self, hypervisor, exception):
        """Record the exception that ended an image stream after its
        request, whose other metrics request_finished has recorded."""
        if isinstance(exception, HYPERVISOR_ERRORS):
            self.hypervisor_errors.labels(hypervisor, exception.name).inc()

    def _request_series(self, hypervisor, endpoint, method_label, status):
        key = (hypervisor, endpoint, method_label, status)
        series = self._series.get(key)
        if series is None:
            labels = (hypervisor, endpoint, method_label, str(status))
            duration = self._child(self.request_duration, *labels)
            series = RequestSeries(
                self._child(self.requests_in_progress, hypervisor)._value,
                self._child(self.requests, *labels)._value,
                duration._sum,
                list(duration._buckets),
                duration._upper_bounds)
            self._series[key] = series
        return series

    def render(self):
        """Return the exposition text and its content type."""
        import prometheus_client
        from prometheus_client import multiprocess

        registry = self.registry
        if self.multiprocess_dir:
            # Read every process's files at each scrape: the metrics
            # objects of this process hold only its own values.
            registry = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(
                registry, path=self.multiprocess_dir)
        return (prometheus_client.generate_latest(registry),
                prometheus_client.CONTENT_TYPE_LATEST)


class RequestSeries:
    """The prometheus_client values that one finished request adds to, for
    one set of label values."""

    __slots__ = ("in_progress", "requests", "duration_sum",
                 "duration_buckets", "upper_bounds")

    def __init__(self, in_progress, requests, duration_sum, duration_buckets,
                 upper_bounds):
        self.in_progress = in_progress
        self.requests = requests
        self.duration_sum = duration_sum
        self.duration_buckets = duration_buckets
        self.upper_bounds = upper_bounds

    def amounts(self, seconds):
        """Return a list of (value, amount) pairs: what the in-progress
        Gauge.dec, the requests Counter.inc and Histogram.observe(seconds)
        would add."""
        # Histogram.observe counts the first bucket whose bound is at least
        # the amount; the last bound is +Inf.
        bucket = self.duration_buckets[
            bisect.bisect_left(self.upper_bounds, seconds)]
        return [(self.in_progress, -1), (self.requests, 1),
                (self.duration_sum, seconds), (bucket, 1)]


class MultiprocessBatch:
    """Updater of several multiprocess-mode values under one acquisition of
    prometheus_client's lock, with one check for a fork.

    Each MmapedValue.inc takes the process-wide lock, calls getpid and
    writes the file. The five updates of a finished request cost about 8 µs
    that way (timeit). This class relies on prometheus_client 0.26.0's
    MmapedValue internals: the ``lock`` of its methods' closure, its
    ``_value``, ``_timestamp``, ``_file`` and ``_key`` attributes and its
    private fork check. :func:`multiprocess_batch` checks them once.
    """

    def __init__(self, lock, check_for_fork):
        self._lock = lock
        self._check_for_fork = check_for_fork

    def add(self, amounts):
        with self._lock:
            self._check_for_fork(amounts[0][0])
            for value, amount in amounts:
                # As MmapedValue.inc does.
                value._value += amount
                value._timestamp = 0.0
                value._file.write_value(value._key, value._value, 0.0)


def multiprocess_batch():
    """Return a MultiprocessBatch for prometheus_client's multiprocess
    values, or None when its internals differ from what the class needs."""
    from prometheus_client import values

    value_class = values.ValueClass
    inc = getattr(value_class, "inc", None)
    check = getattr(value_class, "_MmapedValue__check_for_pid_change", None)
    code = getattr(inc, "__code__", None)
    if check is None or code is None or inc.__closure__ is None:
        return None
    cells = dict(zip(code.co_freevars, inc.__closure__))
    lock = cells["lock"].cell_contents if "lock" in cells else None
    if not hasattr(lock, "acquire"):
        return None
    return MultiprocessBatch(lock, check)


def configure_metrics(settings):
    """Return this process's :class:`Metrics`, creating them on first use.

    ``simplestack.metrics_dir``, or else ``PROMETHEUS_MULTIPROC_DIR``,
    turns on multiprocess mode. Raises ValueError when prometheus_client
    was imported before the directory was known, because its mode is then
    fixed.
    """
    global _metrics
    directory = (settings.get(METRICS_DIR_KEY)
                 or os.environ.get(MULTIPROCESS_ENVIRONMENT_VARIABLE, ""))
    with _metrics_lock:
        if directory:
            directory = os.path.abspath(directory)
            os.makedirs(directory, exist_ok=True)
            os.environ[MULTIPROCESS_ENVIRONMENT_VARIABLE] = directory

        from prometheus_client import values

        if directory and values.ValueClass is values.MutexValue:
            raise ValueError(
                "setting %s: prometheus_client was imported before the "
                "metrics directory was set, so it counts in this process "
                "only; set %s in the environment before the service starts"
                % (METRICS_DIR_KEY, MULTIPROCESS_ENVIRONMENT_VARIABLE))
        if _metrics is None:
            _metrics = Metrics(directory)
            logger.info("metrics: %s", "multiprocess mode in %s" % directory
                        if directory else "this process only")
        elif _metrics.multiprocess_dir != directory:
            raise ValueError(
                "setting %s: this process already writes its metrics to "
                "%r, not %r" % (METRICS_DIR_KEY, _metrics.multiprocess_dir,
                                directory))
        return _metrics
