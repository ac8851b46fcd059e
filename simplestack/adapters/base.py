"""The adapter contract: what every hypervisor adapter provides.

An adapter translates the operations of the API into one hypervisor's SDK
calls. One adapter instance serves one request at a time: it is built by the
host context with no I/O, connected by :meth:`Adapter.open` on first use, and
closed by :meth:`Adapter.close` when the request (or the stream it returned)
ends, on every path, errors included.

With session reuse on (see :mod:`simplestack.sessions`), an adapter whose
class returns True from :meth:`Adapter.can_reuse_connections` stays open
after a request whose session is in a known state, that is when
:meth:`Adapter.connection_reusable` returns True. It then serves a later
request with the same type, host and credentials, which first calls
:meth:`Adapter.begin_request`. Such an adapter logs in again, once per
request, when the hypervisor reports that the session is gone and the
error proves that the call never ran; then it repeats the call.

Vocabulary
----------
- Identifiers are opaque strings chosen by the adapter: the hypervisor's
  UUID where it has one (lower-case in records, any case accepted as an
  argument). Hypervisor handles (virDomain, OpaqueRef, MoRef) never leave an
  adapter.
- Records are plain dicts with exactly the fields below; units are fixed:
  memory in MiB and sizes in GiB, both integers rounded down.

  pool
      ``used_memory``, ``total_memory`` (MiB), ``uuid``, ``master`` (address),
      ``software_info`` (dict with ``version`` at least).
  host
      ``id``, ``name``, ``address``.
  storage
      ``id``, ``name``, ``type``, ``used_space``, ``allocated_space``,
      ``size`` (GiB).
  guest
      ``id``, ``name``, ``cpus`` (int), ``memory`` (MiB), ``hdd`` (GiB, the
      sum of the guest's disks, CD-ROMs excluded), ``paravirtualized``
      (bool), ``tools_up_to_date`` (bool or None), ``ip`` (str or None),
      ``state`` (one of :data:`GUEST_STATES`), ``host`` (host name or None).
  disk
      ``id`` (str of ``number``), ``name``, ``number`` (int device
      position, stable for the disk's life), ``size`` (GiB),
      ``extra_info`` (the hypervisor's own disk id, such as a volume path).
  network interface
      ``id`` (the MAC), ``number``, ``mac`` (lower-case, colon-separated),
      ``network`` (network name), ``locking_mode``, ``ipv4_allowed``,
      ``ipv6_allowed`` (lists), ``rate_limit`` (bits per second, or None).
  network
      ``id``, ``name_label``, ``name_description``, ``bridge``, ``vlan``
      (int or None), ``other_config`` (dict).
  snapshot
      ``id``, ``name``, ``state``, ``path``, ``created`` (ISO 8601 or None).
  media device
      ``name`` (the mounted image's name, or None).

Errors
------
Operations raise only :mod:`simplestack.errors` classes, built with the
SDK exception as ``original`` and classified by the SDK's error codes, never
by matching message text:

- ``EntityNotFound`` for an unknown guest, disk, NIC, snapshot, storage,
  host, network or image;
- ``InvalidArguments`` for a value the hypervisor cannot take (a disk
  shrink, a character the hypervisor forbids in names);
- ``InvalidState`` when the guest's state forbids the operation (the
  message names the current state);
- ``Conflict`` for duplicates (a MAC, a VLAN, a name already used where
  the hypervisor needs unique names, an ambiguous name);
- ``FeatureNotImplemented`` when this hypervisor cannot do the operation;
  every method of this base class raises it, so an adapter implements only
  what its hypervisor can do;
- ``HypervisorAuthenticationFailed``, ``HypervisorUnreachable``,
  ``HypervisorTimeout`` and ``HypervisorError`` for everything else.

An operation that raises before it calls a mutating SDK method leaves the
hypervisor unchanged: adapters check arguments first, then act.

Round trips
-----------
``calls`` counts the requests an adapter sent to its hypervisor since it
was built or since :meth:`Adapter.begin_request`; the request log reports
it.
"""

from collections import namedtuple

from simplestack import errors

#: Guest states of the API. Adapters map every native state to one of them.
GUEST_STATES = ("STARTED", "STOPPED", "PAUSED", "UNKNOWN")

#: Power actions accepted by :meth:`Adapter.set_power`.
POWER_ACTIONS = ("start", "stop", "force_stop", "pause", "resume")


class Credentials(namedtuple("Credentials", "username password")):
    """A user name and password for the hypervisor; the repr hides both."""

    __slots__ = ()

    def __repr__(self):
        return "Credentials(username=<hidden>, password=<hidden>)"

    __str__ = __repr__


def read_exactly(stream, size):
    """Read up to ``size`` bytes, retrying short reads until EOF."""
    parts = []
    remaining = size
    while remaining > 0:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


class ExportFacts(namedtuple("ExportFacts",
                               "content_type filename length")):
    """The facts of an exported image that GET's headers carry, known
    before the transfer starts: the image's type, its file name, and its
    length in bytes or None. An adapter's ``check_export`` returns them
    for HEAD."""


class ImageStream:
    """An image leaving the hypervisor, for a streamed response.

    ``chunks`` is an iterable of bytes; ``close`` releases what the stream
    holds (the SDK stream, and the connection when the context handed it
    over). ``length`` is the size in bytes when known in advance.
    """

    def __init__(self, chunks, content_type, filename, length=None,
                 close=None):
        self.chunks = chunks
        self.content_type = content_type
        self.filename = filename
        self.length = length
        self._close = close

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        close, self._close = self._close, None
        if close is not None:
            close()


class Adapter:
    """Base class of hypervisor adapters; every operation raises 501 here.

    Subclasses are named by dotted path in the INI settings for each
    hypervisor type. They are constructed once per request with:

    ``type_name``
        the hypervisor type of the URL (``kvm``, ``test``, ...);
    ``host``
        the host part of the URL, possibly with a port;
    ``credentials``
        a :class:`Credentials`;
    ``config``
        what :meth:`parse_settings` returned at start-up for this type.
    """

    #: Human name used in messages, e.g. "libvirt (QEMU)".
    hypervisor_name = "hypervisor"

    def __init__(self, type_name, host, credentials, config):
        self.type_name = type_name
        self.host = host
        self.credentials = credentials
        self.config = config
        self.calls = 0

    @classmethod
    def parse_settings(cls, type_name, settings):
        """Validate this type's settings (a dict of strings from the INI).

        Runs once at start-up. Raise ``ValueError`` naming the setting for a
        bad value; the application refuses to start with that message.
        """
        return dict(settings)

    # -- connection -------------------------------------------------------

    def open(self):
        """Connect and authenticate. Called once, before any operation."""
        raise NotImplementedError

    def close(self):
        """Release the connection. Idempotent; never raises."""

    # -- connection reuse ------------------------------------------------------

    @classmethod
    def can_reuse_connections(cls, config):
        """Tell whether an open connection of this type may serve several
        requests, one at a time. False here: an adapter opts in."""
        return False

    @classmethod
    def pool_credentials(cls, config, host, credentials):
        """Return the credentials that tell pooled connections to ``host``
        apart: ``credentials`` here. An adapter returns None for a host
        whose connections ignore them, so that every token shares them."""
        return credentials

    def begin_request(self):
        """Prepare an open connection from the pool for another request.

        Resets ``calls`` and any other per-request state. Raises as
        :meth:`open` does when the connection has to be made again and
        that fails.
        """
        self.calls = 0

    def connection_reusable(self):
        """Tell whether this connection may return to the pool after a
        request: False once a call failed in a way that leaves the
        session's state unknown (a timeout, a lost connection)."""
        return False

    # -- helpers for subclasses --------------------------------------------

    def not_implemented(self, operation, reason=None):
        message = "%s cannot %s" % (self.hypervisor_name, operation)
        if reason:
            message = "%s: %s" % (message, reason)
        return errors.FeatureNotImplemented(message)

    def failure_message(self, error_class, method, summary, state=None):
        """Return the message of an error that the hypervisor returned.

        ``error_class`` is the Simplestack class of the error, ``method``
        the SDK method that failed and ``summary`` the hypervisor's error
        code with its public parameters. ``state`` is the guest's API state
        for an InvalidState message, or None when it is unknown.
        """
        if error_class is errors.InvalidState:
            return "%s rejected %s while the guest is %s: %s" % (
                self.hypervisor_name, method,
                state or "in a state that forbids it", summary)
        if error_class is errors.HypervisorAuthenticationFailed:
            return "%s at %s rejected the credentials" % (
                self.hypervisor_name, self.host)
        if error_class is errors.FeatureNotImplemented:
            return "%s at %s cannot run %s: %s" % (
                self.hypervisor_name, self.host, method, summary)
        return "%s failed in %s: %s" % (self.hypervisor_name, method, summary)

    # -- pool and hosts ----------------------------------------------------

    def get_pool(self):
        """Return the pool record of the host the connection reaches."""
        raise self.not_implemented("report pool information")

    def list_hosts(self):
        """Return every host record of the pool."""
        raise self.not_implemented("list hosts")

    def get_host(self, host_id):
        raise self.not_implemented("show a host")

    # -- storages ----------------------------------------------------------

    def list_storages(self):
        raise self.not_implemented("list storages")

    def get_storage(self, storage_id):
        raise self.not_implemented("show a storage")

    # -- guests ------------------------------------------------------------

    def list_guests(self):
        """Return every guest as a full record, using the SDK's bulk calls.

        The number of hypervisor round trips should not grow with the
        number of guests. Where the SDK has no bulk call for some field
        (libvirt 9.0 has none for domain XML), the adapter marks it with a
        NOTE at its ``list_guests``.
        """
        raise self.not_implemented("list guests")

    def get_guest(self, guest_id):
        raise self.not_implemented("show a guest")

    def create_guest(self, spec):
        """Create a guest and return its record.

        ``spec`` contains ``name`` and only the optional keys the caller gave:
        ``cpus``, ``memory`` (MiB), ``hdd`` (GiB), ``template`` (name or
        id; a name that matches several templates is a Conflict),
        ``storage_id``, ``network`` (network name), ``paravirtualized``.
        The new guest has an empty CD-ROM drive.
        """
        raise self.not_implemented("create guests")

    def update_guest(self, guest_id, changes):
        """Apply ``changes`` and return the updated record.

        Keys: ``name``, ``memory`` (MiB), ``cpus``, ``hdd`` (GiB, the new
        total: the last disk grows by the difference; a smaller total is
        InvalidArguments), ``paravirtualized``, and hypervisor-specific
        ones. Reject a key the hypervisor cannot apply before changing
        anything.
        """
        raise self.not_implemented("update guests")

    def delete_guest(self, guest_id):
        """Delete the guest with its snapshots and disks (not its CD image)."""
        raise self.not_implemented("delete guests")

    def set_power(self, guest_id, action):
        """Run one of :data:`POWER_ACTIONS` and return the state read back."""
        raise self.not_implemented("change the power state")

    def reboot_guest(self, guest_id, force=False):
        """Reboot (``force``: reset) and return the state read back."""
        raise self.not_implemented("reboot guests")

    def clone_guest(self, guest_id, name):
        """Copy a stopped guest, its disks included, and return the copy."""
        raise self.not_implemented("clone guests")

    def export_guest(self, guest_id):
        """Return an :class:`ImageStream` of the guest's image."""
        raise self.not_implemented("export guests")

    def import_guest(self, stream, length, content_type, name=None,
                     storage_id=None):
        """Create a guest from an image and return its record.

        ``stream`` has ``read(size)``; ``length`` is the image size in
        bytes. Read in chunks: never load the image whole into memory.
        """
        raise self.not_implemented("import guests")

    # -- disks -------------------------------------------------------------

    def list_disks(self, guest_id):
        raise self.not_implemented("list disks")

    def get_disk(self, guest_id, disk_id):
        raise self.not_implemented("show a disk")

    def create_disk(self, guest_id, spec):
        """Add a disk: ``size`` (GiB) and optional ``name``, ``storage_id``."""
        raise self.not_implemented("add disks")

    def update_disk(self, guest_id, disk_id, changes):
        """Rename (``name``) or grow (``size``, GiB; shrinking is 400)."""
        raise self.not_implemented("update disks")

    def delete_disk(self, guest_id, disk_id):
        """Detach the disk and delete its volume."""
        raise self.not_implemented("delete disks")

    # -- media device ------------------------------------------------------

    def get_media(self, guest_id):
        """Return the media device record; InvalidState without a CD drive."""
        raise self.not_implemented("show the media device")

    def set_media(self, guest_id, name):
        """Insert the image called ``name``, or eject when it is None."""
        raise self.not_implemented("change the media device")

    # -- network interfaces ------------------------------------------------

    def list_nics(self, guest_id):
        raise self.not_implemented("list network interfaces")

    def get_nic(self, guest_id, mac):
        """``mac`` is lower-case and colon-separated."""
        raise self.not_implemented("show a network interface")

    def create_nic(self, guest_id, spec):
        """Add a NIC: ``network`` (name) and optional ``mac``."""
        raise self.not_implemented("add network interfaces")

    def update_nic(self, guest_id, mac, changes):
        """Keys: ``network``, ``locking_mode``, ``ipv4_allowed``,
        ``ipv6_allowed``, ``active``, ``rate_limit`` (bits/s)."""
        raise self.not_implemented("update network interfaces")

    def delete_nic(self, guest_id, mac):
        raise self.not_implemented("delete network interfaces")

    # -- networks ----------------------------------------------------------

    def list_networks(self):
        raise self.not_implemented("list networks")

    def get_network(self, network_id):
        raise self.not_implemented("show a network")

    def create_network(self, spec):
        """Create a network: ``name``, optional ``description``, ``vlan``,
        ``other_config``, and ``from_network`` (without it, an isolated
        network)."""
        raise self.not_implemented("create networks")

    # -- snapshots ---------------------------------------------------------

    def list_snapshots(self, guest_id):
        raise self.not_implemented("list snapshots")

    def get_snapshot(self, guest_id, snapshot_id):
        raise self.not_implemented("show a snapshot")

    def create_snapshot(self, guest_id, name=None):
        """Snapshot the guest; without ``name``, an ISO 8601 UTC timestamp."""
        raise self.not_implemented("create snapshots")

    def delete_snapshot(self, guest_id, snapshot_id):
        raise self.not_implemented("delete snapshots")

    def revert_snapshot(self, guest_id, snapshot_id):
        """Revert and return the guest record as it is afterwards."""
        raise self.not_implemented("revert to snapshots")

    # -- tags --------------------------------------------------------------

    def list_tags(self, guest_id):
        """Return the guest's tags, a sorted list of strings."""
        raise self.not_implemented("list tags")

    def add_tag(self, guest_id, name):
        """Add a tag (a no-op when present) and return the tags."""
        raise self.not_implemented("add tags")

    def delete_tag(self, guest_id, name):
        """Remove a tag; an absent tag is not an error (tags are a set)."""
        raise self.not_implemented("delete tags")


class SessionReuseMixin:
    """Connection reuse for an adapter that keeps one logged-in session.

    An adapter class lists a subclass of this mixin before :class:`Adapter`
    among its bases, so that :meth:`begin_request` also runs Adapter's. The
    subclass defines :meth:`has_session` and :meth:`_log_in_again`. Its
    call path sets ``connection_failed`` when a call fails in transport,
    and calls :meth:`renew_session` only when :meth:`may_renew_session`
    returns True and the hypervisor's error proves that the call never ran.
    """

    # True until the session has been renewed once in this request.
    _renewal_allowed = True
    #: True once a call failed in transport, which leaves the session's
    #: state unknown, so the connection never returns to the pool.
    connection_failed = False

    @classmethod
    def can_reuse_connections(cls, config):
        return True

    def begin_request(self):
        super().begin_request()
        self._renewal_allowed = True

    def connection_reusable(self):
        return self.has_session() and not self.connection_failed

    def has_session(self):
        """Tell whether the adapter has a logged-in session."""
        raise NotImplementedError

    def may_renew_session(self):
        """Tell whether a session reported gone may be renewed, which is
        when one is logged in and none was renewed in this request."""
        return self._renewal_allowed and self.has_session()

    def renew_session(self):
        """Log in again and forbid another renewal in this request."""
        self._renewal_allowed = False
        self._log_in_again()

    def _log_in_again(self):
        """Replace the session that the hypervisor reported gone."""
        raise NotImplementedError
