"""Build the vSphere simulator launcher (main.go) and form its command line.

The launcher is built offline in GOPATH mode against Debian's
golang-github-vmware-govmomi-dev, with Debian's golang-go, into
``.state/vcsim/`` (git ignores ``/.state/``) with its own Go build cache.
A build takes about 15 s and 800 MB of memory when the cache is cold.

The binary's name carries a hash of main.go and of the govmomi package's file
list, so a changed launcher or package gets a new binary and an unchanged one
is reused. Builds run under a lock and write to a temporary name that is then
renamed, so two test runs that start at once build once and never run a
partial binary.
"""

import fcntl
import glob
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time

from .. import ca

log = logging.getLogger(__name__)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "main.go")
STATE_DIR = os.path.join(ROOT, ".state", "vcsim")

GOPATH = "/usr/share/gocode"
GOVMOMI_SOURCE = os.path.join(GOPATH, "src", "github.com", "vmware", "govmomi")
# dpkg's checksums of the package's files: they change with its version.
GOVMOMI_CHECKSUMS = "/var/lib/dpkg/info/golang-github-vmware-govmomi-dev.md5sums"
DEBIAN_PACKAGES = "golang-go golang-github-vmware-govmomi-dev"

BUILD_TIMEOUT = 600

#: The simulator's two inventory models: a vCenter with a cluster, or one ESX host.
MODELS = ("vpx", "esx")

#: Credentials the launcher is started with, per model. Login is strict:
#: any other user name or password fails with vim.fault.InvalidLogin.
DEFAULT_USERS = {"vpx": "administrator@vsphere.local", "esx": "root"}
DEFAULT_PASSWORD = "simulator"


class BuildError(RuntimeError):
    """The Go toolchain or govmomi is missing, or `go build` failed."""


def source_hash():
    digest = hashlib.sha256()
    with open(SOURCE, "rb") as source:
        digest.update(source.read())
    try:
        with open(GOVMOMI_CHECKSUMS, "rb") as checksums:
            digest.update(checksums.read())
    except FileNotFoundError:
        pass
    return digest.hexdigest()[:16]


def binary_path():
    return os.path.join(STATE_DIR, "vcsim-" + source_hash())


def build():
    """Build the launcher unless an up-to-date binary exists; return its path."""
    binary = binary_path()
    if os.path.exists(binary):
        return binary
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(os.path.join(STATE_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another process may have built it while this one waited.
        if not os.path.exists(binary):
            _go_build(binary)
            _remove_other_binaries(binary)
    return binary


def _go_build(binary):
    go = shutil.which("go")
    if go is None:
        raise BuildError("the go command was not found; install the Debian packages %s "
                         "(scripts/bootstrap --daemons does)" % DEBIAN_PACKAGES)
    if not os.path.isdir(os.path.join(GOVMOMI_SOURCE, "simulator")):
        raise BuildError("govmomi's simulator package is missing from %s; install the "
                         "Debian packages %s" % (GOVMOMI_SOURCE, DEBIAN_PACKAGES))

    # GOPATH mode finds govmomi and its dependencies in Debian's tree without
    # the network. Go needs a writable build cache, and HOME may be unset.
    environment = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="",
                       GOCACHE=os.path.join(STATE_DIR, "go-cache"), GOPROXY="off")
    descriptor, temporary = tempfile.mkstemp(dir=STATE_DIR, prefix=".vcsim-build.")
    os.close(descriptor)

    log.info("building the vSphere simulator launcher into %s (about 15 s when "
             "the Go cache is cold)", binary)
    started = time.monotonic()
    try:
        result = subprocess.run([go, "build", "-o", temporary, SOURCE],
                                cwd=os.path.dirname(SOURCE), env=environment,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=BUILD_TIMEOUT)
        if result.returncode != 0:
            raise BuildError("go build of %s failed with exit code %d:\n%s"
                             % (SOURCE, result.returncode, result.stdout))
        os.chmod(temporary, 0o755)
        os.replace(temporary, binary)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    log.info("built %s in %.1f s", binary, time.monotonic() - started)


def _remove_other_binaries(binary):
    # A process may still run an older binary: Linux keeps its file until it exits.
    for path in glob.glob(os.path.join(STATE_DIR, "vcsim-*")):
        if path != binary:
            os.unlink(path)


def launcher_command(binary, listen, model="vpx", vms=None, username=None,
                     password=DEFAULT_PASSWORD, delay_ms=None):
    """Return the argument list that runs ``binary`` on ``listen`` (HOST, PORT).

    The server certificate comes from the development CA in tests/simulators/ca.py
    and is valid for HOST. ``vms`` is the number of virtual machines per
    resource pool: the vCenter model has two pools (its standalone host's and
    its cluster's), the ESX model one. None keeps govmomi's default of 2.
    ``delay_ms`` is added to every SOAP call, in milliseconds.
    """
    if model not in MODELS:
        raise ValueError("invalid model %r; expected one of %s" % (model, ", ".join(MODELS)))
    host, port = listen
    cert, key = ca.server_cert_files((host,))
    command = [binary, "-listen", "%s:%d" % (host, port),
               "-user", username or DEFAULT_USERS[model], "-password", password,
               "-cert", cert, "-key", key, "-ca-bundle", ca.ca_bundle_path()]
    if model == "esx":
        command.append("-esx")
    if vms is not None:
        command += ["-vms", str(vms)]
    if delay_ms:
        command += ["-delay-ms", str(delay_ms)]
    return command
