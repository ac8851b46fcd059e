"""The OpenAPI 3 document, built from the Cornice services' Colander schemas.

There is no hand-written copy of the API: request bodies come from each
view's ``schema``, responses from :data:`simplestack.views.RESPONSES`, so
the document changes with the code.
"""

import re

import colander
from cornice import Service

from simplestack import schemas
from simplestack.validation import list_query_schema, list_query_validator
from simplestack.views import HOST_PATH, RESPONSES
from simplestack.views.imports import (
    import_validator, json_or_import_validator)

PATH_PARAMETER = re.compile(r"{([^}]+)}")


def _unwrap_validators(validator):
    if validator is None:
        return []
    nested = getattr(validator, "validators", None)
    if nested is not None:
        found = []
        for inner in nested:
            found.extend(_unwrap_validators(inner))
        return found
    return [validator]


def node_to_json_schema(node):
    """Convert a colander schema node to a JSON Schema (OpenAPI 3) dict."""
    node_type = node.typ
    if isinstance(node_type, schemas.AnyOf):
        schema = {"oneOf": [node_to_json_schema(choice)
                            for choice in node_type.choices]}
    elif isinstance(node_type, colander.Mapping):
        schema = {"type": "object", "properties": {}}
        required = []
        for child in node.children:
            schema["properties"][child.name] = node_to_json_schema(child)
            if child.missing is colander.required:
                required.append(child.name)
        if required:
            schema["required"] = required
        if node_type.unknown == "raise":
            schema["additionalProperties"] = False
    elif isinstance(node_type, colander.Sequence):
        schema = {"type": "array",
                  "items": node_to_json_schema(node.children[0])}
    elif isinstance(node_type, schemas.JSONType):
        schema = node_type.json_schema()
    elif isinstance(node_type, colander.Int):
        schema = {"type": "integer"}
    else:
        schema = {"type": "string"}

    for validator in _unwrap_validators(node.validator):
        if isinstance(validator, colander.Range):
            if validator.min is not None:
                schema["minimum"] = validator.min
            if validator.max is not None:
                schema["maximum"] = validator.max
        elif isinstance(validator, colander.Length):
            if validator.min is not None:
                schema["minLength"] = validator.min
            if validator.max is not None:
                schema["maxLength"] = validator.max
        elif isinstance(validator, colander.OneOf):
            schema["enum"] = list(validator.choices)

    description = node.description or node.title
    if description and node.name != description:
        schema["description"] = str(description)
    return schema


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string",
                  "description": "stable error name, e.g. EntityNotFound"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {
            "type": "object",
            "properties": {"location": {"type": "string"},
                           "name": {"type": "string"},
                           "description": {"type": "string"}}}},
        "hypervisor": {"type": "object", "properties": {
            "code": {}, "params": {"type": "array", "items": {}}}},
    },
}

ERROR_STATUSES = {
    "400": "invalid JSON, schema violation or value out of range",
    "401": "missing or invalid token, a caller token that is required and "
           "missing or not listed, or credentials the hypervisor rejects",
    "403": "the host is not in the hypervisor type's allow-list",
    "404": "unknown hypervisor type, path or entity",
    "409": "the guest's state forbids the operation, or a duplicate",
    "500": "a bug of the service; the log has the details",
    "501": "the hypervisor cannot do this",
    "502": "hypervisor error or hypervisor unreachable",
    "503": "the host's session limit or the stream limit is reached; "
           "retry after Retry-After seconds",
    "504": "hypervisor timeout",
}
BODY_ERROR_STATUSES = {
    "413": "the JSON body is larger than the configured limit",
}
IMPORT_ERROR_STATUSES = {
    "411": "the image upload has no Content-Length",
}

CALLER_TOKEN_SCHEME = {
    "type": "apiKey", "in": "header", "name": "x-simplestack-token",
    "description": "a caller token of this service, required when the "
                   "service is configured with token digests",
}

TOKEN_PARAMETER = {
    "name": "x-simplestack-hypervisor-token", "in": "header",
    "required": True, "schema": {"type": "string"},
    "description": "base64 of 'user:password' for the hypervisor",
}

IMAGE_BODY = {
    "required": True,
    "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}},
    "description": "an image stream (XVA or OVA tar archive, qcow2, raw); "
                   "Content-Length is required",
}


def _operation(service, method, args):
    status, schema_factory, summary = RESPONSES.get(
        (service.name, method), (200, None, service.description))
    operation = {
        "operationId": "%s_%s" % (method.lower(), service.name),
        "summary": summary or service.name,
        "parameters": [],
        "responses": {},
    }

    for name in PATH_PARAMETER.findall(service.path):
        operation["parameters"].append({
            "name": name, "in": "path", "required": True,
            "schema": {"type": "string"}})
    if service.path.startswith(HOST_PATH):
        operation["parameters"].append(TOKEN_PARAMETER)
    else:
        # Paths outside the hypervisor tree never check the caller token.
        operation["security"] = []

    validators = args.get("validators", ())
    if list_query_validator in validators:
        for child in list_query_schema().children:
            operation["parameters"].append({
                "name": child.name, "in": "query", "required": False,
                "schema": node_to_json_schema(child)})

    schema = args.get("schema")
    error_statuses = dict(ERROR_STATUSES)
    if import_validator in validators:
        operation["requestBody"] = IMAGE_BODY
        error_statuses.update(IMPORT_ERROR_STATUSES)
    elif schema is not None:
        body_schema = node_to_json_schema(schema)
        content = {"application/json": {"schema": body_schema}}
        error_statuses.update(BODY_ERROR_STATUSES)
        if json_or_import_validator in validators:
            content["application/octet-stream"] = IMAGE_BODY[
                "content"]["application/octet-stream"]
            error_statuses.update(IMPORT_ERROR_STATUSES)
        # An empty body reads as {}: it is required only when the schema
        # has a required field.
        operation["requestBody"] = {
            "required": bool(body_schema.get("required")),
            "content": content}

    success = {"description": summary or "success"}
    if schema_factory is not None:
        success["content"] = {"application/json": {
            "schema": node_to_json_schema(schema_factory())}}
    operation["responses"][str(status)] = success
    if service.path.startswith(HOST_PATH):
        for code, text in sorted(error_statuses.items()):
            operation["responses"][code] = {
                "description": text,
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}}
    return operation


def build_document(registry, version):
    paths = {}
    services = registry.cornice_services.values()
    for service in sorted(services, key=lambda item: item.path):
        if not isinstance(service, Service):
            continue
        item = paths.setdefault(service.path, {})
        for method, _view, args in service.definitions:
            if method in ("HEAD", "OPTIONS"):
                continue
            item[method.lower()] = _operation(service, method, args)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Simplestack",
            "version": version,
            "description": "Atomic tasks on the hypervisor host named in "
                           "the URL; GET / lists the hypervisor types this "
                           "service is configured for.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"callerToken": CALLER_TOKEN_SCHEME},
        },
        # The caller token is checked only when the service lists token
        # digests (simplestack.caller_token_digests); {} allows no token.
        "security": [{}, {"callerToken": []}],
    }
