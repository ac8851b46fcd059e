"""The settings of a VMware hypervisor type and their parsing."""

import logging

from simplestack.adapters.settings_helpers import (
    check_tls_settings, merge_settings, parse_boolean, positive_seconds,
    warn_missing_ca_bundle)

logger = logging.getLogger(__name__)

DEFAULT_SETTINGS = {
    # PEM file of the CAs that sign the servers' certificates; empty: the
    # system's CAs. vCenter's own certificates are signed by its VMCA, whose
    # root is downloadable from https://<vcenter>/certs/download.zip.
    "ca_bundle": "",
    # true: accept any certificate. Logged at start-up and per connection.
    "insecure": "false",
    # Seconds to resolve the host name, which socket timeouts do not bound.
    "resolve_timeout": "5",
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


class SettingsMixin:
    """The ``parse_settings`` class method of VmwareAdapter."""

    @classmethod
    def parse_settings(cls, type_name, settings):
        config = merge_settings(settings, DEFAULT_SETTINGS, "VMware",
                                type_name)

        config["insecure"] = parse_boolean(config, "insecure", type_name)
        for key in ("resolve_timeout", "connect_timeout", "read_timeout",
                    "task_timeout"):
            config[key] = positive_seconds(config, key, type_name)
        if not config["guest_os"]:
            raise ValueError("guest_os: empty for %s" % type_name)

        check_tls_settings(config, type_name, "VMware servers", logger)
        warn_missing_ca_bundle(config, type_name, logger)
        return config
