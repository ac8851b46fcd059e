"""Parsing of the settings that the Xen and VMware adapters share.

Each function raises ValueError with a message that names the setting and
the hypervisor type (``type_name``), as ``parse_settings`` must.
"""

import os

from pyramid.settings import falsey, truthy


def merge_settings(settings, defaults, adapter_name, type_name):
    """Return ``defaults`` updated with ``settings``, values stripped.

    Raises ValueError on a key that ``defaults`` does not have, with
    ``adapter_name`` ("Xen") in the message.
    """
    unknown = set(settings) - set(defaults)
    if unknown:
        raise ValueError("unknown %s settings for %s: %s"
                         % (adapter_name, type_name,
                            ", ".join(sorted(unknown))))
    config = dict(defaults)
    config.update({key: value.strip() for key, value in settings.items()})
    return config


def parse_boolean(config, key, type_name):
    """Return the setting ``key`` as a bool, as Pyramid reads booleans."""
    raw = config[key].lower()
    if raw not in truthy | falsey:
        raise ValueError("%s: invalid value %r for %s; expected "
                         "true or false" % (key, config[key], type_name))
    return raw in truthy


def positive_seconds(config, key, type_name):
    raw = config[key]
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if not value > 0:
        raise ValueError("%s: invalid value %r for %s; expected a positive "
                         "number of seconds" % (key, raw, type_name))
    return value


def check_tls_settings(config, type_name, servers, logger):
    """Reject ``ca_bundle`` together with ``insecure``, and log a warning
    on ``logger`` when ``insecure`` is set.

    ``servers`` ("Xen hosts") names in the warning the peers whose
    certificates go unchecked.
    """
    if config["insecure"] and config["ca_bundle"]:
        raise ValueError("ca_bundle and insecure are both set for %s; "
                         "set only one" % type_name)
    if config["insecure"]:
        logger.warning(
            "hypervisor type %s: insecure = true, so the service "
            "accepts any TLS certificate from %s", type_name, servers)


def warn_missing_ca_bundle(config, type_name, logger):
    """Log a warning on ``logger`` when the ``ca_bundle`` file is missing.

    A missing CA bundle is reported on each connection instead of stopping
    the service: in development the simulators create it on their first
    run, which may come after the service starts.
    """
    if config["ca_bundle"] and not os.path.isfile(config["ca_bundle"]):
        logger.warning(
            "hypervisor type %s: ca_bundle %s does not exist yet; "
            "connections fail until it does", type_name,
            config["ca_bundle"])
