"""The settings of a Xen hypervisor type and their parsing."""

import logging
import os

from pyramid.settings import falsey, truthy

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
    # Seconds to open a connection (TCP and TLS) and to wait for a reply.
    "connect_timeout": "10",
    "read_timeout": "300",
    # XAPI counts and evicts sessions per originator.
    "originator": "simplestack",
    # Template of guests created without one; "Other install media" is one
    # of XAPI's default templates, with no disks.
    "default_template": "Other install media",
}


def _positive_seconds(config, key, type_name):
    raw = config[key]
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if not value > 0:
        raise ValueError("%s: invalid value %r for %s; expected a positive "
                         "number of seconds" % (key, raw, type_name))
    return value


class SettingsMixin:
    """The ``parse_settings`` class method of XenAdapter."""

    @classmethod
    def parse_settings(cls, type_name, settings):
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError("unknown Xen settings for %s: %s"
                             % (type_name, ", ".join(sorted(unknown))))
        config = dict(DEFAULT_SETTINGS)
        config.update({key: value.strip() for key, value in settings.items()})

        if config["scheme"] not in SCHEMES:
            raise ValueError("scheme: invalid value %r for %s; expected "
                             "https or http" % (config["scheme"], type_name))
        insecure = config["insecure"].lower()
        if insecure not in truthy | falsey:
            raise ValueError("insecure: invalid value %r for %s; expected "
                             "true or false" % (config["insecure"], type_name))
        config["insecure"] = insecure in truthy
        for key in ("connect_timeout", "read_timeout"):
            config[key] = _positive_seconds(config, key, type_name)
        if not config["originator"]:
            raise ValueError("originator: empty for %s; XAPI counts "
                             "sessions per originator" % type_name)
        if not config["default_template"]:
            raise ValueError("default_template: empty for %s" % type_name)

        if config["insecure"] and config["ca_bundle"]:
            raise ValueError("ca_bundle and insecure are both set for %s; "
                             "set only one" % type_name)
        if config["insecure"]:
            logger.warning(
                "hypervisor type %s: insecure = true, so the service "
                "accepts any TLS certificate from Xen hosts", type_name)
        if config["scheme"] == "http":
            logger.warning(
                "hypervisor type %s: scheme = http, so Xen credentials "
                "travel unencrypted", type_name)
        # A missing CA bundle is reported on each connection instead of
        # stopping the service: in development the XAPI simulator creates
        # it on its first run, which may come after the service starts.
        if config["ca_bundle"] and not os.path.isfile(config["ca_bundle"]):
            logger.warning(
                "hypervisor type %s: ca_bundle %s does not exist yet; "
                "connections fail until it does", type_name,
                config["ca_bundle"])
        return config
