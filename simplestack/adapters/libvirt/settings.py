"""The settings of a libvirt hypervisor type and their parsing."""

import os

DRIVERS = ("qemu", "lxc", "test", "hyperv")

DEFAULT_SETTINGS = {
    "driver": "",
    "uri_template": "",
    "local_uri": "",
    "local_hosts": "localhost",
    "storage_pool": "default",
    "network": "",
    "domain_type": "kvm",
    "timeout": "",
    "hosts": "",
    "container_root": "",
    "container_init": "/sbin/init",
}

DEFAULT_URIS = {
    # driver: (uri_template, local_uri)
    "qemu": ("qemu+tls://{host}/system", "qemu:///system"),
    "lxc": ("lxc+tls://{host}/", "lxc:///"),
    "hyperv": ("hyperv://{host}/?transport=https", ""),
    "test": ("", ""),
}

TEST_DEFAULT_HOST = "default"
TEST_DEFAULT_URI = "test:///default"


def _parse_test_hosts(text):
    """Parse ``name=/abs/path.xml`` lines into {name: test driver URI}."""
    hosts = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        name, separator, path = line.partition("=")
        name, path = name.strip(), path.strip()
        if not separator or not name or not os.path.isabs(path):
            raise ValueError(
                "hosts: invalid line %r; expected name=/absolute/path.xml"
                % line)
        if not os.path.isfile(path):
            raise ValueError("hosts: file %s for host %r does not exist"
                             % (path, name))
        hosts[name] = "test://" + path
    return hosts


class SettingsMixin:
    """The ``parse_settings`` class method of LibvirtAdapter."""

    @classmethod
    def parse_settings(cls, type_name, settings):
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError("unknown libvirt settings for %s: %s"
                             % (type_name, ", ".join(sorted(unknown))))
        config = dict(DEFAULT_SETTINGS)
        config.update({key: value.strip() for key, value in settings.items()})

        driver = config["driver"]
        if driver not in DRIVERS:
            raise ValueError("driver: invalid value %r for %s; expected one "
                             "of %s" % (driver, type_name, ", ".join(DRIVERS)))
        if driver == "test" and "storage_pool" not in settings:
            # The pool that test:///default comes with.
            config["storage_pool"] = "default-pool"
        default_template, default_local = DEFAULT_URIS[driver]
        config["uri_template"] = config["uri_template"] or default_template
        config["local_uri"] = config["local_uri"] or default_local
        if driver != "test" and "{host}" not in config["uri_template"]:
            raise ValueError("uri_template: %r for %s has no {host} field"
                             % (config["uri_template"], type_name))
        config["local_hosts"] = frozenset(config["local_hosts"].split())

        if config["domain_type"] not in ("kvm", "qemu"):
            raise ValueError("domain_type: invalid value %r for %s; expected "
                             "kvm or qemu" % (config["domain_type"], type_name))

        timeout = config["timeout"]
        if timeout:
            try:
                config["timeout"] = float(timeout)
            except ValueError:
                config["timeout"] = 0
            if config["timeout"] <= 0:
                raise ValueError("timeout: invalid value %r for %s; expected "
                                 "a positive number of seconds"
                                 % (timeout, type_name))
        else:
            config["timeout"] = None

        config["hosts"] = _parse_test_hosts(config["hosts"])
        if config["hosts"] and driver != "test":
            raise ValueError("hosts: only the test driver takes host files")
        return config
