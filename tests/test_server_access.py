"""The allow-list under pserve with testing.ini: start-up log and 403s."""

import json

from tests.test_server import request


def test_start_up_logs_allow_lists(server):
    log = server.read_log()

    for type_name in ("kvm", "qemu", "lxc", "hyperv", "xen", "vmware"):
        assert ("hypervisor type %s: allowed_hosts has 3 entries"
                % type_name) in log
    assert "hypervisor type test: reaches no network host" in log
    assert "caller tokens: none configured" in log


def test_host_outside_loopback_is_403(server):
    for path in ("/kvm/192.0.2.1/guests", "/xen/192.0.2.1:443/guests",
                 "/vmware/vcenter.example.org/guests",
                 "/qemu/[2001:db8::1]:16514/guests"):
        response, data = request(server, "GET", path)
        assert response.status == 403, path
        assert response.getheader("Content-Type").startswith(
            "application/json")
        assert json.loads(data)["error"] == "HostNotAllowed"
