"""The libvirt export's chunk reader, on volumes of the real libvirtd.

Both ways of reading are tested: libvirt's C API through ctypes, and the
binding's recv. Each must return the volume's bytes in chunks of the
requested size, a shorter last one, then b"". Each must raise libvirtError
for a stream that libvirt ends with an error. Runs when SIMPLESTACK_TEST_BACKENDS lists qemu
(``scripts/test`` does).
"""

import hashlib
import os

import libvirt
import pytest

from simplestack.adapters.libvirt import stream_reader
from tests import backends
from tests.libvirt_fixtures import open_connection, temporary_pool

pytestmark = pytest.mark.skipif(
    "qemu" not in backends.required_backends(),
    reason="SIMPLESTACK_TEST_BACKENDS does not list qemu")

CHUNK = 1024 * 1024
#: Three whole chunks and a part, not a multiple of libvirt's messages.
VOLUME_SIZE = 3 * CHUNK + 300001

RECEIVERS = {"c_api": True, "binding": False}


@pytest.fixture(scope="module")
def volume():
    connection = open_connection("qemu")
    try:
        with temporary_pool(connection, "reader") as pool:
            volume = pool.createXML(
                "<volume><name>source.img</name><capacity unit='bytes'>%d"
                "</capacity><target><format type='raw'/></target></volume>"
                % VOLUME_SIZE, 0)
            data = os.urandom(VOLUME_SIZE)
            stream = connection.newStream(0)
            volume.upload(stream, 0, VOLUME_SIZE, 0)
            stream.send(data)
            stream.finish()
            yield connection, volume, data
    finally:
        connection.close()


def download(connection, volume, offset=0, length=0):
    stream = connection.newStream(0)
    volume.download(stream, offset, length, 0)
    return stream


def test_reader_finds_c_api():
    # The service's fast path. Without it, the other tests would compare
    # the fallback with itself.
    assert stream_reader._FUNCTIONS is not None


@pytest.mark.parametrize("receiver", sorted(RECEIVERS))
def test_reader_chunks_in_order(volume, receiver):
    connection, source, data = volume
    stream = download(connection, source)
    receive_chunk = stream_reader.chunk_receiver(
        stream, use_c_api=RECEIVERS[receiver])
    chunks = []
    while True:
        chunk = receive_chunk(CHUNK)
        assert type(chunk) is bytes
        if not chunk:
            break
        chunks.append(chunk)
    stream.finish()
    assert [len(chunk) for chunk in chunks] == [CHUNK] * 3 + [300001]
    assert hashlib.sha256(b"".join(chunks)).digest() == (
        hashlib.sha256(data).digest())
    # A chunk handed out stays as it was while later ones are read.
    assert chunks[0] == data[:CHUNK]


@pytest.mark.parametrize("receiver", sorted(RECEIVERS))
def test_reader_sizes_below_message(volume, receiver):
    connection, source, data = volume
    stream = download(connection, source, offset=5, length=100000)
    receive_chunk = stream_reader.chunk_receiver(
        stream, use_c_api=RECEIVERS[receiver])
    received = [receive_chunk(7), receive_chunk(40000), receive_chunk(CHUNK),
                receive_chunk(CHUNK)]
    stream.finish()
    assert [len(part) for part in received] == [7, 40000, 59993, 0]
    assert b"".join(received) == data[5:100005]


@pytest.mark.parametrize("receiver", sorted(RECEIVERS))
def test_reader_aborted_stream_raises(volume, receiver):
    connection, source, _ = volume
    stream = download(connection, source)
    receive_chunk = stream_reader.chunk_receiver(
        stream, use_c_api=RECEIVERS[receiver])
    assert len(receive_chunk(1000)) == 1000
    stream.abort()
    with pytest.raises(libvirt.libvirtError) as caught:
        receive_chunk(CHUNK)
    # The error is libvirt's own for this thread, not an empty one.
    assert caught.value.get_error_code() not in (None, 0)
    assert caught.value.get_error_message()
