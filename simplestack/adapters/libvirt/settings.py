"""The settings of a libvirt hypervisor type and their parsing."""

import logging
import os

from simplestack.adapters.settings_helpers import (
    parse_boolean, positive_seconds)

logger = logging.getLogger("simplestack.adapters.libvirt")

DRIVERS = ("qemu", "lxc", "test", "hyperv")

DEFAULT_SETTINGS = {
    "driver": "",
    "uri_template": "",
    "local_uri": "",
    "local_hosts": "localhost",
    "storage_pool": "default",
    "network": "",
    "domain_type": "kvm",
    # Seconds without a keepalive reply before libvirt drops a remote
    # connection, so a call to a host that died fails instead of waiting
    # for TCP to give up; empty: no keepalive.
    "timeout": "30",
    # Seconds for virConnectOpenAuth on a remote URI, name resolution, TLS
    # and authentication included.
    "connect_timeout": "10",
    # Directory of cacert.pem, clientcert.pem and clientkey.pem for TLS
    # URIs; empty: libvirt's defaults under /etc/pki.
    "pkipath": "",
    # true: accept any server certificate on TLS URIs (no_verify=1).
    "insecure": "false",
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


def is_tls_uri(uri):
    """Return whether ``uri`` (a template or a URI) uses libvirt's TLS
    transport, the default of remote URIs without a ``+transport``."""
    scheme, _, rest = uri.partition(":")
    driver, _, transport = scheme.partition("+")
    if driver not in ("qemu", "lxc"):
        # Hyper-V and ESX URIs use their own HTTPS transports.
        return False
    if transport:
        return transport == "tls"
    # "qemu://host/system" is remote over TLS; "qemu:///system" is local.
    return rest.startswith("//") and not rest.startswith("///")


def _parse_tls_settings(config, type_name):
    config["insecure"] = parse_boolean(config, "insecure", type_name)
    tls = is_tls_uri(config["uri_template"])
    if (config["pkipath"] or config["insecure"]) and not tls:
        raise ValueError(
            "pkipath and insecure for %s apply to TLS URIs only, and "
            "uri_template %r is not one" % (type_name, config["uri_template"]))
    if config["pkipath"] and config["insecure"]:
        raise ValueError("pkipath and insecure are both set for %s; set "
                         "only one" % type_name)
    if config["pkipath"] and not os.path.isabs(config["pkipath"]):
        raise ValueError("pkipath: %r for %s is not an absolute path"
                         % (config["pkipath"], type_name))
    if config["insecure"]:
        logger.warning(
            "hypervisor type %s: insecure = true, so the service accepts "
            "any TLS certificate from libvirt hosts", type_name)


class SettingsMixin:
    """The class methods of LibvirtAdapter that read its settings."""

    @classmethod
    def reaches_network_host(cls, config):
        """Return whether the URL host names a host to connect to.

        The test driver runs in this process and takes the URL host as the
        name of one of its own fixtures, so the host allow-list does not
        apply to it. Every other driver connects to the URL host, or to the
        local libvirtd for the names in ``local_hosts``, which therefore
        need allow-list entries too.
        """
        return config["driver"] != "test"

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

        config["connect_timeout"] = positive_seconds(
            config, "connect_timeout", type_name)
        _parse_tls_settings(config, type_name)

        config["hosts"] = _parse_test_hosts(config["hosts"])
        if config["hosts"] and driver != "test":
            raise ValueError("hosts: only the test driver takes host files")
        return config
