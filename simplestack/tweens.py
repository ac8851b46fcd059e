"""The request tween: a request id and one summary log line per request."""

import logging
import re
import time
import uuid

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


def request_summary_tween_factory(handler, registry):
    def request_summary_tween(request):
        request_id = request_id_of(request)
        request.environ["simplestack.request_id"] = request_id
        started = time.monotonic()
        status = 500
        try:
            response = handler(request)
            status = response.status_int
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            adapter = request.environ.get("simplestack.adapter")
            parts = request.path.split("/")
            logger.info(
                "request_id=%s method=%s path=%s hypervisor=%s status=%d "
                "duration_ms=%.1f hypervisor_calls=%d",
                request_id, request.method, request.path,
                parts[1] if len(parts) > 2 else "-", status,
                (time.monotonic() - started) * 1000,
                adapter.calls if adapter is not None else 0)

    return request_summary_tween
