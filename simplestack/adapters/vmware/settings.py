"""The settings of a VMware hypervisor type and their parsing."""

import logging
import os

from pyramid.settings import falsey, truthy

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS = {
    # PEM file of the CAs that sign the servers' certificates; empty: the
    # system's CAs. vCenter's own certificates are signed by its VMCA, whose
    # root is downloadable from https://<vcenter>/certs/download.zip.
    "ca_bundle": "",
    # true: accept any certificate. Logged at start-up and per connection.
    "insecure": "false",
    # Seconds to open a connection (TCP and TLS) and to wait for a reply.
    "connect_timeout": "10",
    "read_timeout": "300",
    # Seconds to wait for a vSphere task (clone, import, power) to end.
    "task_timeout": "1800",
    # Datacenter of new guests; empty: the first one the server lists.
    "datacenter": "",
    # Datastore of new guests and disks (a name or id); empty: the
    # datastore of the datacenter with the most free space.
    "datastore": "",
    # Network of the NIC of new guests (a name); empty: no NIC.
    "network": "",
    # Guest OS identifier of guests created from scratch.
    "guest_os": "otherGuest64",
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
    """The ``parse_settings`` class method of VmwareAdapter."""

    @classmethod
    def parse_settings(cls, type_name, settings):
        unknown = set(settings) - set(DEFAULT_SETTINGS)
        if unknown:
            raise ValueError("unknown VMware settings for %s: %s"
                             % (type_name, ", ".join(sorted(unknown))))
        config = dict(DEFAULT_SETTINGS)
        config.update({key: value.strip() for key, value in settings.items()})

        insecure = config["insecure"].lower()
        if insecure not in truthy | falsey:
            raise ValueError("insecure: invalid value %r for %s; expected "
                             "true or false" % (config["insecure"], type_name))
        config["insecure"] = insecure in truthy
        for key in ("connect_timeout", "read_timeout", "task_timeout"):
            config[key] = _positive_seconds(config, key, type_name)
        if not config["guest_os"]:
            raise ValueError("guest_os: empty for %s" % type_name)

        if config["insecure"] and config["ca_bundle"]:
            raise ValueError("ca_bundle and insecure are both set for %s; "
                             "set only one" % type_name)
        if config["insecure"]:
            logger.warning(
                "hypervisor type %s: insecure = true, so the service "
                "accepts any TLS certificate from VMware servers", type_name)
        # A missing CA bundle is reported on each connection instead of
        # stopping the service: in development the simulators create it on
        # their first run, which may come after the service starts.
        if config["ca_bundle"] and not os.path.isfile(config["ca_bundle"]):
            logger.warning(
                "hypervisor type %s: ca_bundle %s does not exist yet; "
                "connections fail until it does", type_name,
                config["ca_bundle"])
        return config
