"""A guest's disks, network interfaces and media device."""

import colander

from simplestack import schemas
from simplestack.resources.collections import guest_of
from simplestack.validation import json_body_validator, list_query_validator
from simplestack.views import (
    child_path, created, describe, hypervisor_service, no_content,
    schema_fields, select_page)

GUEST = "/guests/{guest_id}"

# -- disks ---------------------------------------------------------------

disks = hypervisor_service("disks", GUEST + "/disks")
disk = hypervisor_service("disk", GUEST + "/disks/{disk_id}")


class CreateDiskSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    size = schemas.int_field(1, schemas.MAX_DISK_GIB, required=True,
                             description="GiB")
    name = schemas.name_field(required=False)
    storage_id = schemas.string_field()


class UpdateDiskSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    name = schemas.name_field(required=False)
    size = schemas.int_field(1, schemas.MAX_DISK_GIB,
                             description="new size in GiB; grow only")


@disks.get(validators=(list_query_validator,))
def list_disks(request):
    guest = guest_of(request.context)
    return select_page(request, request.context.adapter.list_disks(
        guest.guest_id), schema_fields(schemas.disk_record))


@disks.post(schema=CreateDiskSchema(), validators=(json_body_validator,))
def create_disk(request):
    guest = guest_of(request.context)
    record = request.context.adapter.create_disk(
        guest.guest_id, dict(request.validated))
    return created(request, record,
                   child_path(request, request.context, record["id"]))


@disk.get()
def get_disk(request):
    context = request.context
    return context.adapter.get_disk(guest_of(context).guest_id,
                                    context.item_id)


@disk.put(schema=UpdateDiskSchema(), validators=(json_body_validator,))
def update_disk(request):
    context = request.context
    guest_id = guest_of(context).guest_id
    changes = dict(request.validated)
    if not changes:
        return context.adapter.get_disk(guest_id, context.item_id)
    return context.adapter.update_disk(guest_id, context.item_id, changes)


@disk.delete()
def delete_disk(request):
    context = request.context
    context.adapter.delete_disk(guest_of(context).guest_id, context.item_id)
    return no_content(request)


describe(disks, "GET", 200, lambda: colander.SchemaNode(
    colander.Sequence(), schemas.disk_record()), "List a guest's disks")
describe(disks, "POST", 201, schemas.disk_record, "Add a disk")
describe(disk, "GET", 200, schemas.disk_record, "Show a disk")
describe(disk, "PUT", 200, schemas.disk_record, "Rename or grow a disk")
describe(disk, "DELETE", 204, None, "Remove a disk and its volume")


# -- network interfaces ----------------------------------------------------

nics = hypervisor_service("network_interfaces", GUEST + "/network_interfaces")
nic = hypervisor_service("network_interface",
                         GUEST + "/network_interfaces/{mac}")


class CreateNicSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    network = schemas.string_field(required=True,
                                   description="network name")
    mac = colander.SchemaNode(schemas.String(), validator=schemas.unicast_mac,
                              missing=colander.drop)


def _address_list(version):
    return colander.SchemaNode(
        colander.Sequence(accept_scalar=False),
        colander.SchemaNode(schemas.String()),
        validator=schemas.ip_address_list(version), missing=colander.drop)


class UpdateNicSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    network = schemas.string_field(description="network name")
    locking_mode = colander.SchemaNode(
        schemas.String(),
        validator=colander.OneOf(
            ["network_default", "locked", "unlocked", "disabled"]),
        missing=colander.drop)
    ipv4_allowed = _address_list(4)
    ipv6_allowed = _address_list(6)
    active = schemas.bool_field(description="link up (true) or down")
    rate_limit = schemas.int_field(0, schemas.MAX_RATE_BITS, nullable=True,
                                   description="bits per second; null "
                                               "removes the limit")
    # The original API's spelling of rate_limit.
    ratelimit = schemas.int_field(0, schemas.MAX_RATE_BITS, nullable=True)


@nics.get(validators=(list_query_validator,))
def list_nics(request):
    guest = guest_of(request.context)
    return select_page(request, request.context.adapter.list_nics(
        guest.guest_id), schema_fields(schemas.nic_record))


@nics.post(schema=CreateNicSchema(), validators=(json_body_validator,))
def create_nic(request):
    spec = dict(request.validated)
    if "mac" in spec:
        spec["mac"] = spec["mac"].lower()
    record = request.context.adapter.create_nic(
        guest_of(request.context).guest_id, spec)
    return created(request, record,
                   child_path(request, request.context, record["id"]))


@nic.get()
def get_nic(request):
    context = request.context
    return context.adapter.get_nic(guest_of(context).guest_id,
                                   context.item_id)


@nic.put(schema=UpdateNicSchema(), validators=(json_body_validator,))
def update_nic(request):
    context = request.context
    changes = dict(request.validated)
    if "ratelimit" in changes:
        legacy = changes.pop("ratelimit")
        changes.setdefault("rate_limit", legacy)
    guest_id = guest_of(context).guest_id
    if not changes:
        return context.adapter.get_nic(guest_id, context.item_id)
    return context.adapter.update_nic(guest_id, context.item_id, changes)


@nic.delete()
def delete_nic(request):
    context = request.context
    context.adapter.delete_nic(guest_of(context).guest_id, context.item_id)
    return no_content(request)


describe(nics, "GET", 200, lambda: colander.SchemaNode(
    colander.Sequence(), schemas.nic_record()),
    "List a guest's network interfaces")
describe(nics, "POST", 201, schemas.nic_record,
         "Add a network interface on a named network")
describe(nic, "GET", 200, schemas.nic_record, "Show a network interface")
describe(nic, "PUT", 200, schemas.nic_record,
         "Change a network interface's network, link or limits")
describe(nic, "DELETE", 204, None, "Remove a network interface")


# -- media device ----------------------------------------------------------

media = hypervisor_service("media_device", GUEST + "/media_device")


class MediaSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    name = schemas.name_field(nullable=True,
                              description="image name, or null to eject")


@media.get()
def get_media(request):
    return request.context.adapter.get_media(
        guest_of(request.context).guest_id)


@media.put(schema=MediaSchema(), validators=(json_body_validator,))
def set_media(request):
    return request.context.adapter.set_media(
        guest_of(request.context).guest_id, request.validated["name"])


describe(media, "GET", 200, schemas.media_record,
         "Show the image in the guest's CD drive")
describe(media, "PUT", 200, schemas.media_record,
         "Insert an image by name, or eject with null")
