"""Compare image export and import through the service with direct libvirt
streams.

Run: .venv/bin/python bench/streams.py [--rounds 2] [--size-mib 1024]

Needs the libvirt daemon of scripts/libvirtd (qemu:///system, as root).
The script creates a directory storage pool ``sstest-bench-pool-*`` in the
test image folder, fills a raw volume of ``--size-mib`` MiB through a
direct upload stream and defines a stopped QEMU guest on it. Each round
then times, in turn:

- direct export: ``virStorageVolDownload`` of the volume, received in
  1 MiB requests and discarded;
- export through the service: ``GET /qemu/localhost/guests/{id}/export``,
  read in 1 MiB blocks and discarded;
- direct import: ``virStorageVolUpload`` of the same bytes into a new
  volume;
- import through the service: ``POST /qemu/localhost/guests`` with the
  bytes as an ``application/octet-stream`` body, then ``DELETE`` of the
  new guest.

The service runs under pserve with production.ini's [server:main]
(gunicorn, gthread workers) on a free loopback port. While a transfer
through the service runs, a thread samples the resident set size (VmRSS)
of every gunicorn worker every 10 ms. The growth is the largest rise over
the worker's size just before the transfer. The script prints throughputs,
the ratios service/direct (target: at least 0.9) and the RSS growth
(target: at most 32 MB), then removes the guests, volumes and pool it made
and stops the service by its pid.
"""

import argparse
import contextlib
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time

import backends
import libvirt
from throughput import TOKEN, TOKEN_HEADER, Server

from tests.backends import unique_name
from tests.libvirt_fixtures import temporary_pool

MIB = 1024 ** 2
BLOCK = MIB
TARGET_RATIO = 0.9
TARGET_RSS_GROWTH_MB = 32
SAMPLE_SECONDS = 0.01


def pattern_block():
    """Return 1 MiB of random bytes, repeated to make the image, so that
    neither side can skip zeros."""
    return os.urandom(BLOCK)


def direct_upload(connection, volume, block, size):
    stream = connection.newStream(0)
    volume.upload(stream, 0, size, 0)
    sent = 0
    while sent < size:
        data = block[:min(BLOCK, size - sent)]
        offset = 0
        while offset < len(data):
            offset += stream.send(data[offset:] if offset else data)
        sent += len(data)
    stream.finish()


def direct_download(connection, volume):
    stream = connection.newStream(0)
    volume.download(stream, 0, 0, 0)
    received = 0
    while True:
        data = stream.recv(BLOCK)
        if not data:
            break
        received += len(data)
    stream.finish()
    return received


def worker_pids(master_pid):
    """Return the pids of the gunicorn workers of ``master_pid``."""
    path = "/proc/%d/task/%d/children" % (master_pid, master_pid)
    with open(path) as children:
        return [int(pid) for pid in children.read().split()]


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Sample the RSS of processes in a thread. ``growth`` is the largest
    rise of one process over its size when the sampler started."""

    def __init__(self, pids):
        self.baseline = {pid: rss_bytes(pid) for pid in pids}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(SAMPLE_SECONDS):
            for pid in self.peak:
                self.peak[pid] = max(self.peak[pid], rss_bytes(pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    @property
    def growth(self):
        return max(self.peak[pid] - self.baseline[pid] for pid in self.peak)


class Service:
    """HTTP requests to the service's qemu host ``localhost``."""

    def __init__(self, server):
        self.server = server
        self.prefix = "/qemu/localhost"

    def _connection(self):
        return http.client.HTTPConnection("127.0.0.1", self.server.port,
                                          timeout=600)

    def export(self, guest_id):
        connection = self._connection()
        try:
            connection.request("GET", "%s/guests/%s/export" % (
                self.prefix, guest_id), headers={TOKEN_HEADER: TOKEN})
            response = connection.getresponse()
            if response.status != 200:
                raise RuntimeError("export failed: %d %s" % (
                    response.status, response.read()[:500]))
            buffer = bytearray(BLOCK)
            received = 0
            while True:
                count = response.readinto(buffer)
                if not count:
                    break
                received += count
            return received
        finally:
            connection.close()

    def import_image(self, name, block, size):
        def body():
            sent = 0
            while sent < size:
                data = block[:min(BLOCK, size - sent)]
                sent += len(data)
                yield data

        connection = self._connection()
        try:
            connection.request(
                "POST", "%s/guests?name=%s" % (self.prefix, name), body=body(),
                headers={TOKEN_HEADER: TOKEN, "Content-Length": str(size),
                         "Content-Type": "application/octet-stream"})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 201:
                raise RuntimeError("import failed: %d %s" % (
                    response.status, answer[:500]))
            return json.loads(answer)["id"]
        finally:
            connection.close()

    def delete(self, guest_id):
        connection = self._connection()
        try:
            connection.request("DELETE", "%s/guests/%s" % (
                self.prefix, guest_id), headers={TOKEN_HEADER: TOKEN})
            response = connection.getresponse()
            response.read()
            if response.status != 204:
                raise RuntimeError("delete of guest %s failed: %d"
                                   % (guest_id, response.status))
        finally:
            connection.close()


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def raw_volume(pool, name, size):
    return pool.createXML(
        "<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"
        "<allocation>0</allocation><target><format type='raw'/></target>"
        "</volume>" % (name, size), 0)


def guest_xml(name, path):
    return (
        "<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>"
        "<os><type>hvm</type></os><devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        "<source file='%s'/><target dev='sda' bus='scsi'/></disk>"
        "</devices></domain>" % (name, path))


def write_service_ini(folder, pool_name):
    path = os.path.join(folder, "service.ini")
    with open(path, "w") as ini:
        ini.write(backends.production_ini({
            "simplestack.hypervisor.qemu.allowed_hosts": "localhost",
            "simplestack.hypervisor.qemu.storage_pool": pool_name,
            "simplestack.hypervisor.qemu.network": "",
        }))
    return path


def rate(size, seconds):
    return size / seconds / MIB


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2,
                        help="transfers of each kind (default: 2)")
    parser.add_argument("--size-mib", type=int, default=1024,
                        help="image size in MiB (default: 1024)")
    options = parser.parse_args()
    size = options.size_mib * MIB
    block = pattern_block()
    times = {kind: [] for kind in ("direct export", "service export",
                                   "direct import", "service import")}
    growth = {"service export": [], "service import": []}

    connection = libvirt.open("qemu:///system")
    with temporary_pool(connection, "bench-pool") as pool, \
            tempfile.TemporaryDirectory(prefix="bench-streams-") as folder:
        source = raw_volume(pool, "source.img", size)
        direct_upload(connection, source, block, size)
        domain = connection.defineXML(guest_xml(unique_name("bench-export"),
                                                source.path()))
        server = Server(write_service_ini(folder, pool.name()),
                        "/qemu/localhost/guests?limit=1")
        try:
            server.wait_until_ready()
            service = Service(server)
            workers = worker_pids(server.process.pid)
            for number in range(options.rounds):
                seconds, received = timed(direct_download, connection, source)
                assert received == size, received
                times["direct export"].append(seconds)

                with RssSampler(workers) as sampler:
                    seconds, received = timed(service.export,
                                              domain.UUIDString())
                assert received == size, received
                times["service export"].append(seconds)
                growth["service export"].append(sampler.growth)

                target = raw_volume(pool, "direct-%d.img" % number, size)
                seconds, _ = timed(direct_upload, connection, target, block,
                                   size)
                times["direct import"].append(seconds)
                target.delete(0)

                with RssSampler(workers) as sampler:
                    seconds, guest_id = timed(
                        service.import_image,
                        unique_name("bench-import"), block, size)
                times["service import"].append(seconds)
                growth["service import"].append(sampler.growth)
                service.delete(guest_id)
                print("round %d: %s" % (number + 1, ", ".join(
                    "%s %.0f MiB/s" % (kind, rate(size, values[-1]))
                    for kind, values in times.items())), file=sys.stderr)
        finally:
            server.stop()
            with contextlib.suppress(libvirt.libvirtError):
                domain.undefine()
    connection.close()

    print("Image streams of %d MiB on qemu:///system, median of %d "
          "rounds; targets: ratio >= %.1f, RSS growth <= %d MB"
          % (options.size_mib, options.rounds, TARGET_RATIO,
             TARGET_RSS_GROWTH_MB))
    for kind in ("export", "import"):
        direct = rate(size, statistics.median(times["direct " + kind]))
        through = rate(size, statistics.median(times["service " + kind]))
        peak = max(growth["service " + kind]) / 1e6
        ratio = through / direct
        print("%s: service %.0f MiB/s, direct %.0f MiB/s, ratio %.2f (%s); "
              "worker RSS growth %.1f MB (%s)" % (
                  kind, through, direct, ratio,
                  "met" if ratio >= TARGET_RATIO else "missed", peak,
                  "met" if peak <= TARGET_RSS_GROWTH_MB else "missed"))


if __name__ == "__main__":
    main()
