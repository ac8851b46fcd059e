"""Requests that schemathesis generates from /openapi.json, on every backend.

Each operation of the document gets a fixed budget of generated requests
per backend (libvirt's test driver, the XAPI simulator, the vSphere
simulator), in positive mode (valid by the schema) and negative mode
(invalid by it). Hypothesis runs derandomized, so every run sends the same
requests. The path's hypervisor and host always name the backend under test,
the token is valid, and half of the requests name an existing guest.

Every response must be one of ours: never 500, never 502 or 504 (the
simulators are up the whole time), always a JSON error body for an error,
and never the canary password.

EXAMPLES_PER_OPERATION sets the budget; the environment variable
SIMPLESTACK_GENERATED_EXAMPLES raises it for the long run before a release
(see tests/README.md).
"""

import os

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies

from tests.attacks import stack
from tests.conftest import CANARY_PASSWORD

EXAMPLES_PER_OPERATION = int(os.environ.get("SIMPLESTACK_GENERATED_EXAMPLES", "6"))

#: Statuses that a reachable, healthy hypervisor never justifies.
FORBIDDEN_STATUSES = {500, 502, 504}

MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    """Start both simulators and the service; yield {name: (path prefix,
    token, guest id)} and the server."""
    folder = str(tmp_path_factory.mktemp("generated"))
    xapi = stack.start_xapi()
    vcsim = stack.start_vcsim("vpx", folder)
    server = stack.start_server(folder)
    try:
        prefixes = {
            "test": ("test", "default", stack.canary_token("root")),
            "xen": ("xen", xapi.netloc, stack.canary_token(xapi.username)),
            "vmware": ("vmware", vcsim.netloc, stack.canary_token(vcsim.username)),
        }
        found = {}
        for name, (hypervisor, host, token) in prefixes.items():
            client = stack.Client(server.url, token)
            guests = client.get("/%s/%s/guests" % (hypervisor, host)).json()
            client.close()
            found[name] = (hypervisor, host, token, guests[0]["id"])
        yield server, found
    finally:
        server.stop()
        xapi.stop()
        vcsim.stop()
    assert not stack.leaks_canary(server.read_log())


@pytest.fixture(scope="module")
def schema(backends):
    server, _ = backends
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


def case_strategy(operation, hypervisor, host, token, guest_id, mode):
    """Return a strategy of cases of ``operation`` routed to one backend."""
    names = {parameter.name for parameter in operation.path_parameters}
    fixed = {key: value for key, value in (("hypervisor", hypervisor), ("host", host))
             if key in names}
    headers = {stack.TOKEN_HEADER: token}
    choices = [operation.as_strategy(mode, path_parameters=fixed, headers=headers)]
    if "guest_id" in names:
        choices.append(operation.as_strategy(
            mode, path_parameters=dict(fixed, guest_id=guest_id), headers=headers))
    return strategies.one_of(choices)


def check_generated_response(response):
    """Return a description of what is wrong with a response, or None."""
    if response.status_code in FORBIDDEN_STATUSES:
        return "status %d: %s" % (response.status_code, response.text[:300])
    try:
        stack.check_response(response)
    except AssertionError as error:
        return "bad response %d: %s" % (response.status_code, error)
    return None


@pytest.mark.parametrize("backend", ["test", "xen", "vmware"])
def test_generated_requests(backends, schema, backend):
    server, found = backends
    hypervisor, host, token, guest_id = found[backend]
    failures = []
    requests_sent = 0
    session = stack.Client(server.url, token).session

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in MODES:
            strategy = case_strategy(operation, hypervisor, host, token, guest_id, mode)

            @hypothesis.settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True,
                                 database=None, deadline=None, phases=[
                                     hypothesis.Phase.explicit, hypothesis.Phase.generate],
                                 suppress_health_check=list(hypothesis.HealthCheck))
            @hypothesis.given(case=strategy)
            def send(case):
                nonlocal requests_sent
                # The token stays valid even in negative mode: token forms
                # are attacked in test_token_forms.py.
                case.headers[stack.TOKEN_HEADER] = token
                arguments = case.as_transport_kwargs(base_url=server.url)
                response = session.request(**arguments, timeout=stack.CLIENT_TIMEOUT)
                requests_sent += 1
                problem = check_generated_response(response)
                if problem:
                    failures.append("%s %s (%s): %s" % (
                        case.method, case.formatted_path, mode.value, problem))

            try:
                send()
            except hypothesis.errors.Unsatisfiable:
                # An operation with no parameters and no body has no
                # invalid request to generate.
                assert mode == schemathesis.GenerationMode.NEGATIVE

    session.close()
    assert requests_sent > 0
    assert CANARY_PASSWORD not in server.read_log()
    assert failures == [], "\n".join(failures[:40])
