"""The stack of the round-4 attack tests: pserve in front of the test
driver, a XAPI simulator and a vSphere simulator, all with the canary
password (see tests/attacks/stack.py).

The module-scoped ``backends`` fixture (import it into a test module) and
``running_stack`` yield a :class:`Stack`. Its ``clients`` map each backend
name to a :class:`tests.attacks.stack.Client`, and its ``bases`` map it to
the backend's ``/{hypervisor}/{host}`` prefix.
"""

import contextlib

import pytest

from tests.attacks import stack
from tests.conftest import CANARY_PASSWORD

BACKENDS = ("test", "xen", "vmware")

#: The user name of each backend's token.
USERS = {"test": "root", "xen": "root",
         "vmware": "administrator@vsphere.local"}


class Stack:
    """The running server and simulators of one test module."""

    def __init__(self, server, xapi, vcsim):
        self.server = server
        self.xapi = xapi
        self.vcsim = vcsim
        self.bases = {
            "test": "/test/default",
            "xen": "/xen/" + xapi.netloc,
            "vmware": "/vmware/" + vcsim.netloc,
        }
        self.clients = {
            name: stack.Client(server.url, stack.canary_token(USERS[name]))
            for name in BACKENDS}

    def client(self, backend):
        return self.clients[backend]

    def base(self, backend):
        return self.bases[backend]

    def guest_names(self, backend):
        response = self.clients[backend].get(
            self.bases[backend] + "/guests?fields=name")
        assert response.status_code == 200, response.text
        return [record["name"] for record in response.json()]


@contextlib.contextmanager
def running_stack(folder, extra_settings=None):
    """Start the simulators and pserve; stop them and check the server log
    for the canary at the end."""
    with contextlib.ExitStack() as cleanup:
        xapi = stack.start_xapi()
        cleanup.callback(xapi.stop)
        vcsim = stack.start_vcsim(temporary_dir=folder)
        cleanup.callback(vcsim.stop)
        server = stack.start_server(folder, extra_settings)
        cleanup.callback(server.stop)
        running = Stack(server, xapi, vcsim)
        cleanup.callback(lambda: [client.close()
                                  for client in running.clients.values()])
        yield running
    assert CANARY_PASSWORD not in server.read_log()


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    """A stack for one test module."""
    with running_stack(str(tmp_path_factory.mktemp("round4"))) as running:
        yield running
