"""Exception views: every failure leaves in the API's JSON error shape."""

import logging

from pyramid.httpexceptions import HTTPException, HTTPMethodNotAllowed
from pyramid.view import exception_view_config, notfound_view_config

from simplestack import errors
from simplestack.resources import Root
from simplestack.tweens import loggable_method, loggable_path
from simplestack.views import quoted_request_values

logger = logging.getLogger(__name__)


def _describe_miss(request):
    """Say which part of the URL was not found, from the traversal result."""
    context = getattr(request, "context", None)
    view_name = getattr(request, "view_name", "")
    if context is None or not view_name:
        return "no resource at %s" % request.path
    if isinstance(context, Root):
        return ("unknown hypervisor type %r; configured types: %s"
                % (view_name, ", ".join(sorted(context.hypervisor_types))
                   or "none"))
    # The resource path is percent-encoded anew, so it may differ from
    # the path as sent, which shorten_error looks for.
    return "no %r below %s" % (view_name, errors.shorten_quoted(
        request.resource_path(context)))


def render_error(request, error, headers=None):
    """Render ``error`` with the long request values it quotes cut."""
    errors.shorten_error(error, quoted_request_values(request))
    return errors.error_response(error, headers)


@notfound_view_config()
def not_found(exc, request):
    return render_error(request, errors.EntityNotFound(_describe_miss(request)))


@exception_view_config(HTTPMethodNotAllowed)
def method_not_allowed(exc, request):
    allowed = exc.headers.get("Allow") or ""
    error = errors.MethodNotAllowed(
        "method %s is not allowed on %s%s" % (
            request.method, request.path,
            "; allowed: %s" % allowed if allowed else ""))
    return render_error(request, error,
                        {"Allow": allowed} if allowed else None)


@exception_view_config(errors.SimplestackError)
def simplestack_error(exc, request):
    errors.shorten_error(exc, quoted_request_values(request))
    if exc.status >= 500:
        # The hypervisor's own exception, kept by the adapter, goes to the
        # log only: SDK messages can quote URIs and parameters.
        logger.warning(
            "request %s %s failed: %s %s (%s)",
            loggable_method(request.method), loggable_path(request.path),
            exc.name, exc.message, type(exc.original).__name__
            if exc.original is not None else "no hypervisor exception")
    if exc.close_connection:
        request.environ[errors.CLOSE_CONNECTION_KEY] = True
    return errors.error_response(exc, exc.headers)


@exception_view_config(HTTPException)
def http_exception(exc, request):
    """Render Pyramid's other HTTP errors (400, 403, ...) as JSON."""
    if exc.status_int < 400:
        return exc
    error = errors.SimplestackError(exc.detail or exc.title)
    error.status = exc.status_int
    error.name = exc.title.replace(" ", "")
    return render_error(request, error)


@exception_view_config(Exception)
def internal_error(exc, request):
    logger.error("request %s %s %s failed with an internal error",
                 request.environ.get("simplestack.request_id"),
                 loggable_method(request.method),
                 loggable_path(request.path), exc_info=exc)
    return errors.error_response(
        errors.InternalError(errors.INTERNAL_ERROR_MESSAGE))
