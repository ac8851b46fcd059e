"""Access control: the callers of the service and the hypervisor hosts it
may reach.

Host allow-list
    ``simplestack.hypervisor.<type>.allowed_hosts`` lists addresses, CIDR
    networks (IPv4 and IPv6) and host names, separated by white space or
    commas. A URL host matches when it is an address inside one of the
    networks, or a name equal to one of the names, compared
    case-insensitively. Names are never resolved, so a name never matches a
    network, and ``example.com.`` does not match ``example.com``.
    IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``), ``0.0.0.0`` and
    ``::`` match nothing. The port is not part of the match. An empty list
    rejects every host, except for types whose adapter reaches no network
    host (libvirt's test driver).

Caller tokens
    ``simplestack.caller_token_digests`` lists ``sha256:<64 hex digits>``
    lines, the SHA-256 digests of the tokens that callers send in the
    ``x-simplestack-token`` header. Empty (the default) turns the check off,
    and the header is then ignored. ``python -m simplestack.tokens`` prints
    the digest of a token.
"""

import hashlib
import hmac
import ipaddress
import logging
import re

from simplestack import errors

logger = logging.getLogger(__name__)

ALLOWED_HOSTS_KEY = "allowed_hosts"
CALLER_TOKEN_KEY = "simplestack.caller_token_digests"
CALLER_TOKEN_HEADER = "x-simplestack-token"

# One DNS label: letters, digits and inner hyphens (RFC 1123).
LABEL_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
DIGEST_PATTERN = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


# -- host allow-list ---------------------------------------------------------

def split_url_host(host):
    """Return the host of a URL host without its port or IPv6 brackets."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


def parse_address(text):
    """Return ``text`` as an IP address, or None when it is not one.

    Only the standard notations count: dotted quads of decimal numbers
    without leading zeros, and IPv6. Forms such as ``127.1`` or
    ``0x7f000001``, which the C resolver would read as addresses, are
    not addresses here, so they can only match a name entry, and
    :func:`parse_name_entry` rejects such names.
    """
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_name_entry(entry, type_name):
    name = entry.lower()
    labels = name.split(".")
    if name.endswith(".") or not all(LABEL_PATTERN.match(label)
                                     for label in labels):
        raise ValueError(
            "simplestack.hypervisor.%s.allowed_hosts: invalid entry %r; "
            "expected an address, a CIDR network or a host name without "
            "a port or a trailing dot" % (type_name, entry))
    if labels[-1].isdigit() or labels[-1].startswith("0x"):
        # An all-numeric last label makes the resolver read the name as
        # an address (127.1), so such a name would bypass the networks.
        raise ValueError(
            "simplestack.hypervisor.%s.allowed_hosts: invalid entry %r; "
            "it is neither a standard IP address nor a host name, because "
            "its last label is numeric" % (type_name, entry))
    return name


class HostAllowList:
    """The hosts that one hypervisor type may connect to."""

    def __init__(self, networks=(), names=()):
        self.networks = tuple(networks)
        self.names = frozenset(names)

    def __len__(self):
        return len(self.networks) + len(self.names)

    def __repr__(self):
        entries = [str(network) for network in self.networks]
        entries.extend(sorted(self.names))
        return "HostAllowList(%s)" % ", ".join(entries)

    @classmethod
    def parse(cls, type_name, key, raw):
        """Parse the ``allowed_hosts`` setting of ``type_name``.

        Raises ValueError naming the setting and the invalid entry.
        """
        networks = []
        names = set()
        for entry in re.split(r"[\s,]+", raw.strip()):
            if not entry:
                continue
            bare = entry[1:-1] if entry.startswith("[") and \
                entry.endswith("]") else entry
            if "/" in bare:
                try:
                    networks.append(ipaddress.ip_network(bare))
                except ValueError as error:
                    raise ValueError(
                        "simplestack.hypervisor.%s.%s: invalid network %r: "
                        "%s" % (type_name, key, entry, error)) from None
                continue
            address = parse_address(bare)
            if address is not None:
                if is_ipv4_mapped(address):
                    raise ValueError(
                        "simplestack.hypervisor.%s.%s: invalid entry %r; "
                        "an IPv4-mapped address matches no URL host, so "
                        "list the IPv4 address %s instead"
                        % (type_name, key, entry, address.ipv4_mapped))
                networks.append(ipaddress.ip_network(address))
            else:
                names.add(parse_name_entry(entry, type_name))
        return cls(networks, names)

    def permits(self, url_host):
        """Return whether ``url_host`` (``host``, ``host:port`` or
        ``[v6]:port``) is on the list. Does no name resolution."""
        host = split_url_host(url_host)
        address = parse_address(host)
        if address is not None:
            return self.permits_address(address)
        # Entries have no empty labels, so "name." never matches "name".
        return host.lower() in self.names

    def permits_address(self, address):
        """Return whether the IP ``address`` is inside one of the networks.

        An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) connects over
        IPv4, and the unspecified addresses (``0.0.0.0``, ``::``) connect to
        this machine, so none of them matches any network: otherwise an
        IPv6 network such as ``::/0`` would reach IPv4 hosts.
        """
        if address.is_unspecified or is_ipv4_mapped(address):
            return False
        return any(address in network for network in self.networks)


def is_ipv4_mapped(address):
    return getattr(address, "ipv4_mapped", None) is not None


def needs_allow_list(hypervisor_type):
    """Return whether requests of ``hypervisor_type`` reach a host that the
    allow-list must permit.

    An adapter class reports this with a ``reaches_network_host(config)``
    class method. An adapter without one always needs the list.
    """
    check = getattr(hypervisor_type.adapter_class, "reaches_network_host",
                    None)
    return True if check is None else bool(check(hypervisor_type.config))


def check_host(hypervisor_type, url_host):
    """Raise HostNotAllowed unless ``url_host`` may be reached by
    ``hypervisor_type``."""
    if not needs_allow_list(hypervisor_type):
        return
    allowed = hypervisor_type.service[ALLOWED_HOSTS_KEY]
    if not allowed.permits(url_host):
        # The list matches hosts without their port, so the message names
        # the host as an entry would have to be written.
        raise errors.HostNotAllowed(
            "host %r is not in simplestack.hypervisor.%s.allowed_hosts"
            % (split_url_host(url_host), hypervisor_type.name))


def check_redirect(config, url_host, target_host):
    """Raise HostNotAllowed unless ``target_host`` is on the allow-list in
    the adapter's ``config``.

    ``url_host`` redirected the adapter to ``target_host``. A config
    without a list permits every target.
    """
    allowed = config.get(ALLOWED_HOSTS_KEY)
    if allowed is not None and not allowed.permits(target_host):
        raise errors.HostNotAllowed(
            "host %r redirected the request to %r, which is not in the "
            "allowed_hosts setting" % (url_host, target_host))


def log_allow_list(hypervisor_type):
    """Log at start-up how many hosts ``hypervisor_type`` may reach."""
    if not needs_allow_list(hypervisor_type):
        logger.info("hypervisor type %s: reaches no network host, so it "
                    "needs no allowed_hosts entry", hypervisor_type.name)
        return
    count = len(hypervisor_type.service[ALLOWED_HOSTS_KEY])
    if count:
        logger.info("hypervisor type %s: allowed_hosts has %d %s",
                    hypervisor_type.name, count,
                    "entry" if count == 1 else "entries")
    else:
        logger.warning("hypervisor type %s: allowed_hosts is empty, so "
                       "every request to it gets 403 HostNotAllowed",
                       hypervisor_type.name)


# -- caller tokens ------------------------------------------------------------

def token_digest(token):
    """Return the ``sha256:<hex>`` line that lists ``token`` (bytes)."""
    return "sha256:" + hashlib.sha256(token).hexdigest()


def parse_token_digests(raw):
    """Return the digests (bytes) of the caller token setting.

    Raises ValueError naming the line number of an invalid line, never its
    text, which may be a token pasted by mistake.
    """
    digests = []
    for number, line in enumerate(raw.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = DIGEST_PATTERN.match(line)
        if match is None:
            raise ValueError(
                "setting %s, line %d of its value (line 1 is the one with "
                "the setting's name): expected sha256:<64 hex digits>; "
                "list the digest of a token (python -m simplestack.tokens), "
                "never the token itself" % (CALLER_TOKEN_KEY, number))
        digests.append(bytes.fromhex(match.group(1)))
    return tuple(digests)


def log_caller_tokens(digests):
    """Log at start-up whether callers must send a token."""
    if digests:
        logger.info("caller tokens: %d configured; requests to hypervisor "
                    "paths need header %s", len(digests),
                    CALLER_TOKEN_HEADER)
    else:
        logger.info("caller tokens: none configured, so header %s is "
                    "ignored", CALLER_TOKEN_HEADER)


def check_caller_token(request):
    """Raise Unauthorized unless the request's ``x-simplestack-token``
    matches a configured digest; do nothing while none is configured."""
    digests = request.registry.settings[CALLER_TOKEN_KEY]
    if not digests:
        return
    value = request.headers.get(CALLER_TOKEN_HEADER)
    if value is None or not value.strip(" \t"):
        raise errors.Unauthorized(
            "missing header %s: this service requires a caller token"
            % CALLER_TOKEN_HEADER)
    # WSGI hands header values over as latin-1 text: encoding them back
    # restores the bytes the caller sent.
    presented = hashlib.sha256(
        value.strip(" \t").encode("latin-1")).digest()
    matched = False
    for digest in digests:
        # Every digest is compared, so the time taken does not depend on
        # which one matches.
        matched |= hmac.compare_digest(presented, digest)
    if not matched:
        raise errors.Unauthorized(
            "invalid header %s: the token is not one of the configured "
            "caller tokens" % CALLER_TOKEN_HEADER)
