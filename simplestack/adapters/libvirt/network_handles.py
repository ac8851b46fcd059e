"""Network handles made from a network's name and UUID, without a call to
libvirtd.

A guest list reads DHCP leases through a handle of each network its guests
use, and getting handles costs a ``listAllNetworks`` call. The remote
protocol identifies a network by its name and UUID only, and libvirtd looks
it up by that UUID on every call. So a handle made on the client side from
a name and a UUID that a recent listing returned works as a listed one
does. A call through it fails with VIR_ERR_NO_NETWORK once that network is
gone, or was created again under its name with a new UUID.

libvirt's public API has no such constructor. Its library exports the one
its remote driver uses, ``virGetNetwork``, among its private symbols
(LIBVIRT_PRIVATE_9.0.0 on Debian 12). Where it or ctypes is missing,
``network_handle`` returns None and the caller lists the networks.
"""

import ctypes
import logging

import libvirt

logger = logging.getLogger(__name__)

# NOTE: virGetNetwork(conn, name, uuid) is private to libvirt, so any
# release may change it. The capsule name below is the one libvirt-python
# 12.8.0's C module checks for a virNetworkPtr. Check both when libvirt or
# the libvirt-python pin in setup.py changes.
_CAPSULE_NAME = ctypes.create_string_buffer(b"virNetworkPtr")


def _load_functions():
    """Return (virGetNetwork, capsule pointer, new capsule), or None."""
    try:
        # The library the binding's own module has already loaded.
        library = ctypes.CDLL("libvirt.so.0")
        get_network = library.virGetNetwork
        capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        new_capsule = ctypes.pythonapi.PyCapsule_New
    except (OSError, AttributeError) as error:
        logger.info("guest lists get network handles by listing the "
                    "networks: %s", error)
        return None
    get_network.argtypes = (ctypes.c_void_p, ctypes.c_char_p,
                            ctypes.c_char_p)
    get_network.restype = ctypes.c_void_p
    capsule_pointer.argtypes = (ctypes.py_object, ctypes.c_char_p)
    capsule_pointer.restype = ctypes.c_void_p
    new_capsule.argtypes = (ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p)
    new_capsule.restype = ctypes.py_object
    return get_network, capsule_pointer, new_capsule


_FUNCTIONS = _load_functions()


def network_handle(connection, name, uuid):
    """Return a virNetwork of ``connection`` for the network ``name`` whose
    raw 16-byte UUID is ``uuid``, made without a round trip, or None where
    libvirt's constructor cannot be reached."""
    if _FUNCTIONS is None or len(uuid) != 16:
        return None
    get_network, capsule_pointer, new_capsule = _FUNCTIONS
    connection_pointer = capsule_pointer(connection._o, b"virConnectPtr")
    # A new reference, which the virNetwork's __del__ gives back through
    # virNetworkFree. libvirt copies the name and the UUID.
    pointer = get_network(connection_pointer, name.encode(), uuid)
    if not pointer:
        return None
    # No destructor: the binding frees its network capsules itself.
    capsule = new_capsule(pointer, ctypes.addressof(_CAPSULE_NAME), None)
    return libvirt.virNetwork(connection, _obj=capsule)
