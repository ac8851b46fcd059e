"""A guest's snapshots and tags."""

import colander

from simplestack import errors, schemas
from simplestack.resources.collections import guest_of
from simplestack.validation import json_body_validator, list_query_validator
from simplestack.views import (
    child_path, created, describe, hypervisor_service, no_content,
    schema_fields, select_page)

GUEST = "/guests/{guest_id}"

# -- snapshots -------------------------------------------------------------

snapshots = hypervisor_service("snapshots", GUEST + "/snapshots")
snapshot = hypervisor_service("snapshot",
                              GUEST + "/snapshots/{snapshot_id}")
snapshot_revert = hypervisor_service(
    "snapshot_revert", GUEST + "/snapshots/{snapshot_id}/revert",
    traverse_suffix=GUEST + "/snapshots/{snapshot_id}")


class CreateSnapshotSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    name = schemas.name_field(
        required=False,
        description="snapshot name; an ISO 8601 UTC timestamp if absent")


class RevertSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping


@snapshots.get(validators=(list_query_validator,))
def list_snapshots(request):
    guest = guest_of(request.context)
    return select_page(request, request.context.adapter.list_snapshots(
        guest.guest_id), schema_fields(schemas.snapshot_record))


@snapshots.post(schema=CreateSnapshotSchema(),
                validators=(json_body_validator,))
def create_snapshot(request):
    record = request.context.adapter.create_snapshot(
        guest_of(request.context).guest_id, request.validated.get("name"))
    return created(request, record,
                   child_path(request, request.context, record["id"]))


@snapshot.get()
def get_snapshot(request):
    context = request.context
    return context.adapter.get_snapshot(guest_of(context).guest_id,
                                        context.item_id)


@snapshot.delete()
def delete_snapshot(request):
    context = request.context
    context.adapter.delete_snapshot(guest_of(context).guest_id,
                                    context.item_id)
    return no_content(request)


@snapshot_revert.put(schema=RevertSchema(),
                     validators=(json_body_validator,))
def revert_snapshot(request):
    context = request.context
    return context.adapter.revert_snapshot(guest_of(context).guest_id,
                                           context.item_id)


describe(snapshots, "GET", 200, lambda: colander.SchemaNode(
    colander.Sequence(), schemas.snapshot_record()),
    "List a guest's snapshots")
describe(snapshots, "POST", 201, schemas.snapshot_record,
         "Snapshot a guest")
describe(snapshot, "GET", 200, schemas.snapshot_record, "Show a snapshot")
describe(snapshot, "DELETE", 204, None, "Delete a snapshot")
describe(snapshot_revert, "PUT", 200, schemas.guest_record,
         "Revert the guest to a snapshot")


# -- tags ------------------------------------------------------------------

tags = hypervisor_service("tags", GUEST + "/tags")
tag = hypervisor_service("tag", GUEST + "/tags/{tag}")


class AddTagSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    name = schemas.name_field(segment=True, description="tag")


@tags.get(validators=(list_query_validator,))
def list_tags(request):
    return select_page(request, request.context.adapter.list_tags(
        guest_of(request.context).guest_id), key=None)


@tags.post(schema=AddTagSchema(), validators=(json_body_validator,))
def add_tag(request):
    name = request.validated["name"]
    result = request.context.adapter.add_tag(
        guest_of(request.context).guest_id, name)
    return created(request, result,
                   child_path(request, request.context, name))


@tag.get()
def get_tag(request):
    context = request.context
    name = context.item_id
    if name not in context.adapter.list_tags(guest_of(context).guest_id):
        raise errors.EntityNotFound(
            "guest %s has no tag %r" % (guest_of(context).guest_id, name))
    return {"name": name}


@tag.delete()
def delete_tag(request):
    context = request.context
    context.adapter.delete_tag(guest_of(context).guest_id, context.item_id)
    return no_content(request)


describe(tags, "GET", 200, schemas.tags_record, "List a guest's tags")
describe(tags, "POST", 201, schemas.tags_record,
         "Tag a guest; answers the tags")
describe(tag, "GET", 200, schemas.tag_record,
         "Show a tag; 404 when the guest lacks it")
describe(tag, "DELETE", 204, None,
         "Remove a tag; 204 also when it was absent")
