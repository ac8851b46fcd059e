"""The settings of a Xen hypervisor type and their parsing."""

import logging

from simplestack.adapters.settings_helpers import (
    check_tls_settings, merge_settings, parse_boolean, positive_seconds,
    warn_missing_ca_bundle)

logger = logging.getLogger(__name__)

SCHEMES = ("https", "http")

DEFAULT_SETTINGS = {
    # https, or http for a XAPI that listens in plain text (port 80).
    "scheme": "https",
    # PEM file of the CAs that sign the hosts' certificates; empty: the
    # system's CAs. XAPI's default certificate is self-signed, so a real
    # pool needs either this or its certificates signed by a system CA.
    "ca_bundle": "",
    # true: accept any certificate. Logged at start-up and per connection.
    "insecure": "false",
    # Seconds to resolve the host name, which socket timeouts do not bound.
    "resolve_timeout": "5",
    # Seconds to open a connection (TCP and TLS) and to wait for a reply.
    "connect_timeout": "10",
    "read_timeout": "300",
    # XAPI counts and evicts sessions per originator.
    "originator": "simplestack",
    # Template of guests created without one; "Other install media" is one
    # of XAPI's default templates, with no disks.
    "default_template": "Other install media",
}


class SettingsMixin:
    """The ``parse_settings`` class method of XenAdapter."""

    @classmethod
    def parse_settings(cls, type_name, settings):
        config = merge_settings(settings, DEFAULT_SETTINGS, "Xen", type_name)

        if config["scheme"] not in SCHEMES:
            raise ValueError("scheme: invalid value %r for %s; expected "
                             "https or http" % (config["scheme"], type_name))
        config["insecure"] = parse_boolean(config, "insecure", type_name)
        for key in ("resolve_timeout", "connect_timeout", "read_timeout"):
            config[key] = positive_seconds(config, key, type_name)
        if not config["originator"]:
            raise ValueError("originator: empty for %s; XAPI counts "
                             "sessions per originator" % type_name)
        if not config["default_template"]:
            raise ValueError("default_template: empty for %s" % type_name)

        check_tls_settings(config, type_name, "Xen hosts", logger)
        if config["scheme"] == "http":
            logger.warning(
                "hypervisor type %s: scheme = http, so Xen credentials "
                "travel unencrypted", type_name)
        warn_missing_ca_bundle(config, type_name, logger)
        return config
