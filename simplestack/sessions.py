"""Hypervisor sessions of this process: a limit per host and an optional pool.

Every request that opens an adapter takes a session slot of its (type, host)
first, and gives it back when the adapter is closed or returned to the
pool. Past ``max_sessions_per_host`` slots, a request that needs a new
session gets 503 with ``Retry-After`` before any connection is opened.

The counts are per process: with several server processes (gunicorn
workers), a host may see up to processes x ``max_sessions_per_host``
sessions.

With ``session_reuse`` on, a request returns its open adapter to a pool
instead of logging out, and the next request with the same type, host and
credentials takes it. The pool key contains an HMAC-SHA256 digest of the
credentials under a random key that each process draws for itself, never
the credentials or a plain hash of them. A pooled adapter serves one
request at a time and keeps its slot. A background thread closes it once
it has been idle for ``session_idle_timeout`` seconds, and an atexit
handler closes it at process exit.
"""

import atexit
import collections
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import threading
import time
import weakref

from simplestack import errors, setting_values
from simplestack.adapters.settings_helpers import (
    parse_boolean, positive_seconds)

logger = logging.getLogger(__name__)

MAX_SESSIONS_KEY = "max_sessions_per_host"
REUSE_KEY = "session_reuse"
IDLE_TIMEOUT_KEY = "session_idle_timeout"

#: Defaults of the per-type settings, as ``simplestack.hypervisor.<type>.<key>``.
#: XAPI keeps at most 500 sessions per originator and silently logs out the
#: oldest ones past that, which would break requests in flight; 50 per
#: process leaves room for 8 server processes and other clients.
TYPE_DEFAULTS = {
    MAX_SESSIONS_KEY: "50",
    REUSE_KEY: "false",
    IDLE_TIMEOUT_KEY: "60",
}

#: The Retry-After value, in seconds, of a 503 for too many sessions.
#: Most requests hold a session for well under a second.
RETRY_AFTER_SECONDS = 5


def _parse_max_sessions(type_name, key, raw):
    return setting_values.positive_int(
        raw, "simplestack.hypervisor.%s.%s" % (type_name, key))


def _parse_reuse(type_name, key, raw):
    return parse_boolean({key: str(raw)}, key, type_name)


def _parse_idle_timeout(type_name, key, raw):
    return positive_seconds({key: str(raw)}, key, type_name)


#: Parsers of :data:`TYPE_DEFAULTS`, for ``settings.TYPE_PARSERS``.
TYPE_PARSERS = {
    MAX_SESSIONS_KEY: _parse_max_sessions,
    REUSE_KEY: _parse_reuse,
    IDLE_TIMEOUT_KEY: _parse_idle_timeout,
}

# Errors that the hypervisor or the service returned as a definite response.
# After one of them the session is in a known state, so it may be pooled.
# After any other error (a timeout, a lost connection, a bug) it is closed.
DEFINITE_ERRORS = (
    errors.InvalidArguments,
    errors.Unauthorized,
    errors.HostNotAllowed,
    errors.EntityNotFound,
    errors.MethodNotAllowed,
    errors.InvalidState,
    errors.Conflict,
    errors.LengthRequired,
    errors.RequestTooLarge,
    errors.FeatureNotImplemented,
)


def sessions_of(registry):
    """Return the application's :class:`SessionManager`, made on first use."""
    manager = getattr(registry, "simplestack_sessions", None)
    if manager is None:
        with _registry_lock:
            manager = getattr(registry, "simplestack_sessions", None)
            if manager is None:
                manager = SessionManager()
                registry.simplestack_sessions = manager
    return manager


_registry_lock = threading.Lock()


class _IdleAdapter(collections.namedtuple("_IdleAdapter",
                                          "adapter idle_since timeout")):
    """An open adapter in the pool, and when it was returned."""

    def expired(self, now):
        return now - self.idle_since >= self.timeout


class SessionManager:
    """Session slots per (type, host) and the pool of idle adapters."""

    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # (type, host) -> slots taken, pooled adapters included.
        self._slots = collections.Counter()
        # (type, host, credential digest) -> [_IdleAdapter], oldest first.
        self._idle = {}
        self._digest_key = secrets.token_bytes(32)
        self._reaper = None
        # Set by a return to the pool and cleared when the reaper reads the
        # pool, so the reaper notices a return during its logouts.
        self._returned = False
        self._closed = False
        self._warned_types = set()
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- checkout ------------------------------------------------------------

    def checkout(self, hypervisor_type, host, credentials):
        """Return a :class:`Lease` on an adapter for one request.

        The adapter is a pooled one, already open, or a new one that the
        caller opens with :meth:`Lease.open`. Raises ServiceUnavailable
        when the host has no free session slot.
        """
        # NOTE: the key is the URL's host and port, so "host" and
        # "host:443" count apart even where 443 is the default port.
        # Sessions that a Xen pool member redirects to its master count
        # under the member.
        host_key = (hypervisor_type.name, canonical_host(host))
        pool_key = None
        if self._reuse_enabled(hypervisor_type):
            pool_key = host_key + (self._digest(
                hypervisor_type.adapter_class.pool_credentials(
                    hypervisor_type.config, host, credentials)),)

        idle_timeout = hypervisor_type.service[IDLE_TIMEOUT_KEY]
        with self._lock:
            pooled, expired = self._take_idle(pool_key)
            to_close = expired
            if pooled is None and expired:
                # This request takes the slot of one expired adapter.
                freed = len(expired) - 1
            elif pooled is None:
                freed = 0
                limit = hypervisor_type.service[MAX_SESSIONS_KEY]
                if self._slots[host_key] < limit:
                    self._slots[host_key] += 1
                else:
                    # An idle session of other credentials gives its slot
                    # up rather than make this request fail.
                    evicted = self._take_oldest_idle(host_key)
                    if evicted is None:
                        raise _limit_error(hypervisor_type.name, host, limit)
                    to_close = [evicted]
            else:
                freed = len(expired)
        for adapter in to_close:
            logger.debug("closing an idle %s session to %s", adapter.type_name,
                         adapter.host)
            _close_quietly(adapter)
        for _ in range(freed):
            self._free_slot(host_key)

        if pooled is not None:
            lease = Lease(self, host_key, pool_key, pooled, idle_timeout,
                          reused=True)
            try:
                pooled.begin_request()
            except BaseException:
                lease.release(reusable=False)
                raise
            return lease
        try:
            adapter = hypervisor_type.adapter_class(
                hypervisor_type.name, host, credentials,
                hypervisor_type.config)
        except BaseException:
            self._free_slot(host_key)
            raise
        return Lease(self, host_key, pool_key, adapter, idle_timeout,
                     reused=False)

    def _reuse_enabled(self, hypervisor_type):
        if not hypervisor_type.service[REUSE_KEY]:
            return False
        if hypervisor_type.adapter_class.can_reuse_connections(
                hypervisor_type.config):
            return True
        if hypervisor_type.name not in self._warned_types:
            self._warned_types.add(hypervisor_type.name)
            logger.warning(
                "%s = true for hypervisor type %s, but its adapter cannot "
                "reuse connections; each request opens its own",
                REUSE_KEY, hypervisor_type.name)
        return False

    def _digest(self, credentials):
        fields = list(credentials) if credentials is not None else None
        encoded = json.dumps(fields).encode("utf-8", "surrogatepass")
        return hmac.new(self._digest_key, encoded, hashlib.sha256).hexdigest()

    def _take_idle(self, pool_key):
        """Remove the key's pooled adapters; return the most recently
        returned one that has not expired (or None) and the expired ones.
        The caller holds the lock."""
        idle = self._idle.pop(pool_key, None) if pool_key is not None \
            else None
        if not idle:
            return None, []
        now = time.monotonic()
        expired = [entry.adapter for entry in idle if entry.expired(now)]
        fresh = [entry for entry in idle if not entry.expired(now)]
        if not fresh:
            return None, expired
        taken = fresh.pop()
        if fresh:
            self._idle[pool_key] = fresh
        return taken.adapter, expired

    def _take_oldest_idle(self, host_key):
        """Remove and return the longest idle adapter of the host, keeping
        its slot taken for the caller; the caller holds the lock."""
        oldest_key, oldest = None, None
        for pool_key, idle in self._idle.items():
            if pool_key[:2] == host_key and (
                    oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest_key, oldest = pool_key, idle[0]
        if oldest is None:
            return None
        self._idle[oldest_key].pop(0)
        if not self._idle[oldest_key]:
            del self._idle[oldest_key]
        return oldest.adapter

    # -- return --------------------------------------------------------------

    def _return(self, lease, adapter, reusable, timeout):
        """Pool ``adapter`` or close it, then give the slot back if it is
        not pooled. Return the adapter's call count of this request, the
        logout included when it was closed."""
        if adapter is None:
            self._free_slot(lease.host_key)
            return 0
        if reusable and lease.pool_key is not None:
            with self._lock:
                if not self._closed:
                    # Read before another request can take the adapter.
                    calls = adapter.calls
                    self._idle.setdefault(lease.pool_key, []).append(
                        _IdleAdapter(adapter, time.monotonic(), timeout))
                    self._start_reaper()
                    self._returned = True
                    self._wake.notify()
                    return calls
        _close_quietly(adapter)
        self._free_slot(lease.host_key)
        return adapter.calls

    def _free_slot(self, host_key):
        with self._lock:
            self._slots[host_key] -= 1
            if self._slots[host_key] <= 0:
                del self._slots[host_key]

    # -- idle expiry ---------------------------------------------------------

    def _start_reaper(self):
        """Start the thread that closes expired adapters; the caller holds
        the lock."""
        if self._reaper is not None:
            return
        self._reaper = threading.Thread(
            target=_run_reaper, args=(weakref.ref(self),),
            name="simplestack-session-reaper", daemon=True)
        self._reaper.start()

    def _close_expired(self):
        """Close the adapters idle for too long; return the seconds until
        the next one expires, or None when the pool is empty."""
        now = time.monotonic()
        expired = []
        next_expiry = None
        with self._lock:
            self._returned = False
            for pool_key in list(self._idle):
                kept = []
                for entry in self._idle[pool_key]:
                    if entry.expired(now):
                        expired.append((pool_key, entry.adapter))
                    else:
                        kept.append(entry)
                        remaining = entry.idle_since + entry.timeout - now
                        if next_expiry is None or remaining < next_expiry:
                            next_expiry = remaining
                if kept:
                    self._idle[pool_key] = kept
                else:
                    del self._idle[pool_key]
        for pool_key, adapter in expired:
            logger.debug("closing a %s session to %s after its idle time",
                         pool_key[0], pool_key[1])
            _close_quietly(adapter)
            self._free_slot(pool_key[:2])
        return next_expiry

    def shutdown(self):
        """Close every pooled adapter and stop pooling, for process exit.

        Requests in progress keep their adapters and close them when they
        end.
        """
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
            self._wake.notify()
        for pool_key, entries in idle.items():
            for entry in entries:
                _close_quietly(entry.adapter)
                self._free_slot(pool_key[:2])

    # -- inspection, for tests and logs ------------------------------------

    def slots_taken(self, type_name, host):
        with self._lock:
            return self._slots[(type_name, canonical_host(host))]

    def idle_count(self):
        with self._lock:
            return sum(len(entries) for entries in self._idle.values())


@functools.lru_cache(maxsize=1024)
def canonical_host(host):
    """Return one spelling of a URL host (``host``, ``host:port`` or
    ``[v6]:port``) for all the spellings that reach the same place.

    Names are lowered, addresses take their compressed form and ports lose
    their leading zeros, so ``[0:0::1]:0443`` and ``[::1]:443`` take slots
    of one host. Results are cached because every request parses its host.
    """
    if host.startswith("["):
        address_text, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        address_text, _, port = host.partition(":")
    else:
        address_text, port = host, ""
    try:
        address = ipaddress.ip_address(address_text).compressed
    except ValueError:
        address = address_text.lower()
    if ":" in address:
        address = "[%s]" % address
    if port.isdigit():
        return "%s:%d" % (address, int(port))
    return address + (":" + port if port else "")


def _run_reaper(manager_ref):
    """Close expired adapters until the pool is closed or garbage."""
    while True:
        manager = manager_ref()
        if manager is None:
            return
        next_expiry = manager._close_expired()
        with manager._lock:
            if manager._closed:
                return
            # Woken early by a return to the pool or a closed pool. A
            # return while expired sessions were being closed came after
            # next_expiry was computed, so the pool is read again at once.
            if not manager._returned:
                manager._wake.wait(next_expiry if next_expiry is not None
                                   else 60)
        del manager


def _close_at_exit(manager_ref):
    # NOTE: atexit runs on a clean exit only: a gunicorn worker stopped by
    # SIGTERM, or pserve stopped by SIGINT. pserve ends on SIGTERM without
    # it, leaving pooled sessions open until the hypervisor expires them.
    manager = manager_ref()
    if manager is not None:
        manager.shutdown()


def _limit_error(type_name, host, limit):
    return errors.ServiceUnavailable(
        "%d %s sessions to host %s are already open in this process, the "
        "limit (simplestack.hypervisor.%s.%s); try again later"
        % (limit, type_name, host, type_name, MAX_SESSIONS_KEY),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _close_quietly(adapter):
    try:
        adapter.close()
    except Exception:  # close() must not raise; log if one still does
        logger.exception("closing the %s adapter for host %s failed",
                         adapter.type_name, adapter.host)


class Lease:
    """One request's hold on an adapter and its session slot.

    :meth:`release` pools or closes the adapter and gives the slot back;
    it runs once, whichever path calls it first.
    """

    def __init__(self, manager, host_key, pool_key, adapter, idle_timeout,
                 reused):
        self.manager = manager
        self.host_key = host_key
        self.pool_key = pool_key
        self.adapter = adapter
        self.idle_timeout = idle_timeout
        self.reused = reused
        self._released = False
        self._release_lock = threading.Lock()
        self._finalizer = None

    def open(self):
        """Open a new adapter; a pooled one is open already."""
        if not self.reused:
            self.adapter.open()

    def release(self, reusable):
        """Pool the adapter when ``reusable`` and pooling is on, else close
        it; then give the slot back unless the adapter was pooled.

        Returns the adapter's call count of this request, or None when an
        earlier release ran.
        """
        with self._release_lock:
            if self._released:
                return None
            self._released = True
        if self._finalizer is not None:
            self._finalizer.detach()
        adapter, self.adapter = self.adapter, None
        if adapter is not None and reusable:
            reusable = _adapter_reusable(adapter)
        return self.manager._return(self, adapter, reusable,
                                    self.idle_timeout)

    def detach(self):
        """Hand the adapter over to a stream, which closes it.

        The slot stays taken until :func:`release_detached` runs for the
        adapter, or the adapter is garbage collected unclosed.
        """
        adapter, self.adapter = self.adapter, None
        key = id(adapter)
        with _detached_lock:
            _detached[key] = self
        self._finalizer = weakref.finalize(adapter, _release_lost, key)
        return adapter


def _adapter_reusable(adapter):
    try:
        return bool(adapter.connection_reusable())
    except Exception:
        logger.exception("checking whether the %s adapter for host %s can "
                         "be reused failed", adapter.type_name, adapter.host)
        return False


# Leases of adapters handed to streams, by id() of the adapter. An entry
# leaves when the stream closes the adapter. It also leaves when a stream
# that was never closed lets the adapter be garbage collected. Both free
# the slot.
_detached = {}
_detached_lock = threading.Lock()


def release_detached(adapter):
    """Give back the slot of an adapter that a stream has closed."""
    with _detached_lock:
        lease = _detached.pop(id(adapter), None)
    if lease is not None:
        lease.release(reusable=False)


def _release_lost(key):
    with _detached_lock:
        lease = _detached.pop(key, None)
    if lease is not None:
        logger.warning("an image stream's %s session to %s was never "
                       "closed; its slot is given back", *lease.host_key)
        lease.release(reusable=False)
