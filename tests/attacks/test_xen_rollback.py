"""A XAPI call that fails midway through a Xen change leaves no half change.

Each operation below runs once without faults while the XAPI simulator
counts its calls. Then, for every call that is not a read, the operation
runs again with that one call failing once (a /simulator/faults rule).
The request must fail with a JSON error, never 500. Every record of the
pool must be as it was before the request, compared with the dump of
test_half_changes.py.
"""

import json
import uuid

import pytest
from webtest import TestApp

from simplestack import main
from tests.api.conftest import app_settings
from tests.attacks import stack
from tests.attacks.test_half_changes import differences, xapi_state
from tests.conftest import CANARY_PASSWORD

#: Calls that change nothing, or that only manage the session and tasks.
READ_PREFIXES = ("session.", "event.", "task.", "pool.get", "host.get")

INJECTED = ["INTERNAL_ERROR", "injected by the test"]


def is_read(method):
    name = method.split(".", 1)[-1]
    return method.startswith(READ_PREFIXES) or name.startswith("get_")


@pytest.fixture(scope="module")
def xen(tmp_path_factory):
    simulator = stack.start_xapi(vms=1)
    app = main({}, **app_settings())
    api = TestApp(app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": stack.canary_token(simulator.username)})
    prefix = "/xen/" + simulator.netloc
    try:
        yield simulator, api, prefix
    finally:
        simulator.stop()


def new_name():
    return "sstest-rollback-" + uuid.uuid4().hex[:8]


def operations(api, prefix):
    """Return {label: function(api) -> response} of Xen changes to break."""
    guest = api.post_json(prefix + "/guests", {"name": new_name(), "hdd": 1}).json
    guest_path = prefix + "/guests/" + guest["id"]
    disk_path = guest_path + "/disks/" + api.get(guest_path + "/disks").json[0]["id"]
    # A network with physical interfaces, so that it can carry VLANs.
    network = [record["name_label"] for record in api.get(prefix + "/networks").json
               if record["bridge"].startswith("xenbr")][0]

    def send(method, path, document):
        return api.request(path, method=method, body=json.dumps(document).encode(),
                           headers={"Content-Type": "application/json"},
                           expect_errors=True)

    return {
        "create guest": lambda: send("POST", prefix + "/guests", {
            "name": new_name(), "hdd": 1, "network": network, "cpus": 2}),
        "update guest": lambda: send("PUT", guest_path, {
            "name": new_name(), "cpus": 3, "memory": 1024}),
        "add disk": lambda: send("POST", guest_path + "/disks", {"size": 1}),
        "update disk": lambda: send("PUT", disk_path, {
            "name": new_name(), "size": api.get(disk_path).json["size"] + 1}),
        "add NIC": lambda: send("POST", guest_path + "/network_interfaces",
                                {"network": network}),
        "snapshot": lambda: send("POST", guest_path + "/snapshots", {"name": new_name()}),
        "clone": lambda: send("POST", guest_path + "/clone", {"name": new_name()}),
        "tag": lambda: send("POST", guest_path + "/tags", {"name": new_name()}),
        "VLAN network": lambda: send("POST", prefix + "/networks", {
            "name": new_name(), "from_network": network,
            "vlan": 100 + uuid.uuid4().int % 3000}),
    }


def changing_calls(simulator, operation):
    """Run ``operation`` without faults; return the calls it made that are
    not reads."""
    simulator.reset_stats()
    response = operation()
    assert response.status_int < 300, response.text
    return sorted(method for method in simulator.stats()["calls"] if not is_read(method))


def test_failed_call_leaves_no_half_change(xen, caplog):
    simulator, api, prefix = xen
    failures = []
    broken = 0

    for label, operation in operations(api, prefix).items():
        for method in changing_calls(simulator, operation):
            before = xapi_state(simulator)
            simulator.set_fault(method, "fail", error=INJECTED, times=1)
            response = operation()
            unused = simulator.request("GET", "/simulator/faults")
            simulator.clear_faults()
            after = xapi_state(simulator)
            assert unused == [], "%s did not call %s this time" % (label, method)
            broken += 1

            changed = differences(before, after)
            if response.status_int < 400 or response.status_int == 500 or changed:
                failures.append("%s, %s failing: %d %s; changed: %s" % (
                    label, method, response.status_int, response.text[:150],
                    changed[:4]))
            assert response.content_type == "application/json"
            assert CANARY_PASSWORD not in response.text

    assert broken > 20
    assert CANARY_PASSWORD not in caplog.text
    assert failures == [], "\n".join(failures)
