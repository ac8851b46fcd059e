"""Calls into the libvirt binding and the translation of libvirt errors.

The error code sets classify a libvirtError by its code, never by its
message. Importing this module also silences libvirt's own printing of
errors to stderr.
"""

import libvirt
import libvirtmod

from simplestack import errors
from simplestack.adapters.libvirt import description_cache
from simplestack.adapters.libvirt.constants import DRIVER_GAPS

# libvirt error code -> simplestack error class. Codes missing here become
# HypervisorError, except the ones classified in _translate_error.
NOT_FOUND_CODES = frozenset((
    libvirt.VIR_ERR_NO_DOMAIN,
    libvirt.VIR_ERR_NO_STORAGE_POOL,
    libvirt.VIR_ERR_NO_STORAGE_VOL,
    libvirt.VIR_ERR_NO_NETWORK,
    libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT,
))
# An object of that name already exists. libvirt reports some duplicates
# with VIR_ERR_OPERATION_FAILED instead, such as a domain defined with a
# name another domain has. The operations that can meet one look the name
# up again after the failure (see GuestsMixin._define_new_domain).
EXISTS_CODES = frozenset((
    libvirt.VIR_ERR_DOM_EXIST,
    libvirt.VIR_ERR_NETWORK_EXIST,
    libvirt.VIR_ERR_NETWORK_PORT_EXIST,
    libvirt.VIR_ERR_STORAGE_VOL_EXIST,
))
UNSUPPORTED_CODES = frozenset((
    libvirt.VIR_ERR_NO_SUPPORT,
    libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
))
AUTH_CODES = frozenset((
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_AUTH_CANCELLED,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE,
))
TIMEOUT_CODES = frozenset((
    libvirt.VIR_ERR_OPERATION_TIMEOUT,
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
))
# Raised by a connection that could not be made or was lost.
CONNECTION_CODES = frozenset((
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_NO_CONNECT,
))
# Raised by virConnectOpen when this libvirt build has no driver for the
# URI: NO_CONNECT for an unknown scheme, CONFIG_UNSUPPORTED for a known
# driver left out at build time (hyperv on Debian 12).
MISSING_DRIVER_CODES = frozenset((
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED,
))

# Binding methods that change no domain definition and no volume size, so
# they keep the cached definitions (see description_cache). Every other
# call on a domain, snapshot, connection, pool or volume drops entries.
# The stream methods are here because they run once per chunk of an image
# transfer; the volume's upload call that starts a stream drops entries.
READ_ONLY_METHODS = frozenset((
    "abort", "blockInfo", "DHCPLeases", "domainListGetStats", "download",
    "finish", "getAllDomainStats", "getCapabilities", "getFreeMemory",
    "getHostname", "getInfo", "getLibVersion", "getMaxVcpus", "getName",
    "getParent", "getType", "getVersion", "getXMLDesc",
    "hasCurrentSnapshot", "hasMetadata", "ID", "info", "infoFlags",
    "isActive", "isAlive", "isCurrent", "isPersistent", "listAllChildren",
    "listAllDomains", "listAllNetworks", "listAllSnapshots",
    "listAllStoragePools", "listAllVolumes", "listVolumes", "lookupByName",
    "lookupByUUIDString", "metadata", "name", "networkLookupByName",
    "networkLookupByUUIDString", "newStream", "OSType", "path",
    "receive_chunk", "recv", "send", "setKeepAlive", "snapshotCurrent",
    "snapshotLookupByName", "state", "storagePoolLookupByName",
    "storagePoolLookupByUUIDString", "storagePoolLookupByVolume",
    "storageVolLookupByKey",
    "storageVolLookupByName", "storageVolLookupByPath", "UUIDString",
    "XMLDesc",
))

ERROR_CODE_NAMES = {
    value: name for name, value in vars(libvirt).items()
    if name.startswith("VIR_ERR_") and isinstance(value, int)
    and name not in ("VIR_ERR_NONE", "VIR_ERR_WARNING", "VIR_ERR_ERROR")
}


def _discard_libvirt_error(context, error):
    """Drop libvirt's report: the adapter raises it as an exception."""


# Without a handler, libvirt prints every error to stderr as well.
libvirt.registerErrorHandler(_discard_libvirt_error, None)


class CallsMixin:
    """Methods of LibvirtAdapter that call the binding and translate errors.

    ``_translate_error`` uses ``_state`` from LookupsMixin to name the
    guest's state in an InvalidState message.
    """

    def _call(self, function, *args, domain=None):
        """Call the binding, count the call and translate its errors.

        ``domain`` is the virDomain the call acts on, so that an
        operation-invalid error can name the guest's current state.
        Without it, that error is a Conflict with the pool, volume or
        network the call acts on.
        """
        self.calls += 1
        result = None
        try:
            result = function(*args)
            return result
        except libvirt.libvirtError as error:
            raise self._translate_error(error, domain) from error
        finally:
            if getattr(function, "__name__", None) not in READ_ONLY_METHODS:
                self._invalidate_descriptions(function, result)

    def _invalidate_descriptions(self, function, result):
        """Drop the cached definitions that a call to ``function`` may have
        changed, whether or not it succeeded."""
        owner = getattr(function, "__self__", None)
        uri = self._description_cache_uri()
        cache = description_cache.descriptions
        if isinstance(owner, libvirt.virDomain):
            cache.invalidate(uri, owner.UUID())
        elif isinstance(owner, libvirt.virDomainSnapshot):
            cache.invalidate(uri, owner.getDomain().UUID())
        elif isinstance(owner, libvirt.virConnect) and isinstance(
                result, libvirt.virDomain):
            cache.invalidate(uri, result.UUID())
        elif isinstance(owner, libvirt.virNetwork) or (
                isinstance(owner, libvirt.virConnect)
                and function.__name__.startswith("network")):
            # A network started, stopped, defined or removed here shows in
            # the next list of every service process.
            cache.discard_active_networks(uri)
        elif isinstance(owner, (libvirt.virConnect, libvirt.virStoragePool,
                                libvirt.virStorageVol)):
            # The disk sizes of the cached entries come from pools and volumes.
            cache.invalidate(uri)
        # Streams change no domain definition.

    def _description_cache_uri(self):
        """Return the key of this adapter's hypervisor in the caches."""
        uri = getattr(self, "_cache_uri", None)
        if uri is None:
            uri = self._cache_uri = self._uri()[0]
        return uri

    def _translate_error(self, error, domain=None):
        code = error.get_error_code()
        message = error.get_error_message() or "unknown libvirt error"
        if code in NOT_FOUND_CODES:
            return errors.EntityNotFound(message, original=error)
        if code in EXISTS_CODES:
            return errors.Conflict(
                "%s rejected a duplicate: %s" % (self.hypervisor_name,
                                                 message), original=error)

        if code == libvirt.VIR_ERR_OPERATION_INVALID and domain is not None:
            state = self._state_for_message(domain)
            return errors.InvalidState(
                "%s rejected the operation while the guest is %s: %s"
                % (self.hypervisor_name, state, message), original=error)
        if code == libvirt.VIR_ERR_OPERATION_INVALID:
            # A call on a pool, volume or network: the state of that
            # object, not of a guest, forbids the operation.
            return errors.Conflict(
                "%s rejected the operation in the current state of the "
                "storage or network: %s" % (self.hypervisor_name, message),
                original=error)

        if code in UNSUPPORTED_CODES:
            return errors.FeatureNotImplemented(
                "%s cannot do this: %s" % (self.hypervisor_name, message),
                original=error)
        if code in AUTH_CODES:
            return errors.HypervisorAuthenticationFailed(
                "%s rejected the credentials" % self.hypervisor_name,
                original=error)
        if code in TIMEOUT_CODES:
            return errors.HypervisorTimeout(
                "%s timed out: %s" % (self.hypervisor_name, message),
                original=error)
        if code in CONNECTION_CODES or (
                code == libvirt.VIR_ERR_SYSTEM_ERROR
                and error.get_error_domain() == libvirt.VIR_FROM_RPC):
            return errors.HypervisorUnreachable(
                "the connection to %s at %s failed: %s"
                % (self.hypervisor_name, self.host, message), original=error)
        params = [value for value in (error.get_str1(), error.get_str2(),
                                      error.get_str3(), error.get_int1(),
                                      error.get_int2())
                  if value not in (None, -1, "")]
        return errors.HypervisorError(
            "%s failed: %s" % (self.hypervisor_name, message),
            code=ERROR_CODE_NAMES.get(code, code), params=params,
            original=error)

    def _state_for_message(self, domain):
        if domain is None:
            return "in a state that forbids it"
        try:
            return self._state(domain)
        except errors.SimplestackError:
            return "UNKNOWN"

    def _require(self, feature, operation):
        """Raise FeatureNotImplemented when the driver lacks ``feature``."""
        reason = DRIVER_GAPS[self.driver].get(feature)
        if reason:
            raise self.not_implemented(operation, reason)


# -- domain listings without virDomain objects --------------------------------

class DomainHandleListings:
    """Domain listings of a virConnect that return raw domain handles.

    libvirt-python 12.8.0 wraps every listed domain in a virDomain. Making
    that object, calling its UUID and ID methods and its ``__del__`` took
    about 0.8 ms of CPU time in a 7 ms ``GET /guests`` of 1000 domains on
    the test driver (bench/list_latency.py's seed, 2 cores), which these
    listings skip. The handles are the binding's capsules of virDomainPtr,
    each holding one reference. The caller owns each handle it receives,
    so it passes the handle once to ``free_domain_handle``, or to
    ``wrap_domain_handle``, whose virDomain then frees it.

    The methods have virConnect's names and arguments, so ``_call`` counts
    them and keeps the cached definitions as it does for the binding's
    methods.
    """
    # NOTE: libvirtmod is the binding's internal C module, whose functions
    # and handle ownership may change between versions. Check them against
    # libvirt.py when the libvirt-python pin in setup.py changes.

    def __init__(self, connection):
        # The binding keeps its virConnectPtr capsule in the private
        # attribute _o and passes it to libvirtmod, as done here.
        self._connection_handle = connection._o

    def getAllDomainStats(self, stats=0, flags=0):
        """Return [(domain handle, stats dict)], as virConnect's method
        returns [(virDomain, stats dict)]."""
        listing = libvirtmod.virConnectGetAllDomainStats(
            self._connection_handle, stats, flags)
        if listing is None:
            # The binding returns None after a failure and leaves libvirt's
            # error of this thread, which libvirtError reads.
            raise libvirt.libvirtError("virConnectGetAllDomainStats() failed")
        return listing

    def listAllDomains(self, flags=0):
        """Return [domain handle], as virConnect's method returns
        [virDomain]."""
        handles = libvirtmod.virConnectListAllDomains(
            self._connection_handle, flags)
        if handles is None:
            raise libvirt.libvirtError("virConnectListAllDomains() failed")
        return handles


# Readers of a domain handle. Like virDomain's UUID, ID and name methods,
# they read the handle and make no round trip to libvirtd. On the test
# driver the name reader took about 0.14 us a call, the UUID and ID
# readers about 0.54 us (timeit over 1000 handles).
domain_handle_uuid = libvirtmod.virDomainGetUUID
domain_handle_id = libvirtmod.virDomainGetID
domain_handle_name = libvirtmod.virDomainGetName
free_domain_handle = libvirtmod.virDomainFree


def free_domain_handles(handles):
    for handle in handles:
        free_domain_handle(handle)


def wrap_domain_handle(connection, handle):
    """Return a virDomain of ``connection`` that owns ``handle``."""
    return libvirt.virDomain(connection, _obj=handle)
