"""Guests: list, create or import, show, update, delete, power, clone, export."""

from urllib.parse import quote

import colander

from simplestack import logs, schemas
from simplestack.adapters.base import POWER_ACTIONS
from simplestack.responses import Response
from simplestack.streams import ReadAhead, stream_slots
from simplestack.validation import json_body_validator, list_query_validator
from simplestack.views import (
    child_path, created, describe, hypervisor_service, json_response,
    no_content, schema_fields, select_page)
from simplestack.views.imports import (
    StreamBody, json_or_import_validator, run_import)

#: The record fields that ``fields=`` of the guest list can select.
GUEST_FIELDS = frozenset(schema_fields(schemas.guest_record))

guests = hypervisor_service("guests", "/guests")
guest = hypervisor_service("guest", "/guests/{guest_id}")
guest_power = hypervisor_service(
    "guest_power", "/guests/{guest_id}/power",
    traverse_suffix="/guests/{guest_id}")
guest_reboot = hypervisor_service(
    "guest_reboot", "/guests/{guest_id}/reboot",
    traverse_suffix="/guests/{guest_id}")
guest_clone = hypervisor_service(
    "guest_clone", "/guests/{guest_id}/clone",
    traverse_suffix="/guests/{guest_id}")
guest_export = hypervisor_service(
    "guest_export", "/guests/{guest_id}/export",
    traverse_suffix="/guests/{guest_id}")


class CreateGuestSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    name = schemas.name_field(path_name=True)
    cpus = schemas.int_field(1, schemas.MAX_CPUS)
    memory = schemas.int_field(1, schemas.MAX_MEMORY_MIB, description="MiB")
    hdd = schemas.int_field(1, schemas.MAX_DISK_GIB, description="GiB")
    template = schemas.string_field(description="template name or id")
    storage_id = schemas.string_field()
    network = schemas.string_field(description="network name")
    paravirtualized = schemas.bool_field()


def _memory_map():
    node = colander.SchemaNode(schemas.StrictMapping())
    for name in ("memory_target", "memory_static_min", "memory_static_max"):
        node.add(schemas.int_field(1, schemas.MAX_MEMORY_MIB, name=name,
                                   description="MiB"))
    return node


def _cpus_map():
    node = colander.SchemaNode(schemas.StrictMapping())
    for name in ("vcpus_at_startup", "vcpus_max"):
        node.add(schemas.int_field(1, schemas.MAX_CPUS, name=name))
    return node


def _paravirtualized_choice():
    return colander.SchemaNode(schemas.AnyOf(
        colander.SchemaNode(schemas.Boolean()),
        colander.SchemaNode(schemas.String(),
                            validator=colander.Length(max=4096)),
    ), missing=colander.drop,
        description="true or false, or PV kernel arguments (Xen)")


class UpdateGuestSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    name = schemas.name_field(required=False, path_name=True)
    memory = colander.SchemaNode(schemas.AnyOf(
        colander.SchemaNode(schemas.Integer(),
                            validator=colander.Range(
                                1, schemas.MAX_MEMORY_MIB)),
        _memory_map(),
    ), missing=colander.drop, description="MiB, or a map of memory limits")
    memory_target_live = schemas.int_field(1, schemas.MAX_MEMORY_MIB)
    cpus = colander.SchemaNode(schemas.AnyOf(
        colander.SchemaNode(schemas.Integer(),
                            validator=colander.Range(1, schemas.MAX_CPUS)),
        _cpus_map(),
    ), missing=colander.drop)
    vcpus_number_live = schemas.int_field(1, schemas.MAX_CPUS)
    vcpu_settings = colander.SchemaNode(schemas.Object(),
                                        missing=colander.drop)
    ha_enabled = schemas.bool_field()
    template = schemas.bool_field(description="mark or unmark as template")
    paravirtualized = _paravirtualized_choice()
    hdd = schemas.int_field(1, schemas.MAX_DISK_GIB,
                            description="new total GiB; grows the last disk")


class PowerSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    state = colander.SchemaNode(
        schemas.String(), validator=colander.OneOf(POWER_ACTIONS),
        description="one of " + ", ".join(POWER_ACTIONS))


class RebootSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    force = schemas.bool_field(description="reset instead of a clean reboot")


class CloneSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    name = schemas.name_field(path_name=True)


@guests.get(validators=(list_query_validator,))
def list_guests(request):
    return json_response(request, select_page(
        request, request.context.adapter.list_guests(), GUEST_FIELDS))


@guests.post(schema=CreateGuestSchema(),
             validators=(json_or_import_validator,))
def create_guest(request):
    host_context = request.context.host_context
    if "upload" in request.validated:
        return run_import(request, host_context)
    record = request.context.adapter.create_guest(dict(request.validated))
    return created(request, record,
                   child_path(request, request.context, record["id"]))


@guest.get()
def get_guest(request):
    return json_response(
        request, request.context.adapter.get_guest(request.context.guest_id))


@guest.put(schema=UpdateGuestSchema(), validators=(json_body_validator,))
def update_guest(request):
    context = request.context
    changes = dict(request.validated)
    if not changes:
        return context.adapter.get_guest(context.guest_id)
    return context.adapter.update_guest(context.guest_id, changes)


@guest.delete()
def delete_guest(request):
    request.context.adapter.delete_guest(request.context.guest_id)
    return no_content(request)


@guest_power.put(schema=PowerSchema(), validators=(json_body_validator,))
def set_power(request):
    action = request.validated["state"]
    state = request.context.adapter.set_power(request.context.guest_id,
                                              action)
    return {"action": action, "message": "ok", "state": state}


@guest_reboot.put(schema=RebootSchema(), validators=(json_body_validator,))
def reboot_guest(request):
    force = request.validated.get("force", False)
    state = request.context.adapter.reboot_guest(request.context.guest_id,
                                                 force=force)
    return {"action": "reboot", "message": "ok", "state": state}


@guest_clone.post(schema=CloneSchema(), validators=(json_body_validator,))
def clone_guest(request):
    context = request.context
    record = context.adapter.clone_guest(context.guest_id,
                                         request.validated["name"])
    return created(request, record,
                   child_path(request, context.__parent__, record["id"]))


@guest_export.get()
def export_guest(request):
    context = request.context
    if request.method == "HEAD":
        return export_head(request)
    slot = stream_slots(request).acquire()
    try:
        stream = context.adapter.export_guest(context.guest_id)
    except BaseException:
        slot.release()
        raise
    # The first chunk is read here, so that a failure before the first byte
    # still gets a JSON error. Once the view has returned, the server can
    # only end a failed body with its own plain-text 500 or a cut
    # connection.
    chunks = ReadAhead(stream, logs.current_request_id())
    try:
        first = next(chunks, b"")
    except BaseException:
        chunks.close(then=stream.close)
        slot.release()
        raise
    # From here the stream owns the connection and the slot: the request
    # ends before the server has sent the body.
    adapter = context.host_context.detach_adapter()
    response = Response(
        app_iter=StreamBody(stream, adapter, slot, chunks, first),
        content_type=stream.content_type)
    if stream.length is not None:
        response.content_length = stream.length
    response.content_disposition = attachment_header(stream.filename)
    return response


def export_head(request):
    """Run the checks of an export for HEAD; start nothing.

    The adapter's ``check_export`` returns the facts of the image that
    GET's headers carry (base.ExportFacts): the type and file name, and
    on libvirt the length. Xen and vSphere know the length only from the
    export that GET starts (an XAPI export task, a vSphere export
    lease), so HEAD leaves Content-Length out there, as RFC 9110 allows.
    ``check_export`` raises what GET would raise
    before its transfer: 501 on the libvirt test driver and on LXC, 409
    for a running guest, and on Xen also 409 for an export that XAPI
    blocks or that an operation in progress conflicts with. An adapter
    without ``check_export`` only checks that the guest exists.
    NOTE: a failure that shows only once the transfer starts gets 200
    here, such as the missing ExportVm of govmomi's vSphere simulator,
    where GET returns 501.
    """
    context = request.context
    check_export = getattr(context.adapter, "check_export", None)
    facts = None
    if check_export is not None:
        facts = check_export(context.guest_id)
    else:
        context.adapter.get_guest(context.guest_id)
    response = Response()
    del response.content_type
    response.content_length = None
    if facts is not None:
        response.content_type = facts.content_type
        response.content_disposition = attachment_header(facts.filename)
        if facts.length is not None:
            response.content_length = facts.length
    return response


def attachment_header(filename):
    """Build a Content-Disposition for any file name (RFC 6266).

    HTTP headers are Latin-1 on the wire, so the name goes in UTF-8 as
    ``filename*`` with an ASCII ``filename`` fallback for old clients.
    """
    fallback = "".join(
        char if 32 <= ord(char) < 127 and char not in '"\\' else "_"
        for char in filename)
    return "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (
        fallback, quote(filename, safe=""))


describe(guests, "GET", 200, lambda: colander.SchemaNode(
    colander.Sequence(), schemas.guest_record()),
    "List guests as full records")
describe(guests, "POST", 201, schemas.guest_record,
         "Create a guest from JSON, or import an image stream")
describe(guest, "GET", 200, schemas.guest_record, "Show a guest")
describe(guest, "PUT", 200, schemas.guest_record, "Update a guest")
describe(guest, "DELETE", 204, None, "Delete a guest with its disks")
describe(guest_power, "PUT", 200, schemas.action_record,
         "Start, stop, force_stop, pause or resume a guest")
describe(guest_reboot, "PUT", 200, schemas.action_record, "Reboot a guest")
describe(guest_clone, "POST", 201, schemas.guest_record, "Clone a guest")
describe(guest_export, "GET", 200, None,
         "Stream the guest's image (application/octet-stream or the "
         "hypervisor's image type)")
