"""A libvirt export whose volume changes length while it streams, against
production.ini's gunicorn.

The response's Content-Length is the volume's length when the export
starts. A volume cut shorter outside the service ended the stream early,
and the worker logged the export as a 200 with no warning. A volume that
grew gave more bytes than that length, and gunicorn dropped the rest
without a word, so the client got a whole-looking image that was not the
volume. Now both end the response early, so that the client sees a short
body, and the worker logs a warning with the request id.
"""

import http.client
import os

import libvirt
import pytest

from tests import backends
from tests.attacks import stack
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    qemu_connection, qemu_pool, requires_qemu)
from tests.libvirt_fixtures import remove_domain

pytestmark = requires_qemu

MIB = 1024 * 1024
#: Far more than the reading thread's queue and the socket buffers, so the
#: export still reads the volume when the test changes it.
VOLUME_BYTES = 64 * MIB


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    with stack.small_production_server(
            tmp_path_factory.mktemp("length"),
            {"simplestack.hypervisor.qemu.allowed_hosts": "localhost"}) as \
            running:
        yield running


def define_disk_guest(connection, path, label):
    """Define a QEMU guest whose one disk is the raw image at ``path``."""
    return connection.defineXML(
        "<domain type='qemu'><name>%s</name>"
        "<memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        "<source file='%s'/><target dev='vda' bus='virtio'/></disk>"
        "</devices></domain>" % (backends.unique_name(label), path))


@pytest.fixture
def exported_guest(qemu_connection, qemu_pool):  # noqa: F811
    """Yield (domain, volume path) of a stopped guest whose one raw disk
    contains VOLUME_BYTES random bytes."""
    volume = qemu_pool.createXML(
        "<volume><name>%s.img</name><capacity unit='bytes'>%d</capacity>"
        "<target><format type='raw'/></target></volume>"
        % (backends.unique_name("r9-length"), VOLUME_BYTES), 0)
    stream = qemu_connection.newStream(0)
    volume.upload(stream, 0, VOLUME_BYTES, 0)
    for _ in range(VOLUME_BYTES // MIB):
        stream.send(os.urandom(MIB))
    stream.finish()
    domain = define_disk_guest(qemu_connection, volume.path(), "r9-length")
    try:
        yield domain, volume.path()
    finally:
        remove_domain(domain)
        try:
            volume.delete(0)
        except libvirt.libvirtError:
            pass


def export_after_change(production, domain, request_id, change):
    """Start the guest's export, read its first MiB, call ``change``, and
    read the rest; return (Content-Length, bytes received)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", production.port, timeout=stack.CLIENT_TIMEOUT)
    try:
        connection.request(
            "GET", "/qemu/localhost/guests/%s/export" % domain.UUIDString(),
            headers={stack.TOKEN_HEADER: stack.canary_token("root"),
                     "X-Request-ID": request_id})
        response = connection.getresponse()
        assert response.status == 200
        received = len(response.read(MIB))
        change()
        while True:
            # read(amt) returns b"" at the end of the body, and also when
            # the server closes the connection before it.
            data = response.read(MIB)
            if not data:
                break
            received += len(data)
        return int(response.getheader("Content-Length")), received
    finally:
        connection.close()


def warnings_of(production, request_id):
    return [entry for entry in production.log_entries()
            if entry.get("request_id") == request_id
            and entry["level"] in ("WARNING", "ERROR")]


@pytest.mark.parametrize("new_length", [VOLUME_BYTES // 2,
                                        VOLUME_BYTES + 8 * MIB])
def test_export_of_changed_volume_fails(production, exported_guest,
                                        new_length):
    domain, path = exported_guest
    request_id = "round9-length-%d" % new_length

    length, received = export_after_change(
        production, domain, request_id,
        lambda: os.truncate(path, new_length))

    assert length == VOLUME_BYTES
    assert received < VOLUME_BYTES
    assert stack.wait_for(
        lambda: bool(warnings_of(production, request_id)), True)
    entries = warnings_of(production, request_id)
    messages = [entry["message"] for entry in entries]
    assert any("%d bytes" % VOLUME_BYTES in message
               for message in messages), messages
    # A warning without a traceback: the image changed, nothing failed.
    assert [entry for entry in entries if "exception" in entry] == []
    assert not stack.leaks_canary(production.read_log())
