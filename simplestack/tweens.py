"""The request tween: a request id, one summary log line and the metrics
of each request."""

import collections
import logging
import os
import re
import time

from cornice.pyramidhook import wrap_request
from pyramid.events import NewRequest

from simplestack import errors, logs
from simplestack.resources.base import REQUEST_ENDED_KEY

logger = logging.getLogger("simplestack.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is echoed into logs and headers: keep it short and
# free of anything that could forge a log line or a header.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# simplestack.client_timeout: seconds that a request may wait on its client
# under gunicorn, for each read of the body and each write of the response.
# gunicorn's threaded workers wait without limit, so a client that stops
# sending an upload or reading an export would hold a thread and a
# hypervisor session for good. Under waitress, which reads a whole request
# body before it calls the application, the setting has no effect.

# The HTTP servers pass on a method of any length made of token characters;
# the log keeps its first characters only.
LOGGED_METHOD_LENGTH = 32

# The maximum characters of a path in log lines. waitress passes on request
# lines up to its 256 KiB header limit, and each would become a log line as
# long. gunicorn's default limit on the request line is 4094 bytes.
LOGGED_PATH_LENGTH = 4096


# Request ids made ahead. uuid.uuid4() reads os.urandom on every call, and
# that system call hands the GIL to another thread of a busy worker. So one
# read here makes RANDOM_IDS_PER_READ ids.
RANDOM_IDS_PER_READ = 256
_random_ids = collections.deque()
# A forked worker must not hand out the ids that its parent may use too.
os.register_at_fork(after_in_child=_random_ids.clear)

# The bits that make 128 random bits a version 4 UUID (RFC 4122): the
# version field is 4 and the variant field is 10.
UUID4_CLEARED_BITS = (0xf000 << 64) | (0xc000 << 48)
UUID4_SET_BITS = (0x4000 << 64) | (0x8000 << 48)


def random_request_id():
    """Return a new request id: a random UUID (version 4) as 32 hex digits,
    as uuid.uuid4().hex returns it."""
    try:
        return _random_ids.popleft()
    except IndexError:
        pass
    block = os.urandom(16 * RANDOM_IDS_PER_READ)
    ids = []
    for start in range(0, len(block), 16):
        value = int.from_bytes(block[start:start + 16], "big")
        value = value & ~UUID4_CLEARED_BITS | UUID4_SET_BITS
        ids.append("%032x" % value)
    # Two threads may both refill, and each id is still used once.
    _random_ids.extend(ids[1:])
    return ids[0]


# The environ key under which WebOb 1.8 keeps the parsed query string of
# request.GET.
PARSED_QUERY_KEY = "webob._parsed_query_vars"


# The header's WSGI environ key, as request.headers would look it up. That
# lookup builds a mapping and translates the name on every request.
REQUEST_ID_ENVIRON_KEY = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")


def request_id_of(request):
    candidate = request.environ.get(REQUEST_ID_ENVIRON_KEY, "")
    if REQUEST_ID_PATTERN.fullmatch(candidate):
        return candidate
    return random_request_id()


def loggable_method(method):
    if len(method) <= LOGGED_METHOD_LENGTH:
        return method
    return method[:LOGGED_METHOD_LENGTH] + "..."


def undecodable_url_response(request):
    """Return a 400 response when the path or query is not UTF-8, else None.

    WebOb decodes both lazily and raises UnicodeDecodeError wherever they
    are first read, which would be outside every exception view.
    """
    try:
        request.path_info
        # Without a query there is nothing to decode.
        if request.environ.get("QUERY_STRING"):
            request.GET.items()
    except UnicodeDecodeError:
        return errors.error_response(errors.InvalidArguments(
            "the URL is not valid UTF-8 once percent-decoded"))
    return None


def safe_path(request):
    return request.environ.get("PATH_INFO", "").encode(
        "latin-1", "replace").decode("utf-8", "replace")


def loggable_path(path):
    if len(path) <= LOGGED_PATH_LENGTH:
        return path
    return path[:LOGGED_PATH_LENGTH] + "..."


def hypervisor_of(path, hypervisor_types):
    """Return the hypervisor type named by ``path``, or "-" for none.

    Only a configured type name is reported as such, because the path is
    the caller's text and becomes a log field and a metric label.
    """
    parts = path.split("/")
    hypervisor = parts[1] if len(parts) > 2 else "-"
    return hypervisor if hypervisor in hypervisor_types else "-"


def endpoint_of(request):
    """Return the route pattern that matched, or "-" when none did.

    Metrics use the pattern, never the path, so ids in paths do not
    create a label value each.
    """
    route = getattr(request, "matched_route", None)
    return route.pattern if route is not None else "-"


# The text line for people. The record has the same fields as keys for
# JsonFormatter.
SUMMARY_FORMAT = (
    "request_id=%(request_id)s method=%(method)s path=%(path)r "
    "hypervisor=%(hypervisor)s status=%(status)d "
    "duration_ms=%(duration_ms).1f hypervisor_calls=%(hypervisor_calls)d")


def log_request_summary(fields):
    """Log the summary line of a request, with ``fields`` as its arguments
    and its extra fields.

    The record is the one that ``logger.info(SUMMARY_FORMAT, fields,
    extra=fields)`` makes, except that it names this function and the line
    of its ``def`` as its caller. That skips Logger.findCaller's walk of the
    stack: about 2 µs of CPU per request in timeit, and 4 µs in a py-spy
    profile of bench/request_cpu.py's loop.
    """
    if logger.isEnabledFor(logging.INFO):
        logger.handle(logger.makeRecord(
            logger.name, logging.INFO, SUMMARY_CALLER.co_filename,
            SUMMARY_CALLER.co_firstlineno, SUMMARY_FORMAT, (fields,), None,
            SUMMARY_CALLER.co_name, fields))


SUMMARY_CALLER = log_request_summary.__code__


def run_cornice_subscriber_in_tween(registry):
    """Unregister Cornice's NewRequest subscriber, which the tween then
    calls, and turn off Pyramid's request events, when that subscriber is
    the only one.

    It made Pyramid build and dispatch four events per request
    (NewRequest, BeforeTraversal, ContextFound, NewResponse). Pyramid turns
    the events on again when a subscriber is registered later. With other
    subscribers, such as Cornice's localizer under ``available_languages``,
    which must run first, nothing changes. Call it after the configuration
    is committed.
    """
    registry.simplestack_calls_cornice_subscriber = False
    registrations = list(registry.registeredHandlers())
    if len(registrations) != 1 or list(
            registry.registeredSubscriptionAdapters()):
        return
    # Pyramid registers a wrapper that calls the subscriber with the event
    # alone.
    handler = registrations[0].handler
    if getattr(handler, "__wrapped__", handler) is not wrap_request:
        return
    registry.unregisterHandler(handler, registrations[0].required)
    registry.has_listeners = False
    registry.simplestack_calls_cornice_subscriber = True


def request_summary_tween_factory(handler, registry):
    hypervisor_types = registry.settings["simplestack.hypervisor_types"]
    metrics = registry.simplestack_metrics
    client_timeout = registry.settings["simplestack.client_timeout"]
    calls_cornice_subscriber = getattr(
        registry, "simplestack_calls_cornice_subscriber", False)

    def request_summary_tween(request):
        request_id = request_id_of(request)
        request.environ["simplestack.request_id"] = request_id
        client_socket = request.environ.get("gunicorn.socket")
        if client_socket is not None:
            # gunicorn makes the socket blocking again, without a timeout,
            # before it reads the next request. A body read that times out
            # answers 408 (see validation.read_from_client).
            client_socket.settimeout(client_timeout)
        started = time.monotonic()
        status = 500
        path = safe_path(request)
        hypervisor = hypervisor_of(path, hypervisor_types)
        metrics.request_started(hypervisor)
        log_token = logs.request_started()
        try:
            response = undecodable_url_response(request)
            if response is None:
                # Cornice's subscriber, run where Pyramid would send
                # NewRequest, adds request.validated, .errors, .info and
                # Cornice's response callbacks.
                if calls_cornice_subscriber:
                    wrap_request(NewRequest(request))
                response = handler(request)
            status = response.status_int
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            # From here on, the resources of this request open nothing.
            request.environ[REQUEST_ENDED_KEY] = True
            host_context = request.environ.get("simplestack.host_context")
            if host_context is not None:
                host_context.release(request)
            # WebOb keeps the parsed query in the environ, and the parsed
            # query keeps the environ: a reference cycle that would keep the
            # request's objects until the cyclic garbage collector runs.
            # Later readers of request.GET parse the query again.
            request.environ.pop(PARSED_QUERY_KEY, None)
            adapter = request.environ.get("simplestack.adapter")
            hypervisor_calls = adapter.calls if adapter is not None else 0
            seconds = time.monotonic() - started
            fields = {
                "request_id": request_id,
                "method": loggable_method(request.method),
                "path": loggable_path(path),
                "hypervisor": hypervisor,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "hypervisor_calls": hypervisor_calls,
            }
            try:
                log_request_summary(fields)
            finally:
                # After the line: the last request in progress writes it.
                logs.request_finished(log_token)
            metrics.request_finished(
                hypervisor, endpoint_of(request), request.method, status,
                seconds, hypervisor_calls, getattr(request, "exception", None))

    return request_summary_tween
