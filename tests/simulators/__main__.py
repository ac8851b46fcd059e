"""Command line: run a simulator in the foreground.

    python -m tests.simulators xapi --listen 127.0.0.1:PORT [--vms N] [--http]
        [--disk-folder PATH]
    python -m tests.simulators vcsim --listen 127.0.0.1:PORT [--vms N] [--esx]

The first line of output is the URL to connect to; the lines after it give
the credentials. SIGTERM or Ctrl-C stops the simulator.
"""

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading

from simplestack.streams import set_malloc_thresholds

from . import ca
from .vcsim import build as vcsim_build
from .xapi.server import is_loopback, serve
from .xapi.simulator import Simulator


def parse_listen(text):
    host, separator, port = text.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError("expected ADDRESS:PORT, got %r" % text)
    if not is_loopback(host):
        raise argparse.ArgumentTypeError(
            "%r is not an IPv4 loopback address (127.x.y.z); the simulator "
            "serves loopback only" % host)
    return host, int(port)


def loopback(text):
    if not is_loopback(text):
        raise argparse.ArgumentTypeError("%r is not an IPv4 loopback address" % text)
    return text


def existing_folder(text):
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError("%r is not an existing folder" % text)
    return text


def next_loopback(address):
    parts = address.split(".")
    parts[3] = str(int(parts[3]) % 254 + 1)
    return ".".join(parts)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m tests.simulators")
    kinds = parser.add_subparsers(dest="kind", required=True)
    xapi = kinds.add_parser("xapi", help="a XenServer pool speaking XAPI")
    xapi.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0),
                      metavar="ADDRESS:PORT",
                      help="pool master address and port (port 0: a free one); "
                           "default 127.0.0.1:0")
    xapi.add_argument("--member", type=loopback, metavar="ADDRESS",
                      help="loopback address of the pool member, served on the "
                           "same port (default: the master address + 1, "
                           "so 127.0.0.2)")
    xapi.add_argument("--vms", type=int, default=0, metavar="N",
                      help="number of guests to seed besides templates and "
                           "control domains (default 0)")
    xapi.add_argument("--http", action="store_true",
                      help="serve plain HTTP instead of HTTPS")
    xapi.add_argument("--user", default="root", help="user name that logs in (default root)")
    xapi.add_argument("--password", default="simulator",
                      help="password that logs in (default 'simulator')")
    xapi.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                      help="delay added to every XML-RPC call (default 0)")
    xapi.add_argument("--login-failure-delay", type=float, default=0.0,
                      metavar="SECONDS",
                      help="delay before a failed login answers; a real host "
                           "waits 5 s (default 0)")
    xapi.add_argument("--task-delay", type=float, default=0.0, metavar="SECONDS",
                      help="time an Async call's task stays pending before it "
                           "runs (default 0)")
    xapi.add_argument("--no-dynamic-memory", action="store_true",
                      help="model a pool without dynamic memory control: "
                           "dynamic_min, dynamic_max and static_max must be equal")
    xapi.add_argument("--disk-folder", type=existing_folder, metavar="PATH",
                      help="folder in which the simulator makes its temporary "
                           "folder of VDI contents, removed at exit; a tmpfs such "
                           "as /dev/shm keeps them in memory (default: the "
                           "temporary folder of Python's tempfile, from TMPDIR)")
    xapi.add_argument("--verbose", action="store_true", help="log every request")

    vcsim = kinds.add_parser("vcsim", help="a vCenter or ESX host: govmomi's vSphere "
                                           "API simulator over HTTPS")
    vcsim.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 0),
                       metavar="ADDRESS:PORT",
                       help="address and port to serve on (port 0: a free one); "
                            "default 127.0.0.1:0")
    vcsim.add_argument("--esx", action="store_true",
                       help="model a standalone ESX host instead of a vCenter")
    vcsim.add_argument("--vms", type=int, metavar="N",
                       help="virtual machines per resource pool; the vCenter model "
                            "has two pools, so 2N machines (default N=2)")
    vcsim.add_argument("--user", help="user name that logs in (default "
                                      "administrator@vsphere.local, or root with --esx)")
    vcsim.add_argument("--password", default=vcsim_build.DEFAULT_PASSWORD,
                       help="password that logs in (default '%s')"
                            % vcsim_build.DEFAULT_PASSWORD)
    return parser


def run_xapi(options):
    master, port = options.listen
    member = options.member or next_loopback(master)
    if member == master:
        sys.exit("--member must differ from the --listen address")
    context = None if options.http else ca.server_context((master, member))
    if options.disk_folder:
        # DiskStore makes its folder with tempfile.mkdtemp; nothing else of
        # the simulator uses tempfile's default folder.
        tempfile.tempdir = options.disk_folder
    # Image transfers pass through buffers of about 1 MiB. Under glibc's
    # moving thresholds these often came from new mappings, and an XVA
    # export of 512 MiB took up to 277000 page faults.
    set_malloc_thresholds()
    simulator = Simulator(master, member, vms=options.vms, username=options.user,
                          password=options.password, latency=options.latency,
                          login_failure_delay=options.login_failure_delay,
                          task_delay=options.task_delay,
                          dynamic_memory_control=not options.no_dynamic_memory)
    try:
        servers = serve(simulator, [master, member], port, context)
    except OSError as error:
        simulator.close()
        sys.exit("cannot listen on %s and %s port %d: %s" % (master, member, port, error))
    port = servers[0].server_address[1]
    scheme = "http" if options.http else "https"

    print("%s://%s:%d/" % (scheme, master, port), flush=True)
    print("pool member (answers HOST_IS_SLAVE): %s://%s:%d/" % (scheme, member, port))
    print("log in as: %s / %s" % (options.user, options.password))
    if context is not None:
        print("CA bundle: %s" % ca.ca_bundle_path())
    print("stats: %s://%s:%d/simulator/stats" % (scheme, master, port), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    simulator.close()


def run_vcsim(options):
    if options.vms is not None and options.vms < 0:
        sys.exit("--vms must be 0 or more, got %d" % options.vms)
    try:
        binary = vcsim_build.build()
    except vcsim_build.BuildError as error:
        sys.exit(str(error))
    command = vcsim_build.launcher_command(
        binary, options.listen, model="esx" if options.esx else "vpx",
        vms=options.vms, username=options.user, password=options.password)
    # The launcher replaces this process: it prints the URL first, and
    # SIGTERM or Ctrl-C reach it directly.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, command)


def main(argv=None):
    options = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(options, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)-5.5s [%(name)s] %(message)s")
    if options.kind == "xapi":
        run_xapi(options)
    elif options.kind == "vcsim":
        run_vcsim(options)


if __name__ == "__main__":
    main()
