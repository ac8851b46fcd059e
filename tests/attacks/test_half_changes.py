"""Invalid input to every mutating endpoint leaves the hypervisor unchanged.

For each POST, PUT and DELETE operation of /openapi.json, the table below
sends invalid requests. Some come from the operation's schema: unknown ids,
bodies that are not JSON, properties of the wrong type or out of range.
Others pass the schema but not the hypervisor: unknown networks and
storages, sizes no storage has room for, states that forbid the operation.
Each must fail with a 4xx or 501 status, and the hypervisor's state, dumped
before and after every request, must be identical:

- libvirt: the test driver on a node file (tests/attacks/data/half-node.xml),
  whose state lives in this process: XMLDesc of domains, their snapshots,
  networks, storage pools and volumes;
- Xen: every record of the XAPI simulator's VM, VBD, VDI, VIF, network,
  SR, PIF, pool and host classes, read through the XenAPI SDK;
- VMware: the config, power state, snapshots and networks of every VM
  and the VMs of every network, through RetrieveProperties.

The service runs in this process (WebTest), so the libvirt state is
visible; its log is captured and must not contain the canary password.
"""

import json
import logging
import os
import uuid

import pytest
from pyVmomi import vim
from webtest import TestApp

from simplestack import main
from simplestack.adapters.libvirt.connection import _shared_test_connection
from tests.api.conftest import app_settings
from tests.attacks import stack
from tests.conftest import CANARY_PASSWORD
from tests.vmware_fixtures import container_items
from tests.xen_fixtures import xapi_session

NODE_FILE = os.path.join(os.path.dirname(__file__), "data", "half-node.xml")

MISSING = "sstest-missing-0000"

#: XAPI classes whose records make up the Xen state.
XAPI_CLASSES = ("VM", "VBD", "VDI", "VIF", "network", "SR", "PIF", "pool", "host")

#: VM fields that XAPI changes on reads and logins, not on changes.
XAPI_VOLATILE_FIELDS = ("current_operations",)

VM_PATHS = ("name", "config", "runtime.powerState", "snapshot", "network", "datastore")

#: Status codes an invalid request may get: a client error, or 501 for
#: an operation the hypervisor cannot do at all.
ACCEPTED = set(range(400, 500)) | {501}


# -- state dumps ---------------------------------------------------------------

def libvirt_state():
    connection = _shared_test_connection("test://" + NODE_FILE)
    state = {}
    for domain in connection.listAllDomains():
        state["domain " + domain.name()] = domain.XMLDesc(0)
        for snapshot in domain.listAllSnapshots():
            state["snapshot %s %s" % (domain.name(), snapshot.getName())] = \
                snapshot.getXMLDesc(0)
    for network in connection.listAllNetworks():
        state["network " + network.name()] = network.XMLDesc(0)
    for pool in connection.listAllStoragePools():
        state["pool " + pool.name()] = pool.XMLDesc(0)
        for volume in pool.listAllVolumes():
            state["volume %s %s" % (pool.name(), volume.name())] = volume.XMLDesc(0)
    return state


def xapi_state(simulator):
    with xapi_session(simulator) as xapi:
        state = {}
        for name in XAPI_CLASSES:
            records = getattr(xapi, name).get_all_records()
            for ref, record in records.items():
                for field in XAPI_VOLATILE_FIELDS:
                    record.pop(field, None)
                state["%s %s" % (name, ref)] = record
        return state


def vsphere_state(simulator):
    with simulator.session() as service:
        content = service.RetrieveContent()
        state = {}
        for ref, values in container_items(content, vim.VirtualMachine, VM_PATHS):
            state["vm " + ref._moId] = {key: repr(value) for key, value in values.items()}
        for ref, values in container_items(content, vim.Network, ("name", "vm")):
            state["network " + ref._moId] = {key: repr(value) for key, value in values.items()}
        return state


def differences(before, after):
    """Return the keys whose values differ, were added or were removed."""
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))


# -- backends ------------------------------------------------------------------

class Backend:
    """One hypervisor behind the in-process service, with ids of existing
    objects for the paths and a function that dumps its state."""

    def __init__(self, app, prefix, token, dump):
        self.api = TestApp(app, extra_environ={
            "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": token})
        self.prefix = prefix
        self.dump = dump
        self.ids = {"backend": prefix.split("/")[1]}

    def request(self, method, path, body=None, content_type="application/json"):
        headers = {"Content-Type": content_type} if body is not None else {}
        response = self.api.request(self.prefix + path, method=method, body=body,
                                    headers=headers, expect_errors=True)
        assert CANARY_PASSWORD not in response.text
        return response

    def fill_ids(self):
        """Find a guest with a disk and a NIC, give it a snapshot and a tag,
        and record every id the paths need."""
        guests = self.request("GET", "/guests").json
        for guest in guests:
            disks = self.request("GET", "/guests/%s/disks" % guest["id"]).json
            nics = self.request("GET", "/guests/%s/network_interfaces" % guest["id"]).json
            if nics:
                break
        self.ids["guest_id"] = guest["id"]
        self.ids["disk_id"] = disks[0]["id"] if disks else MISSING
        self.ids["mac"] = nics[0]["mac"]
        self.ids["network"] = nics[0]["network"]
        self.ids["other_guest_name"] = [other["name"] for other in guests
                                        if other["id"] != guest["id"]][:1] or ["x"]
        snapshot = self.request("POST", "/guests/%s/snapshots" % guest["id"],
                                json.dumps({"name": "sstest-half"}).encode())
        self.ids["snapshot_id"] = snapshot.json["id"] if snapshot.status_int == 201 \
            else MISSING
        self.request("POST", "/guests/%s/tags" % guest["id"],
                     json.dumps({"name": "sstest-half"}).encode())
        self.ids["tag"] = "sstest-half"
        storages = self.request("GET", "/storages").json
        self.ids["storage_id"] = storages[0]["id"]


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    xapi = stack.start_xapi(vms=2)
    vcsim = stack.start_vcsim("vpx", str(tmp_path_factory.mktemp("half")))
    settings = app_settings(**{
        "simplestack.hypervisor.test.hosts": "half=" + NODE_FILE,
        "simplestack.hypervisor.xen.read_timeout": "10",
        "simplestack.hypervisor.vmware.read_timeout": "10",
    })
    app = main({}, **settings)
    try:
        found = {
            "libvirt": Backend(app, "/test/half", stack.canary_token("root"),
                               libvirt_state),
            "xen": Backend(app, "/xen/" + xapi.netloc, stack.canary_token(xapi.username),
                           lambda: xapi_state(xapi)),
            "vmware": Backend(app, "/vmware/" + vcsim.netloc,
                              stack.canary_token(vcsim.username),
                              lambda: vsphere_state(vcsim)),
        }
        for backend in found.values():
            backend.fill_ids()
        yield found
    finally:
        xapi.stop()
        vcsim.stop()


# -- the table -----------------------------------------------------------------

def wrong_values(schema):
    """Yield (label, value) pairs that violate a property schema."""
    kind = schema.get("type")
    if "oneOf" in schema:
        # No alternative of this API's oneOf properties is an array.
        yield "wrong type", [1]
        return
    wrong_type = {"string": 12345, "integer": "sstest", "boolean": "yes",
                  "array": "sstest", "object": 7}
    yield "wrong type", wrong_type.get(kind, [1])
    if not schema.get("nullable"):
        yield "null", None
    if "maximum" in schema:
        yield "over maximum", schema["maximum"] + 1
    if "minimum" in schema:
        yield "under minimum", schema["minimum"] - 1
    if "maxLength" in schema:
        yield "too long", "x" * (schema["maxLength"] + 1)
    if "enum" in schema:
        yield "not in enum", "sstest"


def semantic_cases(ids):
    """Requests that pass the schema but that no hypervisor can carry out,
    as (method, path, body) with {name} placeholders for ids."""
    new = "sstest-half-" + uuid.uuid4().hex[:8]
    guest = "/guests/{guest_id}"
    cases = [
        ("POST", "/guests", {"name": new, "network": MISSING}),
        ("POST", "/guests", {"name": new, "storage_id": MISSING}),
        ("POST", "/guests", {"name": new, "template": MISSING}),
        ("POST", "/guests", {"name": new, "hdd": 1, "network": MISSING}),
        ("POST", guest + "/clone", {"name": ids["other_guest_name"][0]}),
        ("POST", guest + "/disks", {"size": 1, "storage_id": MISSING}),
        ("PUT", guest + "/disks/{disk_id}", {"size": 1}),
        ("PUT", guest + "/media_device", {"name": MISSING + ".iso"}),
        ("POST", guest + "/network_interfaces", {"network": MISSING}),
        ("POST", guest + "/network_interfaces", {"network": ids["network"],
                                                  "mac": "zz:zz"}),
        ("POST", guest + "/network_interfaces", {"network": ids["network"],
                                                  "mac": ids["mac"]}),
        ("PUT", guest + "/network_interfaces/{mac}", {"network": MISSING}),
        ("PUT", guest + "/network_interfaces/{mac}", {"ipv4_allowed": ["sstest"]}),
        ("POST", "/networks", {"name": new, "from_network": MISSING, "vlan": 7}),
        ("POST", "/networks", {"name": new, "from_network": ids["network"],
                               "vlan": 4095}),
        ("PUT", guest + "/power", {"state": "resume"}),
        ("POST", guest + "/snapshots", {"name": "x" * 255 + "\n"}),
        ("PUT", guest + "/snapshots/%s/revert" % MISSING, {}),
        ("DELETE", guest + "/snapshots/%s" % MISSING, None),
        ("DELETE", guest + "/network_interfaces/00:00:00:00:00:00", None),
        ("DELETE", guest + "/disks/%s" % MISSING, None),
        ("DELETE", "/guests/%s" % MISSING, None),
        ("POST", "/storages/{storage_id}/guests", b"not an image"),
        ("POST", "/storages/%s/guests" % MISSING, b"\0" * 1024),
    ]
    # NOTE: the vSphere simulator (govmomi vcsim) checks no datastore
    # capacity and no disk size limit, so it would create these.
    if ids["backend"] != "vmware":
        cases.append(("POST", "/guests", {"name": new, "hdd": 1048576}))
        cases.append(("POST", guest + "/disks", {"size": 1048576}))
    return cases


def table(document, ids):
    """Return [(label, method, path, body bytes, content type)] for the
    backend whose existing ids are ``ids``."""
    cases = []
    for template, operations in document["paths"].items():
        path = template.replace("/{hypervisor}/{host}", "")
        for method, operation in operations.items():
            if method not in ("post", "put", "delete"):
                continue
            method = method.upper()
            content = (operation.get("requestBody") or {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")

            # Unknown ids, one path parameter at a time.
            for name in ("guest_id", "disk_id", "mac", "snapshot_id", "tag", "storage_id"):
                if "{%s}" % name in path:
                    missing = dict(ids, **{name: MISSING})
                    body = b"{}" if schema is not None else None
                    label = "unknown " + name
                    if (method, name) == ("DELETE", "tag"):
                        # Tags are a set: removing an absent one is a 204.
                        label = "absent tag"
                    cases.append((label, method, path.format(**missing),
                                  body, "application/json"))
            if schema is None:
                continue

            concrete = path.format(**ids)
            cases.append(("not JSON", method, concrete, b"{not json", "application/json"))
            cases.append(("array body", method, concrete, b"[]", "application/json"))
            for name, property_schema in schema.get("properties", {}).items():
                for label, value in wrong_values(property_schema):
                    cases.append(("%s %s" % (name, label), method, concrete,
                                  json.dumps({name: value}).encode(), "application/json"))

    for method, path, body in semantic_cases(ids):
        if isinstance(body, bytes):
            data, content_type = body, "application/octet-stream"
        else:
            data = None if body is None else json.dumps(body).encode()
            content_type = "application/json"
        cases.append(("semantic", method, path.format(**ids), data, content_type))
    return cases


@pytest.fixture(scope="module")
def document(backends):
    return backends["libvirt"].api.get("/openapi.json").json


@pytest.mark.parametrize("name", ["libvirt", "xen", "vmware"])
def test_invalid_input_changes_nothing(backends, document, name, caplog):
    caplog.set_level(logging.DEBUG)
    backend = backends[name]
    cases = table(document, backend.ids)
    failures = []

    state = backend.dump()
    for label, method, path, body, content_type in cases:
        response = backend.request(method, path, body, content_type)
        after = backend.dump()
        changed = differences(state, after)
        accepted = {204} if label == "absent tag" else ACCEPTED
        if response.status_int not in accepted or changed:
            failures.append("%s %s (%s): %d %s; changed: %s" % (
                method, path, label, response.status_int, response.text[:200],
                changed[:5]))
        state = after

    assert len(cases) > 100
    assert CANARY_PASSWORD not in caplog.text
    assert failures == [], "\n".join(failures)
