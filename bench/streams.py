"""Compare image export and import through the service with direct
transfers from the hypervisor.

Run: .venv/bin/python bench/streams.py [--backends libvirt,xen]
     [--rounds 2] [--size-mib 1024]

The service runs under pserve with production.ini's [server:main]
(gunicorn, gthread workers) on a free loopback port. Each round times, in
turn, a direct export, an export through the service, a direct import and
an import through the service of the same image. While a transfer through
the service runs, a thread samples the resident set size (VmRSS) of every
gunicorn worker every 10 ms. The growth is the largest rise over the
worker's size just before the transfer. Exports are read in 1 MiB blocks
and discarded. The script prints throughputs, the ratios service/direct
(target: at least 0.9) and the RSS growth (target: at most 32 MB), then
removes what it made and stops the service and the simulator by their pid.
It also prints the CPU seconds per GiB of the gunicorn workers, of the XAPI
simulator (and the system part of it) and of the client (this process) for
each kind of transfer. They vary less with the load of other jobs than the
throughputs do. Before each timed transfer the script writes to 1.5 times
the image size of new memory and frees it, untimed (``warm_free_memory``;
``--no-warm-up`` leaves it out).

libvirt needs the daemon of scripts/libvirtd (qemu:///system, as root). The
script creates a directory pool ``sstest-bench-pool-*`` in the test image
folder, fills a raw volume of ``--size-mib`` MiB of random data through an
upload stream and defines a stopped QEMU guest on it. Direct transfers are
``virStorageVolDownload`` and ``virStorageVolUpload`` streams; the service
transfers are ``GET .../guests/{id}/export`` and ``POST .../guests`` with an
``application/octet-stream`` body, followed by ``DELETE`` of the new guest.
The direct export reads with the binding's ``recv``, as a client of
libvirt-python does. Each round also times a direct export read through
libvirt's C API in whole chunks, as the service reads, and the script
prints the export's ratio against it too.

Xen uses the XAPI simulator, with its disks and the XVA file in a
temporary folder under /dev/shm (a tmpfs) where it exists. The script
fills a new VDI of ``--size-mib`` MiB through ``/import_raw_vdi`` and
attaches it to a halted guest, whose XVA export is then the image. Direct
transfers are HTTPS requests to the simulator's ``/export`` and ``/import``
handlers. The service transfers are the same API requests as on libvirt,
with an ``application/x-xva`` body. On Xen, a direct import passes a task
and ends when the task does, as the service's does. Every timed import
follows an untimed direct import, the two imports change places from one
round to the next, and the removal of an imported guest is not timed (see
``measure_xen``).
"""

import argparse
import base64
import contextlib
import http.client
import json
import mmap
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from urllib.parse import urlencode

import backends
import libvirt
import XenAPI
from throughput import TOKEN, TOKEN_HEADER, Server

from simplestack.adapters.libvirt import stream_reader
from simplestack.adapters.xen.tasks import task_result_refs
from tests.backends import unique_name
from tests.libvirt_fixtures import temporary_pool
from tests.simulators.fixtures import XapiSimulator
from tests.xen_fixtures import CATransport

MIB = 1024 ** 2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BLOCK = MIB
TARGET_RATIO = 0.9
#: The kind of the libvirt step that reads as the service does.
C_API_EXPORT = "direct export (C API)"
TARGET_RSS_GROWTH_MB = 32
SAMPLE_SECONDS = 0.01
#: A tmpfs, so that the files of the XAPI simulator and of this script stay
#: in memory. Then no writeback competes for the CPUs, and the figures do
#: not depend on this machine's disk. None, for tempfile's folder, where
#: /dev/shm is missing.
MEMORY_FOLDER = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Pid file of the daemon that scripts/libvirtd started.
LIBVIRTD_PID_FILE = "/run/simplestack-test/libvirtd.pid"


def warm_free_memory(size):
    """Write to ``size`` bytes of new anonymous memory, then free it.

    The kernel most often hands out recently freed pages first, so the
    timed transfer that follows writes the hypervisor's new file into pages
    in recent use. On the virtual machine of bench/README.md, writing
    512 MiB to a tmpfs took 1.4 to 1.5 s of system CPU into pages unused
    for a while and 0.2 s into recently freed ones. Without this step an
    import cost one side or the other about 1 s more, at random.
    """
    buffer = mmap.mmap(-1, size)
    try:
        for offset in range(0, size, mmap.PAGESIZE):
            buffer[offset] = 1
    finally:
        buffer.close()


def pattern_block():
    """Return 1 MiB of random bytes, repeated to make the image, so that
    neither side can skip zeros."""
    return os.urandom(BLOCK)


def direct_upload(connection, volume, block, size):
    stream = connection.newStream(0)
    volume.upload(stream, 0, size, 0)
    for data in repeated_blocks(block, size):
        offset = 0
        while offset < len(data):
            offset += stream.send(data[offset:] if offset else data)
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


def direct_download_c_api(connection, volume):
    """Download ``volume`` as the service's export reads it: through
    libvirt's C API, in whole chunks (stream_reader)."""
    stream = connection.newStream(0)
    volume.download(stream, 0, 0, 0)
    receive_chunk = stream_reader.chunk_receiver(stream)
    received = 0
    while True:
        chunk = receive_chunk(BLOCK)
        if not chunk:
            break
        received += len(chunk)
    stream.finish()
    return received


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


def read_discarding(response):
    """Read ``response`` to its end in 1 MiB blocks; return the byte
    count."""
    buffer = bytearray(BLOCK)
    received = 0
    while True:
        count = response.readinto(buffer)
        if not count:
            return received
        received += count


def repeated_blocks(block, size):
    """Yield ``size`` bytes as repetitions of ``block``."""
    sent = 0
    while sent < size:
        data = block[:min(BLOCK, size - sent)]
        sent += len(data)
        yield data


class Service:
    """HTTP requests to one host of the service."""

    def __init__(self, server, prefix, token=TOKEN):
        self.server = server
        self.prefix = prefix
        self.token = token

    def _request(self, method, path, body=None, headers=()):
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.server.port, timeout=600, blocksize=BLOCK)
        connection.request(method, self.prefix + path, body=body,
                           headers=dict(headers, **{TOKEN_HEADER:
                                                    self.token}))
        return connection, connection.getresponse()

    def export(self, guest_id):
        connection, response = self._request(
            "GET", "/guests/%s/export" % guest_id)
        try:
            if response.status != 200:
                raise RuntimeError("export failed: %d %s" % (
                    response.status, response.read()[:500]))
            return read_discarding(response)
        finally:
            connection.close()

    def import_image(self, name, body, size, content_type):
        """POST ``size`` bytes of ``body`` (a file or an iterable) as a new
        guest called ``name``; return its id."""
        connection, response = self._request(
            "POST", "/guests?name=%s" % name, body=body,
            headers={"Content-Length": str(size),
                     "Content-Type": content_type})
        try:
            answer = response.read()
            if response.status != 201:
                raise RuntimeError("import failed: %d %s" % (
                    response.status, answer[:500]))
            return json.loads(answer)["id"]
        finally:
            connection.close()

    def delete(self, guest_id):
        connection, response = self._request("DELETE",
                                             "/guests/%s" % guest_id)
        try:
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


def write_service_ini(folder, options):
    path = os.path.join(folder, "service.ini")
    with open(path, "w") as ini:
        ini.write(backends.production_ini(options))
    return path


def rate(size, seconds):
    return size / seconds / MIB


def cpu_seconds(pids, system_only=False):
    """Return the CPU seconds of ``pids``, user and system or system only,
    all threads included, read from /proc (Linux)."""
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[12])
        if not system_only:
            total += int(fields[11])
    return total / CLOCK_TICKS


def run_rounds(rounds, size, steps, workers, hypervisor_pids=(),
               warm_up_bytes=0):
    """Run ``steps`` ((kind, function, through service)) ``rounds`` times.

    ``steps`` may also be a function that returns the steps of a round from
    its number (0 first), all rounds with the same kinds. A step of kind
    None runs untimed, as a warm-up. A function may return a cleanup
    function, which runs after the measurement, untimed.

    Return ({kind: [seconds]}, {kind: [RSS growth in bytes]},
    {kind: [(worker, hypervisor, client, hypervisor system) CPU seconds]}).
    Before each timed step, ``warm_free_memory(warm_up_bytes)`` runs
    untimed, unless ``warm_up_bytes`` is 0.
    The workers' CPU time counts only for transfers through the service.
    ``hypervisor_pids`` are the processes on the other end (the XAPI
    simulator, libvirtd); without them the hypervisor's CPU times are None.
    The client is this process.
    """
    steps_of_round = steps if callable(steps) else lambda number: steps
    measured = [step for step in steps_of_round(0) if step[0] is not None]
    times = {kind: [] for kind, _, _ in measured}
    growth = {kind: [] for kind, _, through in measured if through}
    cpu = {kind: [] for kind, _, _ in measured}
    for number in range(rounds):
        for kind, function, through in steps_of_round(number):
            if kind is None:
                run_cleanup(function())
                continue
            if warm_up_bytes:
                warm_free_memory(warm_up_bytes)
            before = (cpu_seconds(workers), cpu_seconds(hypervisor_pids),
                      time.process_time(),
                      cpu_seconds(hypervisor_pids, system_only=True))
            if through:
                with RssSampler(workers) as sampler:
                    seconds, cleanup = timed(function)
                growth[kind].append(sampler.growth)
            else:
                seconds, cleanup = timed(function)
            after = (cpu_seconds(workers), cpu_seconds(hypervisor_pids),
                     time.process_time(),
                     cpu_seconds(hypervisor_pids, system_only=True))
            run_cleanup(cleanup)
            used = [end - start for start, end in zip(before, after)]
            if not through:
                used[0] = 0.0
            if not hypervisor_pids:
                used[1] = used[3] = None
            times[kind].append(seconds)
            cpu[kind].append(tuple(used))
        print("round %d: %s" % (number + 1, ", ".join(
            "%s %.0f MiB/s" % (kind, rate(size, values[-1]))
            for kind, values in times.items())), file=sys.stderr)
        cpu_text = ", ".join(
            "%s %s" % (kind, "/".join(format_seconds(value)
                                      for value in values[-1]))
            for kind, values in cpu.items())
        print("  CPU s (worker/hypervisor/client/hypervisor system): %s"
              % cpu_text, file=sys.stderr)
    return times, growth, cpu


def run_cleanup(cleanup):
    """Call ``cleanup``, the return value of a step, unless it is None."""
    if cleanup is not None:
        cleanup()


def format_seconds(value, digits=1):
    """Format CPU seconds, or "-" where they were not measured (None)."""
    return "-" if value is None else "%.*f" % (digits, value)


def cpu_per_gib(samples, index, length):
    """Return the median of field ``index`` of ``samples`` per GiB of
    ``length`` bytes, formatted, or "-" where it was not measured."""
    if samples[0][index] is None:
        return "-"
    return format_seconds(statistics.median(sample[index] for sample in samples)
                          * 1024 * MIB / length, 2)


def expect_size(received, size):
    if received != size:
        raise RuntimeError("received %d bytes, expected %d" % (received,
                                                               size))


def libvirtd_pids():
    """[pid] of the daemon of scripts/libvirtd, or [] when its pid file is
    missing or unreadable (a daemon started otherwise)."""
    try:
        with open(LIBVIRTD_PID_FILE) as pid_file:
            pid = int(pid_file.read().strip())
        with open("/proc/%d/comm" % pid) as comm:
            return [pid] if comm.read().strip() == "libvirtd" else []
    except (OSError, ValueError):
        return []


def measure_libvirt(folder, size, rounds, block, warm_up_bytes):
    connection = libvirt.open("qemu:///system")
    try:
        with temporary_pool(connection, "bench-pool") as pool:
            source = raw_volume(pool, "source.img", size)
            direct_upload(connection, source, block, size)
            domain = connection.defineXML(guest_xml(
                unique_name("bench-export"), source.path()))
            # Undefine the guest even when the server fails to start.
            try:
                return measure_libvirt_guest(
                    connection, pool, source, domain, folder, size, rounds,
                    block, warm_up_bytes)
            finally:
                with contextlib.suppress(libvirt.libvirtError):
                    domain.undefine()
    finally:
        connection.close()


def measure_libvirt_guest(connection, pool, source, domain, folder, size,
                          rounds, block, warm_up_bytes):
    server = Server(write_service_ini(folder, {
        "simplestack.hypervisor.qemu.allowed_hosts": "localhost",
        "simplestack.hypervisor.qemu.storage_pool": pool.name(),
        "simplestack.hypervisor.qemu.network": "",
    }), "/qemu/localhost/guests?limit=1")
    try:
        server.wait_until_ready()
        service = Service(server, "/qemu/localhost")

        def direct_import():
            target = raw_volume(pool, unique_name("direct"), size)
            direct_upload(connection, target, block, size)
            target.delete(0)

        def service_import():
            guest_id = service.import_image(
                unique_name("bench-import"),
                repeated_blocks(block, size), size,
                "application/octet-stream")
            service.delete(guest_id)

        steps = [
            ("direct export", lambda: expect_size(
                direct_download(connection, source), size), False),
            ("service export", lambda: expect_size(
                service.export(domain.UUIDString()), size), True),
            (C_API_EXPORT, lambda: expect_size(
                direct_download_c_api(connection, source), size), False),
            ("direct import", direct_import, False),
            ("service import", service_import, True),
        ]
        return run_rounds(rounds, size, steps, server.wait_for_workers(),
                          libvirtd_pids(), warm_up_bytes)
    finally:
        server.stop()


class XapiHandlers:
    """HTTPS requests to the XAPI simulator's image handlers."""

    def __init__(self, simulator, session_id):
        self.simulator = simulator
        self.session_id = session_id
        host, port = simulator.netloc.rsplit(":", 1)
        self.host = host
        self.port = int(port)

    def _request(self, method, handler, query, body=None, size=None):
        connection = http.client.HTTPSConnection(
            self.host, self.port, timeout=600,
            context=self.simulator.ssl_context(), blocksize=BLOCK)
        query = dict(query, session_id=self.session_id)
        headers = {}
        if size is not None:
            headers["Content-Length"] = str(size)
        connection.request(method, "/%s?%s" % (handler, urlencode(query)),
                           body=body, headers=headers)
        response = connection.getresponse()
        return connection, response

    def download(self, handler, query, output=None):
        """GET a handler; write the body to ``output`` or discard it."""
        connection, response = self._request("GET", handler, query)
        try:
            if response.status != 200:
                raise RuntimeError("%s failed: %d" % (handler,
                                                      response.status))
            if output is None:
                return read_discarding(response)
            shutil.copyfileobj(response, output, BLOCK)
            return output.tell()
        finally:
            connection.close()

    def upload(self, handler, query, body, size):
        connection, response = self._request("PUT", handler, query, body,
                                             size)
        try:
            response.read()
            if response.status != 200:
                raise RuntimeError("%s failed: %d" % (handler,
                                                      response.status))
        finally:
            connection.close()


def destroy_vm(xapi, vm):
    """Destroy ``vm`` and the VDIs of its disks."""
    vdis = [xapi.VBD.get_VDI(vbd) for vbd in xapi.VM.get_VBDs(vm)
            if xapi.VBD.get_type(vbd) == "Disk"]
    xapi.VM.destroy(vm)
    for vdi in vdis:
        xapi.VDI.destroy(vdi)


def measure_xen(folder, size, rounds, block, warm_up_bytes):
    simulator = XapiSimulator("--vms", "3", "--disk-folder", folder).start()
    session = XenAPI.Session(simulator.url,
                             transport=CATransport(simulator.ca_bundle))
    try:
        session.xenapi.login_with_password(
            simulator.username, simulator.password, "1.0", "bench")
        xapi = session.xenapi
        handlers = XapiHandlers(simulator, session.handle)
        sr = xapi.pool.get_default_SR(xapi.pool.get_all()[0])
        vdi = xapi.VDI.create({
            "name_label": unique_name("bench-disk"), "SR": sr,
            "virtual_size": str(size), "type": "user", "sharable": False,
            "read_only": False, "other_config": {}})
        handlers.upload("import_raw_vdi", {"vdi": vdi, "format": "raw"},
                        repeated_blocks(block, size), size)
        vm = next(ref for ref, record in xapi.VM.get_all_records().items()
                  if not record["is_a_template"]
                  and not record["is_control_domain"]
                  and record["power_state"] == "Halted")
        taken = {xapi.VBD.get_userdevice(vbd) for vbd in xapi.VM.get_VBDs(vm)}
        userdevice = next(str(number) for number in range(16)
                          if str(number) not in taken)
        xapi.VBD.create({
            "VM": vm, "VDI": vdi, "userdevice": userdevice, "bootable": False,
            "mode": "RW", "type": "Disk", "unpluggable": True,
            "empty": False, "other_config": {}, "qos_algorithm_type": "",
            "qos_algorithm_params": {}})
        vm_uuid = xapi.VM.get_uuid(vm)
        xva_path = os.path.join(folder, "guest.xva")
        with open(xva_path, "wb") as output:
            xva_size = handlers.download("export", {"uuid": vm_uuid},
                                         output)

        token = base64.b64encode(("%s:%s" % (
            simulator.username, simulator.password)).encode()).decode()
        server = Server(write_service_ini(folder, {
            "simplestack.hypervisor.xen.allowed_hosts": "127.0.0.1",
            "simplestack.hypervisor.xen.ca_bundle": simulator.ca_bundle,
        }), "/xen/%s/guests?limit=1" % simulator.netloc, token=token)
        try:
            server.wait_until_ready()
            service = Service(server, "/xen/" + simulator.netloc, token)

            def direct_import():
                # As the Xen adapter does, pass a task and wait until it
                # ends: the handler responds before it has read the body,
                # and the VM exists from the start of the import.
                task = xapi.task.create("bench import", "")
                with open(xva_path, "rb") as body:
                    handlers.upload("import", {"sr_id": sr, "task_id": task},
                                    body, xva_size)
                deadline = time.monotonic() + 60
                while True:
                    record = xapi.task.get_record(task)
                    if record["status"] != "pending":
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("the direct import did not end "
                                           "within 60 s")
                    time.sleep(0.05)
                xapi.task.destroy(task)
                if record["status"] != "success":
                    raise RuntimeError("the direct import failed: %s"
                                       % record["error_info"])

                def remove_new_vms():
                    for ref in task_result_refs(record["result"]):
                        destroy_vm(xapi, ref)

                return remove_new_vms

            def service_import():
                with open(xva_path, "rb") as body:
                    guest_id = service.import_image(
                        unique_name("bench-import"), body, xva_size,
                        "application/x-xva")
                return lambda: service.delete(guest_id)

            exports = [
                ("direct export", lambda: expect_size(handlers.download(
                    "export", {"uuid": vm_uuid}), xva_size), False),
                ("service export", lambda: expect_size(
                    service.export(vm_uuid), xva_size), True),
            ]
            imports = [
                [(None, direct_import, False),
                 ("direct import", direct_import, False)],
                [(None, direct_import, False),
                 ("service import", service_import, True)],
            ]

            def steps(number):
                # On the machine of bench/README.md, some imports cost the
                # simulator about 1 s more of system CPU per 512 MiB than
                # others, while it wrote the disk file into pages unused for
                # a while (see warm_free_memory). The first import after the
                # exports was most often one of them, so each timed import
                # follows an untimed one, and the two sides take turns in
                # going first.
                first, second = imports if number % 2 == 0 else imports[::-1]
                return exports + first + second

            return run_rounds(rounds, xva_size, steps,
                              server.wait_for_workers(),
                              [simulator.process.pid],
                              warm_up_bytes), xva_size
        finally:
            server.stop()
    finally:
        with contextlib.suppress(Exception):
            session.xenapi.session.logout()
        simulator.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="libvirt,xen",
                        help="comma-separated: libvirt, xen (default: both)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="transfers of each kind (default: 2)")
    parser.add_argument("--size-mib", type=int, default=1024,
                        help="image size in MiB (default: 1024)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="do not write to and free 1.5 times the image "
                             "size of memory before each timed transfer")
    options = parser.parse_args()
    names = options.backends.split(",")
    for name in names:
        if name not in ("libvirt", "xen"):
            parser.error("invalid backend %r; expected libvirt or xen"
                         % name)
    size = options.size_mib * MIB
    block = pattern_block()
    warm_up_bytes = 0 if options.no_warm_up else size * 3 // 2

    print("load average at start %.1f" % os.getloadavg()[0])
    results = []
    for name in names:
        # On Xen the folder contains the XVA file and the simulator's disks.
        with tempfile.TemporaryDirectory(prefix="bench-streams-",
                                         dir=MEMORY_FOLDER) as folder:
            if name == "libvirt":
                measured = measure_libvirt(folder, size, options.rounds,
                                           block, warm_up_bytes)
                results.append(("libvirt qemu:///system", size, measured))
            else:
                measured, xva_size = measure_xen(folder, size,
                                                 options.rounds, block,
                                                 warm_up_bytes)
                results.append(("XAPI simulator (XVA)", xva_size, measured))

    print("Image streams of a %d MiB disk, median of %d rounds; targets: "
          "ratio >= %.1f, RSS growth <= %d MB"
          % (options.size_mib, options.rounds, TARGET_RATIO,
             TARGET_RSS_GROWTH_MB))
    for label, length, (times, growth, cpu) in results:
        for kind in ("export", "import"):
            direct = rate(length, statistics.median(times["direct " + kind]))
            through = rate(length,
                           statistics.median(times["service " + kind]))
            peak = max(growth["service " + kind]) / 1e6
            ratio = through / direct
            print("%s %s of %d MiB: service %.0f MiB/s, direct %.0f MiB/s, "
                  "ratio %.2f (%s); worker RSS growth %.1f MB (%s)" % (
                      label, kind, length // MIB, through, direct, ratio,
                      "met" if ratio >= TARGET_RATIO else "missed", peak,
                      "met" if peak <= TARGET_RSS_GROWTH_MB else "missed"))
            print("  median CPU s per GiB: service side: worker %s, "
                  "hypervisor %s (system %s), client %s; direct side: "
                  "hypervisor %s (system %s), client %s" % (
                      cpu_per_gib(cpu["service " + kind], 0, length),
                      cpu_per_gib(cpu["service " + kind], 1, length),
                      cpu_per_gib(cpu["service " + kind], 3, length),
                      cpu_per_gib(cpu["service " + kind], 2, length),
                      cpu_per_gib(cpu["direct " + kind], 1, length),
                      cpu_per_gib(cpu["direct " + kind], 3, length),
                      cpu_per_gib(cpu["direct " + kind], 2, length)))
            if kind == "export" and C_API_EXPORT in times:
                c_api = rate(length, statistics.median(times[C_API_EXPORT]))
                print("  direct through libvirt's C API %.0f MiB/s: ratio "
                      "%.2f against it; client CPU s per GiB %s" % (
                          c_api, through / c_api,
                          cpu_per_gib(cpu[C_API_EXPORT], 2, length)))
    print("load average at end %.1f" % os.getloadavg()[0])


if __name__ == "__main__":
    main()
