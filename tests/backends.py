"""Test settings for the hypervisor backends: which ones the run must reach, and their files.

`scripts/test` starts libvirtd, prepares the folders below and exports the variables that this
module reads. Without them (plain `pytest`), only the in-process `test` backend is required.

The two domain XML templates were checked on Debian 12 (libvirt 9.0.0, QEMU 7.2) with
`scripts/check-guests`, which defines, starts, destroys and undefines one guest of each.

Run as a script to print a template, as `scripts/check-guests` does:
    python3 tests/backends.py qemu NAME DISK_PATH
    python3 tests/backends.py lxc NAME
"""

import os
import sys
import uuid
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

# Name prefix of every libvirt object and image file that the tests create.
# `scripts/libvirtd clean` removes every domain, network, storage pool and image file with this
# prefix. `scripts/test` runs it before and after the tests when it starts libvirtd itself.
TEST_PREFIX = "sstest-"

# libvirt connection URI of each backend that the test set-up can provide.
BACKEND_URIS = {
    "test": "test:///default",
    "qemu": "qemu:///system",
    "lxc": "lxc:///",
}

BACKENDS_VARIABLE = "SIMPLESTACK_TEST_BACKENDS"
IMAGE_DIR_VARIABLE = "SIMPLESTACK_TEST_IMAGE_DIR"
LXC_ROOTFS_VARIABLE = "SIMPLESTACK_TEST_LXC_ROOTFS"

DEFAULT_BACKENDS = ("test",)
DEFAULT_IMAGE_DIR = "/var/lib/simplestack-test/images"
DEFAULT_LXC_ROOTFS = "/var/lib/simplestack-test/lxc-rootfs"

# A container that boots the busybox root filesystem made by `scripts/lxc-rootfs`.
# Its /sbin/init exits on SIGTERM, so a shutdown with VIR_DOMAIN_SHUTDOWN_SIGNAL stops the
# container. The default shutdown mode (flags 0) returns success but leaves it running
# (libvirt 9.0.0). Reboot has no effect, because a shell as PID 1 ignores SIGHUP.
# The root is read-only so that many containers can share one folder.
LXC_DOMAIN_XML = """\
<domain type='lxc'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type>exe</type>
    <init>/sbin/init</init>
  </os>
  <devices>
    <filesystem type='mount'>
      <source dir={rootfs}/>
      <target dir='/'/>
      <readonly/>
    </filesystem>
    <console type='pty'/>
  </devices>
</domain>
"""

# A QEMU guest with one qcow2 disk and no operating system: its firmware finds nothing to
# boot and waits, which is enough for power, disk and snapshot calls. Type 'qemu' (TCG) also
# runs where /dev/kvm is missing. The disk sits on a virtio-scsi controller because a PCI
# device unplug waits for a guest OS that is not there, and hot-plug needs <acpi/>
# (libvirt 9.0.0, QEMU 7.2).
QEMU_DOMAIN_XML = """\
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
  </features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='scsi' model='virtio-scsi'/>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file={disk_path}/>
      <target dev='sda' bus='scsi'/>
    </disk>
  </devices>
</domain>
"""


def required_backends() -> list[str]:
    """Return the backends that SIMPLESTACK_TEST_BACKENDS lists, which the run must reach."""
    value = os.environ.get(BACKENDS_VARIABLE, "").strip()
    if not value:
        return list(DEFAULT_BACKENDS)

    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKEND_URIS]
    if unknown:
        raise ValueError(
            f"invalid {BACKENDS_VARIABLE}={value!r}: unknown backends {unknown}. "
            f"Valid backends are {sorted(BACKEND_URIS)}, separated by commas."
        )
    return names


def backend_uri(backend: str) -> str:
    """Return the libvirt connection URI of a backend name such as "qemu"."""
    return BACKEND_URIS[backend]


def image_dir() -> Path:
    """Return the folder for test disk images, which QEMU's user libvirt-qemu can traverse."""
    return Path(os.environ.get(IMAGE_DIR_VARIABLE) or DEFAULT_IMAGE_DIR)


def lxc_rootfs() -> Path:
    """Return the busybox root filesystem folder that LXC test containers boot from."""
    return Path(os.environ.get(LXC_ROOTFS_VARIABLE) or DEFAULT_LXC_ROOTFS)


def unique_name(label: str) -> str:
    """Return a new name such as "sstest-guest-1a2b3c4d", which `scripts/libvirtd clean` removes."""
    return f"{TEST_PREFIX}{label}-{uuid.uuid4().hex[:8]}"


def lxc_domain_xml(name: str, rootfs: Path | None = None, memory_mib: int = 64) -> str:
    """Return LXC_DOMAIN_XML for a container that boots `rootfs` (default: lxc_rootfs())."""
    return LXC_DOMAIN_XML.format(
        name=escape(name),
        rootfs=quoteattr(str(rootfs or lxc_rootfs())),
        memory_mib=int(memory_mib),
    )


def qemu_domain_xml(name: str, disk_path: Path, memory_mib: int = 64) -> str:
    """Return QEMU_DOMAIN_XML for a guest whose one disk is the qcow2 file `disk_path`."""
    return QEMU_DOMAIN_XML.format(
        name=escape(name),
        disk_path=quoteattr(str(disk_path)),
        memory_mib=int(memory_mib),
    )


def main(arguments: list[str]) -> int:
    if len(arguments) == 3 and arguments[0] == "qemu":
        print(qemu_domain_xml(arguments[1], Path(arguments[2])), end="")
        return 0
    if len(arguments) == 2 and arguments[0] == "lxc":
        print(lxc_domain_xml(arguments[1]), end="")
        return 0
    print(
        "usage: backends.py qemu NAME DISK_PATH | backends.py lxc NAME",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
