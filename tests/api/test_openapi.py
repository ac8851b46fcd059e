"""The OpenAPI document is generated from the services' schemas."""

from openapi_spec_validator import validate

EXPECTED_PATHS = {
    "/{hypervisor}/{host}": {"get"},
    "/{hypervisor}/{host}/guests": {"get", "post"},
    "/{hypervisor}/{host}/guests/{guest_id}": {"get", "put", "delete"},
    "/{hypervisor}/{host}/guests/{guest_id}/power": {"put"},
    "/{hypervisor}/{host}/guests/{guest_id}/reboot": {"put"},
    "/{hypervisor}/{host}/guests/{guest_id}/clone": {"post"},
    "/{hypervisor}/{host}/guests/{guest_id}/export": {"get"},
    "/{hypervisor}/{host}/guests/{guest_id}/disks": {"get", "post"},
    "/{hypervisor}/{host}/guests/{guest_id}/disks/{disk_id}":
        {"get", "put", "delete"},
    "/{hypervisor}/{host}/guests/{guest_id}/media_device": {"get", "put"},
    "/{hypervisor}/{host}/guests/{guest_id}/network_interfaces":
        {"get", "post"},
    "/{hypervisor}/{host}/guests/{guest_id}/network_interfaces/{mac}":
        {"get", "put", "delete"},
    "/{hypervisor}/{host}/guests/{guest_id}/snapshots": {"get", "post"},
    "/{hypervisor}/{host}/guests/{guest_id}/snapshots/{snapshot_id}":
        {"get", "delete"},
    "/{hypervisor}/{host}/guests/{guest_id}/snapshots/{snapshot_id}/revert":
        {"put"},
    "/{hypervisor}/{host}/guests/{guest_id}/tags": {"get", "post"},
    "/{hypervisor}/{host}/guests/{guest_id}/tags/{tag}": {"get", "delete"},
    "/{hypervisor}/{host}/hosts": {"get"},
    "/{hypervisor}/{host}/hosts/{host_id}": {"get"},
    "/{hypervisor}/{host}/networks": {"get", "post"},
    "/{hypervisor}/{host}/networks/{network_id}": {"get"},
    "/{hypervisor}/{host}/storages": {"get"},
    "/{hypervisor}/{host}/storages/{storage_id}": {"get"},
    "/{hypervisor}/{host}/storages/{storage_id}/guests": {"post"},
}


def test_document_lists_every_endpoint(anonymous):
    document = anonymous.get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, methods in EXPECTED_PATHS.items():
        assert path in paths, path
        assert set(paths[path]) == methods, path


def test_create_guest_schema_comes_from_colander(anonymous):
    document = anonymous.get("/openapi.json").json
    post = document["paths"]["/{hypervisor}/{host}/guests"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["name"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["memory"]["type"] == "integer"
    assert schema["properties"]["memory"]["minimum"] == 1
    assert schema["properties"]["paravirtualized"]["type"] == "boolean"
    assert "application/octet-stream" in post["requestBody"]["content"]
    assert "201" in post["responses"]


def test_optional_bodies_are_not_required(anonymous):
    document = anonymous.get("/openapi.json").json
    post = document["paths"][
        "/{hypervisor}/{host}/guests/{guest_id}/snapshots"]["post"]
    assert post["requestBody"]["required"] is False
    assert "413" in post["responses"]
    imports = document["paths"][
        "/{hypervisor}/{host}/storages/{storage_id}/guests"]["post"]
    assert "411" in imports["responses"]


def test_power_schema_enumerates_actions(anonymous):
    document = anonymous.get("/openapi.json").json
    put = document["paths"]["/{hypervisor}/{host}/guests/{guest_id}/power"][
        "put"]
    state = put["requestBody"]["content"]["application/json"]["schema"][
        "properties"]["state"]
    assert state["enum"] == ["start", "stop", "force_stop", "pause",
                             "resume"]


def test_list_endpoints_document_paging(anonymous):
    document = anonymous.get("/openapi.json").json
    get = document["paths"]["/{hypervisor}/{host}/guests"]["get"]
    names = {parameter["name"] for parameter in get["parameters"]}
    assert {"limit", "marker", "fields",
            "x-simplestack-hypervisor-token"} <= names


def test_document_is_valid_openapi(anonymous):
    validate(anonymous.get("/openapi.json").json)


def test_caller_token_scheme_only_on_hypervisor_paths(anonymous):
    document = anonymous.get("/openapi.json").json
    scheme = document["components"]["securitySchemes"]["callerToken"]
    assert scheme == {
        "type": "apiKey", "in": "header", "name": "x-simplestack-token",
        "description": scheme["description"]}
    assert {} in document["security"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/{hypervisor}/{host}"):
                assert "security" not in operation, (method, path)
            else:
                assert operation["security"] == [], (method, path)
