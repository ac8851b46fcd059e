"""Reading a libvirt stream in chunks of a fixed size with fewer copies.

The binding's ``virStream.recv`` returns one stream message per call
(262120 or 24 bytes from libvirtd 9.0's volume downloads). For each call it
allocates a buffer of the requested size, lets libvirt copy the message
into it, and copies that buffer once more into a new bytes object. An
export then joins the messages into chunks of 1 MiB, a third copy.

``chunk_receiver`` calls libvirt's C function ``virStreamRecv`` through
ctypes instead, into a bytes object that is not yet shared with any other
code, until the chunk is full or the stream ends. libvirt's own copy is
then the only one in the process. Where the library or the C API is not
found, it falls back to the binding's ``recv`` and a join.
"""

import ctypes
import logging

import libvirt

logger = logging.getLogger(__name__)

#: The size the fallback requests from the binding on each call: one
#: stream message at most, as libvirt sends them.
MESSAGE_SIZE = 256 * 1024


def _load_functions():
    """Return (virStreamRecv, capsule pointer, new bytes, bytes buffer),
    the C functions ``chunk_receiver`` needs, or None."""
    try:
        # The soname the binding's own module was linked with, so dlopen
        # returns the library the process has already loaded.
        library = ctypes.CDLL("libvirt.so.0")
        stream_recv = library.virStreamRecv
        python = ctypes.pythonapi
        capsule_pointer = python.PyCapsule_GetPointer
        new_bytes = python.PyBytes_FromStringAndSize
        bytes_buffer = python.PyBytes_AsString
    except (OSError, AttributeError) as error:
        logger.info("reading libvirt streams through the binding's recv: "
                    "%s", error)
        return None
    # CDLL functions release the GIL while they run, and pythonapi's keep it.
    stream_recv.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    stream_recv.restype = ctypes.c_int
    capsule_pointer.argtypes = (ctypes.py_object, ctypes.c_char_p)
    capsule_pointer.restype = ctypes.c_void_p
    new_bytes.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
    new_bytes.restype = ctypes.py_object
    bytes_buffer.argtypes = (ctypes.py_object,)
    bytes_buffer.restype = ctypes.c_void_p
    return stream_recv, capsule_pointer, new_bytes, bytes_buffer


_FUNCTIONS = _load_functions()


def chunk_receiver(stream, use_c_api=True):
    """Return ``receive_chunk(size)`` for ``stream``, a blocking
    virStream: it reads until ``size`` bytes or the end of the stream and
    returns them, b"" at the end, or raises libvirt.libvirtError.

    ``use_c_api=False`` picks the binding's ``recv``, as on a process where
    ctypes cannot reach libvirt's C API.
    """
    if use_c_api and _FUNCTIONS is not None:
        return _c_receiver(stream, *_FUNCTIONS)
    return _binding_receiver(stream)


def _c_receiver(stream, stream_recv, capsule_pointer, new_bytes,
                bytes_buffer):
    # NOTE: relies on libvirt-python keeping the virStreamPtr in a capsule
    # named "virStreamPtr" as the object's ``_o`` (libvirt-python 12.8.0).
    handle = capsule_pointer(stream._o, b"virStreamPtr")

    def receive_chunk(size):
        # A new bytes object that only this function holds: CPython's C
        # API lets its creator fill it before it is shared.
        chunk = new_bytes(None, size)
        address = bytes_buffer(chunk)
        received = 0
        while received < size:
            # ``stream`` stays referenced by this closure, so the handle
            # stays valid for the call.
            count = stream_recv(handle, address + received, size - received)
            if count < 0:
                # libvirt's last error is per thread, and the binding's
                # exception reads it from this thread.
                raise libvirt.libvirtError("virStreamRecv() failed")
            if count == 0:
                break
            received += count
        if received == size:
            return chunk
        return chunk[:received]

    return receive_chunk


def _binding_receiver(stream):
    def receive_chunk(size):
        pending = []
        received = 0
        while received < size:
            data = stream.recv(min(MESSAGE_SIZE, size - received))
            if not data:
                break
            pending.append(data)
            received += len(data)
        return b"".join(pending)

    return receive_chunk
