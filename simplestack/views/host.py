"""The service root, pool information, hosts, storages and networks."""

import colander
from cornice import Service

from simplestack import schemas
from simplestack.validation import json_body_validator, list_query_validator
from simplestack.views import (
    child_path, created, describe, hypervisor_service, schema_fields,
    select_page)
from simplestack.openapi import build_document
from simplestack.views.imports import import_validator, run_import

VERSION = "0.1.0"

service_root = Service(
    name="service_root", path="/",
    description="The service's version and configured hypervisor types")


@service_root.get()
def get_service_root(request):
    types = request.registry.settings["simplestack.hypervisor_types"]
    return {"version": VERSION, "hypervisors": sorted(types)}


describe(service_root, "GET", 200,
         lambda: colander.SchemaNode(colander.Mapping(), title="ServiceRoot"),
         "The service's version and hypervisor types")


# -- pool ----------------------------------------------------------------

pool = hypervisor_service("pool", description="The host's pool")


@pool.get()
def get_pool(request):
    return request.context.adapter.get_pool()


describe(pool, "GET", 200, schemas.pool_record,
         "Pool information: memory, uuid, master, software")


# -- hosts ---------------------------------------------------------------

hosts = hypervisor_service("hosts", "/hosts")
host = hypervisor_service("host", "/hosts/{host_id}")


@hosts.get(validators=(list_query_validator,))
def list_hosts(request):
    return select_page(request, request.context.adapter.list_hosts(),
                       schema_fields(schemas.host_record))


@host.get()
def get_host(request):
    return request.context.adapter.get_host(request.context.item_id)


describe(hosts, "GET", 200, lambda: colander.SchemaNode(
    colander.Sequence(), schemas.host_record()), "List hosts")
describe(host, "GET", 200, schemas.host_record, "Show a host")


# -- storages ------------------------------------------------------------

storages = hypervisor_service("storages", "/storages")
storage = hypervisor_service("storage", "/storages/{storage_id}")
storage_guests = hypervisor_service(
    "storage_guests", "/storages/{storage_id}/guests",
    traverse_suffix="/storages/{storage_id}",
    description="Import a guest image into this storage")


@storages.get(validators=(list_query_validator,))
def list_storages(request):
    return select_page(request, request.context.adapter.list_storages(),
                       schema_fields(schemas.storage_record))


@storage.get()
def get_storage(request):
    return request.context.adapter.get_storage(request.context.item_id)


@storage_guests.post(validators=(import_validator,))
def import_into_storage(request):
    storage_resource = request.context
    return run_import(request, storage_resource.host_context,
                      storage_id=storage_resource.item_id)


describe(storages, "GET", 200, lambda: colander.SchemaNode(
    colander.Sequence(), schemas.storage_record()), "List storages")
describe(storage, "GET", 200, schemas.storage_record, "Show a storage")
describe(storage_guests, "POST", 201, schemas.guest_record,
         "Import a guest image (a raw byte stream) into this storage")


# -- networks ------------------------------------------------------------

networks = hypervisor_service("networks", "/networks")
network = hypervisor_service("network", "/networks/{network_id}")


class CreateNetworkSchema(colander.MappingSchema):
    schema_type = schemas.StrictMapping

    name = schemas.name_field(path_name=True)
    description = schemas.string_field(max_length=4096)
    from_network = schemas.string_field(
        description="network to tag; without it, an isolated network")
    vlan = schemas.int_field(0, 4094, description="VLAN tag")
    other_config = colander.SchemaNode(schemas.Object(),
                                       missing=colander.drop)


@networks.get(validators=(list_query_validator,))
def list_networks(request):
    return select_page(request, request.context.adapter.list_networks(),
                       schema_fields(schemas.network_record))


@networks.post(schema=CreateNetworkSchema(),
               validators=(json_body_validator,))
def create_network(request):
    record = request.context.adapter.create_network(
        dict(request.validated))
    return created(request, record,
                   child_path(request, request.context, record["id"]))


@network.get()
def get_network(request):
    return request.context.adapter.get_network(request.context.item_id)


describe(networks, "GET", 200, lambda: colander.SchemaNode(
    colander.Sequence(), schemas.network_record()), "List networks")
describe(networks, "POST", 201, schemas.network_record,
         "Create a network: a VLAN on from_network, or an isolated one")
describe(network, "GET", 200, schemas.network_record, "Show a network")


# -- OpenAPI ---------------------------------------------------------------

openapi_document = Service(name="openapi", path="/openapi.json",
                           description="This API's OpenAPI 3 document")


@openapi_document.get()
def get_openapi_document(request):
    return build_document(request.registry, VERSION)
