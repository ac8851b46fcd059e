"""Settings are parsed once at start-up; a bad one stops it with its name."""

import pytest

from simplestack import main
from simplestack.settings import parse_settings

LIBVIRT = "simplestack.adapters.libvirt:LibvirtAdapter"


def test_defaults_apply():
    settings = parse_settings({})
    assert settings["simplestack.max_json_body_bytes"] == 1024 * 1024
    assert settings["simplestack.client_timeout"] == 300.0
    assert settings["simplestack.hypervisor_types"] == {}


@pytest.mark.parametrize("raw, fragment", [
    ({"simplestack.max_json_body_bytes": "lots"},
     "simplestack.max_json_body_bytes"),
    ({"simplestack.max_json_body_bytes": "0"},
     "simplestack.max_json_body_bytes"),
    ({"simplestack.hypervisors": "test"}, "name = adapter"),
    ({"simplestack.hypervisors": "Test = " + LIBVIRT}, "lower-case"),
    ({"simplestack.hypervisors": "t = " + LIBVIRT + "\nt = " + LIBVIRT},
     "twice"),
    ({"simplestack.hypervisors": "t = no.such.module:Adapter"},
     "cannot load adapter"),
    ({"simplestack.hypervisors": "t = nosuchentrypoint"}, "entry point"),
    ({"simplestack.hypervisors": "t = simplestack.errors:EntityNotFound"},
     "not an Adapter subclass"),
    ({"simplestack.hypervisor.ghost.driver": "qemu"}, "ghost"),
    ({"simplestack.max_concurent_streams": "2"},
     "unknown setting simplestack.max_concurent_streams"),
    ({"simplestack.max_concurrent_streams": "-1"},
     "simplestack.max_concurrent_streams must be a positive integer"),
    ({"simplestack.client_timeout": "0"},
     "simplestack.client_timeout must be a positive number of seconds"),
    ({"simplestack.client_timeout": "inf"}, "simplestack.client_timeout"),
    ({"simplestack.client_timeout": "soon"}, "simplestack.client_timeout"),
    ({"simplestack.hypervisors": "t = " + LIBVIRT,
      "simplestack.hypervisor.t.driver": "test",
      "simplestack.hypervisor.t.max_sessions_per_host": "0"},
     "simplestack.hypervisor.t.max_sessions_per_host must be a positive "
     "integer"),
])
def test_bad_settings_name_the_setting(raw, fragment):
    with pytest.raises(ValueError) as excinfo:
        parse_settings(raw)
    assert fragment in str(excinfo.value)


def test_adapter_by_entry_point_name():
    settings = parse_settings({
        "simplestack.hypervisors": "t = libvirt",
        "simplestack.hypervisor.t.driver": "test",
    })
    adapter_class = settings["simplestack.hypervisor_types"]["t"].adapter_class
    assert adapter_class.__name__ == "LibvirtAdapter"


def test_bad_adapter_setting_stops_start_up():
    with pytest.raises(ValueError) as excinfo:
        main({}, **{"simplestack.hypervisors": "t = " + LIBVIRT,
                    "simplestack.hypervisor.t.driver": "floppy"})
    assert "driver" in str(excinfo.value)
