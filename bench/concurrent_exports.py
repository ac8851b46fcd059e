"""Measure the resident size of the service's workers over bursts of
concurrent libvirt exports.

Run: .venv/bin/python bench/concurrent_exports.py [--exports 20]
     [--rounds 8] [--size-mib 16]

Needs the daemon of scripts/libvirtd (qemu:///system, as root). The script
creates a directory pool ``sstest-bench-pool-*`` with one raw volume of
random data per export and a stopped QEMU guest on each. It starts the
service under gunicorn with production.ini's workers and threads, and
``max_concurrent_streams`` raised to the number of exports. Each round
exports every guest at once, one client thread per guest, and then prints
the resident size of each worker. The script removes the guests and the
pool and stops the service by its pid. See bench/README.md.
"""

import argparse
import concurrent.futures
import contextlib
import tempfile
import time

# streams imports backends, which puts the checkout on sys.path for tests.
import libvirt
from streams import (
    MIB, Service, direct_upload, expect_size, guest_xml, pattern_block,
    raw_volume, rss_bytes, write_service_ini)
from throughput import Server

from tests.backends import unique_name
from tests.libvirt_fixtures import temporary_pool

#: Seconds between the end of a round and the reading of the workers'
#: resident sizes, for the streams to close.
SETTLE_SECONDS = 0.5


def megabytes(size):
    return "%.1f" % (size / 1e6)


def run(exports, rounds, size):
    connection = libvirt.open("qemu:///system")
    domains = []
    try:
        with temporary_pool(connection, "bench-pool") as pool, \
                tempfile.TemporaryDirectory(prefix="bench-exports-") as folder:
            block = pattern_block()
            for index in range(exports):
                volume = raw_volume(pool, "source-%d.img" % index, size)
                direct_upload(connection, volume, block, size)
                domains.append(connection.defineXML(guest_xml(
                    unique_name("bench-export"), volume.path())))
            server = Server(write_service_ini(folder, {
                "simplestack.hypervisor.qemu.allowed_hosts": "localhost",
                "simplestack.hypervisor.qemu.storage_pool": pool.name(),
                "simplestack.hypervisor.qemu.network": "",
                "simplestack.max_concurrent_streams": str(exports),
            }), "/qemu/localhost/guests?limit=1")
            try:
                server.wait_until_ready()
                service = Service(server, "/qemu/localhost")
                workers = server.wait_for_workers()
                start = [rss_bytes(pid) for pid in workers]
                print("worker RSS MB at the start: %s" % ", ".join(
                    megabytes(value) for value in start))
                with concurrent.futures.ThreadPoolExecutor(exports) as clients:
                    for number in range(rounds):
                        list(clients.map(
                            lambda domain: expect_size(
                                service.export(domain.UUIDString()), size),
                            domains))
                        time.sleep(SETTLE_SECONDS)
                        print("round %d: worker RSS MB %s" % (
                            number + 1, ", ".join(
                                megabytes(rss_bytes(pid))
                                for pid in workers)))
                end = [rss_bytes(pid) for pid in workers]
            finally:
                server.stop()
    finally:
        for domain in domains:
            with contextlib.suppress(libvirt.libvirtError):
                domain.undefine()
        connection.close()
    print("%d rounds of %d concurrent exports of %d MiB: worker RSS growth "
          "%s MB" % (rounds, exports, size // MIB, ", ".join(
              megabytes(after - before) for before, after in zip(start, end))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exports", type=int, default=20,
                        help="concurrent exports per round (default: 20)")
    parser.add_argument("--rounds", type=int, default=8,
                        help="rounds (default: 8)")
    parser.add_argument("--size-mib", type=int, default=16,
                        help="image size in MiB (default: 16)")
    options = parser.parse_args()
    run(options.exports, options.rounds, options.size_mib * MIB)


if __name__ == "__main__":
    main()
