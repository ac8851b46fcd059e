"""Application settings: one table of defaults, parsed once at start-up.

Hypervisor types are declared in ``simplestack.hypervisors``, one per line::

    simplestack.hypervisors =
        test = simplestack.adapters.libvirt:LibvirtAdapter
        kvm = libvirt

The right-hand side is a dotted path to an adapter class, or the name of an
entry point in the ``simplestack.adapters`` group (how third-party adapters
plug in). Every setting named ``simplestack.hypervisor.<type>.<key>`` is
handed to that type's adapter as ``<key>``; the adapter validates them,
except the keys of :data:`TYPE_DEFAULTS`, which the service itself reads
for every type (whatever its adapter) and keeps in ``HypervisorType.service``.
"""

import importlib.metadata
import logging

from pyramid.path import DottedNameResolver

from simplestack import access, sessions, setting_values
from simplestack.adapters.base import Adapter

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "simplestack.adapters"

#: Settings of the service itself, with their defaults.
DEFAULTS = {
    # Hypervisor types, "name = adapter" lines; none by default.
    "simplestack.hypervisors": "",
    # Largest JSON request body accepted, in bytes (image streams excluded).
    "simplestack.max_json_body_bytes": "1048576",
    # Image exports and imports in progress at once, per process. Each
    # holds a server worker thread for as long as its client takes, so
    # keep this below the server's thread count: the rest stay free for
    # other requests, and a stream over the limit gets a 503 response.
    "simplestack.max_concurrent_streams": "4",
    # Seconds that a request waits on its client under gunicorn, for each
    # read of the body and each write of the response (see tweens.py).
    "simplestack.client_timeout": "300",
    # Directory of prometheus_client's multiprocess metric files; empty:
    # PROMETHEUS_MULTIPROC_DIR, else metrics of this process only.
    "simplestack.metrics_dir": "",
    # sha256:<hex> digests of the tokens that callers must send in the
    # x-simplestack-token header, one per line; empty: no caller check.
    access.CALLER_TOKEN_KEY: "",
}


#: The setting in which parse_settings returns the HypervisorType of each
#: declared type, by name.
HYPERVISOR_TYPES_KEY = "simplestack.hypervisor_types"

#: Settings that the service reads for each hypervisor type, whatever its
#: adapter, as ``simplestack.hypervisor.<type>.<key>``, with their defaults.
TYPE_DEFAULTS = {
    # Addresses, CIDR networks and host names that requests may name, see
    # simplestack.access; empty: every host is rejected, unless the
    # type's adapter reaches no network host.
    access.ALLOWED_HOSTS_KEY: "",
    # Session limit per host and optional session reuse; see
    # simplestack.sessions for what each one means.
    **sessions.TYPE_DEFAULTS,
}

#: How to convert each of :data:`TYPE_DEFAULTS`: a function of
#: (type name, key, raw string) returning the value, or raising ValueError
#: with a message that names the setting.
TYPE_PARSERS = {
    access.ALLOWED_HOSTS_KEY: access.HostAllowList.parse,
    **sessions.TYPE_PARSERS,
}


class HypervisorType:
    """A configured hypervisor type: its adapter class and parsed settings.

    ``config`` is what the adapter's ``parse_settings`` returned;
    ``service`` holds the parsed values of :data:`TYPE_DEFAULTS`.
    """

    def __init__(self, name, adapter_class, config, service=None):
        self.name = name
        self.adapter_class = adapter_class
        self.config = config
        self.service = service if service is not None else {}

    def __repr__(self):
        return "HypervisorType(%r, %s)" % (
            self.name, self.adapter_class.__qualname__)


def _resolve_adapter(type_name, reference):
    """Load an adapter class from a dotted path or an entry point name."""
    if ":" in reference or "." in reference:
        try:
            adapter_class = DottedNameResolver().resolve(reference)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(
                "hypervisor type %r: cannot load adapter %r: %s"
                % (type_name, reference, exc)) from exc
    else:
        entry_points = importlib.metadata.entry_points(
            group=ENTRY_POINT_GROUP, name=reference)
        if not entry_points:
            raise ValueError(
                "hypervisor type %r: no adapter entry point named %r in "
                "group %s" % (type_name, reference, ENTRY_POINT_GROUP))
        adapter_class = next(iter(entry_points)).load()
    if not (isinstance(adapter_class, type)
            and issubclass(adapter_class, Adapter)):
        raise ValueError(
            "hypervisor type %r: %r is not an Adapter subclass"
            % (type_name, reference))
    return adapter_class


def _parse_hypervisor_lines(raw):
    declared = {}
    for line in raw.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, reference = (part.strip() for part in line.partition("="))
        if not sep or not name or not reference:
            raise ValueError(
                "setting simplestack.hypervisors: expected 'name = adapter' "
                "on each line, got %r" % line)
        if not name.isidentifier() or name != name.lower():
            raise ValueError(
                "setting simplestack.hypervisors: type name %r must be a "
                "lower-case identifier" % name)
        if name in declared:
            raise ValueError(
                "setting simplestack.hypervisors: type %r declared twice"
                % name)
        declared[name] = reference
    return declared


def _parse_type_service_settings(type_name, type_settings):
    """Remove the service's own keys from ``type_settings`` and return them
    parsed, with defaults applied."""
    service = {}
    for key, default in TYPE_DEFAULTS.items():
        raw = type_settings.pop(key, default)
        parse = TYPE_PARSERS.get(key)
        service[key] = parse(type_name, key, raw) if parse else raw
    return service


def parse_settings(raw_settings):
    """Return the settings with defaults applied and values converted.

    Raises ``ValueError`` with a message naming the setting at fault.
    """
    settings = dict(DEFAULTS)
    settings.update(raw_settings)

    for key in ("simplestack.max_json_body_bytes",
                "simplestack.max_concurrent_streams"):
        settings[key] = setting_values.positive_int(settings[key], key)
    settings["simplestack.client_timeout"] = setting_values.positive_seconds(
        settings["simplestack.client_timeout"], "simplestack.client_timeout")
    settings[access.CALLER_TOKEN_KEY] = access.parse_token_digests(
        settings[access.CALLER_TOKEN_KEY])
    access.log_caller_tokens(settings[access.CALLER_TOKEN_KEY])

    hypervisor_types = {}
    declared = _parse_hypervisor_lines(settings["simplestack.hypervisors"])
    for name, reference in declared.items():
        adapter_class = _resolve_adapter(name, reference)
        prefix = "simplestack.hypervisor.%s." % name
        type_settings = {
            key[len(prefix):]: value
            for key, value in settings.items()
            if key.startswith(prefix)
        }
        service = _parse_type_service_settings(name, type_settings)
        config = adapter_class.parse_settings(name, type_settings)
        if isinstance(config, dict):
            # For adapters that must check a host they are redirected to,
            # such as a Xen pool master.
            config[access.ALLOWED_HOSTS_KEY] = service[
                access.ALLOWED_HOSTS_KEY]
        hypervisor_types[name] = HypervisorType(
            name, adapter_class, config, service)
        access.log_allow_list(hypervisor_types[name])

    # Settings for a type that was not declared are most likely a typo.
    for key in settings:
        if key.startswith("simplestack.hypervisor."):
            type_name = key[len("simplestack.hypervisor."):].split(".")[0]
            if type_name not in hypervisor_types:
                raise ValueError(
                    "setting %s names hypervisor type %r, which is not in "
                    "simplestack.hypervisors" % (key, type_name))

    # So are service settings that the service does not have.
    for key in settings:
        if (key.startswith("simplestack.")
                and not key.startswith("simplestack.hypervisor.")
                and key not in DEFAULTS and key != HYPERVISOR_TYPES_KEY):
            raise ValueError(
                "unknown setting %s; the service settings are %s"
                % (key, ", ".join(sorted(DEFAULTS))))

    settings[HYPERVISOR_TYPES_KEY] = hypervisor_types
    return settings
