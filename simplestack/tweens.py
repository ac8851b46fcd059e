"""The request tween: a request id and one summary log line per request."""

import logging
import re
import time
import uuid

from simplestack import errors

logger = logging.getLogger("simplestack.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's request id is echoed into logs and headers: keep it short and
# free of anything that could forge a log line or a header.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(request):
    candidate = request.headers.get(REQUEST_ID_HEADER, "")
    if REQUEST_ID_PATTERN.match(candidate):
        return candidate
    return uuid.uuid4().hex


def undecodable_url_response(request):
    """Return a 400 response when the path or query is not UTF-8, else None.

    WebOb decodes both lazily and raises UnicodeDecodeError wherever they
    are first read, which would be outside every exception view.
    """
    try:
        request.path_info
        request.GET.items()
    except UnicodeDecodeError:
        return errors.error_response(errors.InvalidArguments(
            "the URL is not valid UTF-8 once percent-decoded"))
    return None


def safe_path(request):
    return request.environ.get("PATH_INFO", "").encode(
        "latin-1", "replace").decode("utf-8", "replace")


def request_summary_tween_factory(handler, registry):
    hypervisor_types = registry.settings["simplestack.hypervisor_types"]

    def request_summary_tween(request):
        request_id = request_id_of(request)
        request.environ["simplestack.request_id"] = request_id
        started = time.monotonic()
        status = 500
        path = safe_path(request)
        try:
            response = undecodable_url_response(request) or handler(request)
            status = response.status_int
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            host_context = request.environ.get("simplestack.host_context")
            if host_context is not None:
                host_context.release(request)
            adapter = request.environ.get("simplestack.adapter")
            parts = path.split("/")
            # Only a configured type name is logged as such: the path is
            # the caller's text.
            hypervisor = parts[1] if len(parts) > 2 else "-"
            if hypervisor not in hypervisor_types:
                hypervisor = "-"
            logger.info(
                "request_id=%s method=%s path=%r hypervisor=%s status=%d "
                "duration_ms=%.1f hypervisor_calls=%d",
                request_id, request.method, path, hypervisor, status,
                (time.monotonic() - started) * 1000,
                adapter.calls if adapter is not None else 0)

    return request_summary_tween
