"""Cornice services of the API, and what they share.

Every service below a host is declared with :func:`hypervisor_service`:
its route matches the URL, and traversal over the same pattern builds the
context (see :mod:`simplestack.resources`), so a view receives e.g. a Guest
resource whose ``adapter`` is this request's hypervisor connection.
"""

import bisect
import operator
import re
from urllib.parse import urlencode

import orjson
from cornice import Service

from simplestack import errors
from simplestack.resources import root_factory
from simplestack.responses import Response
from simplestack.validation import JSON_BODY_KEY

HOST_PATH = "/{hypervisor}/{host}"

#: (service name, method) -> (status, response schema factory, summary),
#: read by the OpenAPI document.
RESPONSES = {}


def quoted_request_values(request):
    """Return the texts of ``request`` that an error message may quote:
    the method, the path whole and by segment (decoded and as sent), the
    query's names and values, and the keys and strings of a JSON body.

    Only values longer than errors.MAX_QUOTED_CHARACTERS are returned,
    because only those are cut.
    """
    values = [request.method]
    try:
        for path in (request.path_info, request.path):
            values.append(path)
            values.extend(path.split("/"))
        for name, value in request.GET.items():
            values.extend((name, value))
    except UnicodeDecodeError:
        # tweens.undecodable_url_response rejects such URLs first.
        pass
    pending = [request.environ.get(JSON_BODY_KEY)]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            values.extend(key for key in item if isinstance(key, str))
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            values.append(item)
    return [value for value in values
            if len(value) > errors.MAX_QUOTED_CHARACTERS]


def validation_error_handler(request):
    """Render Cornice's ``request.errors`` in the API's error shape."""
    details = [
        {"location": error.get("location"), "name": error.get("name"),
         "description": str(error.get("description"))}
        for error in request.errors
    ]
    first = details[0] if details else {"name": "", "description": ""}
    where = " %s:" % first["name"] if first["name"] else ""
    message = "invalid request:%s %s" % (where, first["description"])
    if len(details) > 1:
        message += " (and %d more)" % (len(details) - 1)
    error = errors.InvalidArguments(message, details=details)
    return errors.error_response(
        errors.shorten_error(error, quoted_request_values(request)))


def hypervisor_service(name, suffix="", traverse_suffix=None, description=""):
    """Declare a service on ``/{hypervisor}/{host}<suffix>``.

    Traversal follows ``traverse_suffix`` (default: the whole suffix), so
    ``/guests/{guest_id}/power`` can traverse to the guest alone.
    """
    if traverse_suffix is None:
        traverse_suffix = suffix
    return Service(
        name=name,
        path=HOST_PATH + suffix,
        factory=root_factory,
        traverse=HOST_PATH + traverse_suffix,
        error_handler=validation_error_handler,
        description=description,
        # venusian registers a service found in the module that created
        # it: that is the caller of this function, one frame up.
        depth=2,
    )


def describe(service, method, status, schema_factory, summary):
    """Record a view's success status and response schema for OpenAPI."""
    RESPONSES[(service.name, method)] = (status, schema_factory, summary)


def created(request, record, location):
    """Set status 201 and a root-relative Location; return ``record``."""
    request.response.status_int = 201
    request.response.location = location
    return record


def no_content(request):
    request.response.status_int = 204
    return None


def json_response(request, value):
    """Return ``request.response`` with ``value`` encoded as JSON.

    Lists of thousands of records spent most of their rendering time in
    the json module, which orjson replaces. The body is compact JSON
    without spaces. Headers already set on ``request.response``, such as
    Link, are kept.
    """
    body = orjson.dumps(value)
    if "response" not in request.__dict__:
        # Nothing has made request.response yet, so there are no headers
        # to keep. One constructor call with the final header list gives
        # the same status and headers as the setters below, without
        # Response()'s text/html defaults that they replace.
        response = Response(body=body, headerlist=[
            ("Content-Type", "application/json")])
        request.response = response
        return response
    response = request.response
    response.content_type = "application/json"
    response.charset = None
    response.body = body
    return response


def child_path(request, resource, *names):
    """Return the root-relative path of ``resource``/``names``."""
    return request.resource_path(resource, *names)


def select_page(request, items, fields=None, key="id"):
    """Order, page and trim a list for ``limit``, ``marker`` and ``fields``.

    ``items`` are records (dicts ordered by ``key``) or plain strings
    (``key=None``). ``fields`` is the set of field names a caller may
    select. Sets a root-relative ``Link: <...>; rel="next"`` when more
    items follow the page.
    """
    query = request.validated.get("query", {})

    if key is None:
        def sort_key(item):
            return item
    else:
        sort_key = operator.itemgetter(key)

    items = sorted(items, key=sort_key)
    marker = query.get("marker")
    if marker is not None:
        if key is not None:
            marker = canonical_marker(request, marker)
        # The page starts after the last item whose key is at most marker.
        items = items[bisect.bisect_right(items, marker, key=sort_key):]

    limit = query.get("limit")
    if limit is not None and len(items) > limit:
        items = items[:limit]
        params = {"limit": limit, "marker": sort_key(items[-1])}
        if "fields" in query:
            params["fields"] = ",".join(query["fields"])
        request.response.headers["Link"] = '<%s?%s>; rel="next"' % (
            request.path, urlencode(params))

    selected = query.get("fields")
    if selected:
        if key is None or fields is None:
            raise invalid_fields("this list has no record fields to select")
        unknown = sorted(set(selected) - set(fields))
        if unknown:
            raise invalid_fields("unknown field(s) %s; known fields: %s" % (
                ", ".join(unknown), ", ".join(sorted(fields))))
        wanted = set(selected) | {key}
        items = [
            {name: value for name, value in item.items() if name in wanted}
            for item in items
        ]
    return items


UUID_FORM = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def canonical_marker(request, marker):
    """Spell ``marker`` as record lists spell ids.

    Paths accept UUIDs in any case and MACs in any case and with dashes,
    so markers must too. Ids are listed in lower case, so an upper-case
    marker would sort before its own item and the page would repeat it.
    """
    normalize_id = getattr(request.context, "normalize_id", None)
    if normalize_id is not None:
        marker = normalize_id(marker)
    if UUID_FORM.fullmatch(marker):
        marker = marker.lower()
    return marker


def invalid_fields(description):
    """Build the 400 error for a bad ``fields`` query parameter."""
    return errors.InvalidArguments(
        "invalid request: fields: " + description,
        details=[{"location": "querystring", "name": "fields",
                  "description": description}])


def schema_fields(schema_factory):
    return [child.name for child in schema_factory().children]
