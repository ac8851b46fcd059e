"""Errors of the Simplestack API, and the one function that renders them.

Every error body has the same shape::

    {"error": <name>, "message": <text>}

with ``details`` (a list of ``{"location", "name", "description"}``) for
validation errors and ``hypervisor`` (``{"code", "params"}``) when the
hypervisor's own error is known. Clients switch on ``error``, so the names
below are part of the API and never change.

=====  ================================  ==========================================
status name                              raised when
=====  ================================  ==========================================
400    InvalidArguments                  body not JSON, schema violation, bad value
401    Unauthorized                      token missing, not base64, no colon, not UTF-8;
                                         caller token missing or not listed
401    HypervisorAuthenticationFailed    the hypervisor rejected the credentials
403    HostNotAllowed                    the host is outside the allow-list
404    EntityNotFound                    unknown guest, disk, NIC, ..., type or path
405    MethodNotAllowed                  the path exists, the method does not
409    InvalidState                      the guest's current state forbids the operation
409    Conflict                          a duplicate (MAC, VLAN, ambiguous name)
408    RequestTimeout                    the client sent no body data for
                                         simplestack.client_timeout seconds
411    LengthRequired                    an image upload without Content-Length
413    RequestTooLarge                   a JSON body over the configured limit
500    InternalError                     a bug of ours; details go to the log only
501    FeatureNotImplemented             the hypervisor or adapter cannot do it
502    HypervisorError                   any other hypervisor failure
502    HypervisorUnreachable             connection refused, DNS or TLS failure
503    ServiceUnavailable                too many image streams or sessions per host;
                                         see Retry-After
504    HypervisorTimeout                 no answer within the configured timeout
=====  ================================  ==========================================
"""

import json
import logging

from simplestack.responses import Response

#: WSGI environ key that makes production.ini's gunicorn worker close
#: the connection after the response (see SimplestackError.close_connection).
CLOSE_CONNECTION_KEY = "simplestack.close_connection"

logger = logging.getLogger(__name__)


class SimplestackError(Exception):
    """Base of every error that the API reports to its caller.

    ``original`` keeps the SDK exception an adapter translated, for the log;
    it is never rendered into the response.
    """

    status = 500
    name = "InternalError"
    #: Set on errors that leave the request body incomplete, so that the
    #: response closes the connection (validation.body_incomplete).
    close_connection = False

    def __init__(self, message, *, details=None, code=None, params=None,
                 original=None, headers=None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.code = code
        self.params = params
        self.original = original
        self.headers = headers or {}

    def body(self):
        body = {"error": self.name, "message": self.message}
        if self.details:
            body["details"] = self.details
        if self.code is not None or self.params:
            body["hypervisor"] = {
                "code": self.code,
                "params": list(self.params or []),
            }
        return body


class InvalidArguments(SimplestackError):
    status = 400
    name = "InvalidArguments"


class Unauthorized(SimplestackError):
    status = 401
    name = "Unauthorized"


class HypervisorAuthenticationFailed(SimplestackError):
    status = 401
    name = "HypervisorAuthenticationFailed"


class HostNotAllowed(SimplestackError):
    status = 403
    name = "HostNotAllowed"


class EntityNotFound(SimplestackError):
    status = 404
    name = "EntityNotFound"


class MethodNotAllowed(SimplestackError):
    status = 405
    name = "MethodNotAllowed"


class InvalidState(SimplestackError):
    """The guest's state forbids the operation; the message names the state."""

    status = 409
    name = "InvalidState"


class Conflict(SimplestackError):
    status = 409
    name = "Conflict"


class LengthRequired(SimplestackError):
    status = 411
    name = "LengthRequired"


class RequestTimeout(SimplestackError):
    status = 408
    name = "RequestTimeout"


class RequestTooLarge(SimplestackError):
    status = 413
    name = "RequestTooLarge"


class InternalError(SimplestackError):
    status = 500
    name = "InternalError"


class FeatureNotImplemented(SimplestackError):
    status = 501
    name = "FeatureNotImplemented"


class HypervisorError(SimplestackError):
    status = 502
    name = "HypervisorError"


class HypervisorUnreachable(SimplestackError):
    status = 502
    name = "HypervisorUnreachable"


class ServiceUnavailable(SimplestackError):
    status = 503
    name = "ServiceUnavailable"


class HypervisorTimeout(SimplestackError):
    status = 504
    name = "HypervisorTimeout"


#: The maximum characters of one request value (a path, a path segment,
#: a method, a query or JSON body value) that an error message quotes.
MAX_QUOTED_CHARACTERS = 128
#: The maximum characters of an error message. It bounds the messages
#: that quote a long request value in a form that shorten_quoted_values
#: does not find, such as percent-encoded or in another case.
MAX_MESSAGE_CHARACTERS = 4096


def shorten_quoted(text, limit=MAX_QUOTED_CHARACTERS):
    """Return ``text``, or its first ``limit`` characters and its length
    when it is longer."""
    if len(text) <= limit:
        return text
    return "%s...(%d characters in all)" % (text[:limit], len(text))


def shorten_quoted_values(message, values):
    """Return ``message`` with each of the request ``values`` that it
    quotes cut by shorten_quoted, as the value is and in its repr() form
    (a message that formats it with %r), and the whole message cut to
    MAX_MESSAGE_CHARACTERS."""
    long_values = sorted(
        {value for value in values if len(value) > MAX_QUOTED_CHARACTERS},
        key=len, reverse=True)
    # The longest first: a path is cut as a whole, not segment by segment.
    for value in long_values:
        for form in (value, repr(value)[1:-1]):
            if form in message:
                message = message.replace(form, shorten_quoted(form))
    return shorten_quoted(message, MAX_MESSAGE_CHARACTERS)


def shorten_error(error, values):
    """Cut the request ``values`` that the message and the details of
    ``error`` quote (see shorten_quoted_values); return ``error``."""
    error.message = shorten_quoted_values(error.message, values)
    for detail in error.details or ():
        if isinstance(detail.get("description"), str):
            detail["description"] = shorten_quoted_values(
                detail["description"], values)
    return error


INTERNAL_ERROR_MESSAGE = (
    "An internal error occurred; the request id in the log has the details."
)


def error_response(error, headers=None):
    """Render ``error`` (a SimplestackError) as a new JSON error response.

    A new response, not ``request.response``: a view may have set a status
    or a ``Location`` on that one before it failed.
    """
    response = Response()
    response.status_int = error.status
    response.content_type = "application/json"
    response.charset = "utf-8"
    response.text = json.dumps(error.body())
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
