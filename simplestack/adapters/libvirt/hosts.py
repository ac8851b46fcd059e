"""The pool, host and storage records of a libvirt connection."""

import logging
import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.libvirt.constants import GIB, MIB

logger = logging.getLogger(__name__)


class HostsMixin:
    """Methods of LibvirtAdapter for the pool, its one host and storages."""

    # -- pool and hosts ----------------------------------------------------

    def _capabilities(self):
        return ET.fromstring(self._call(self.conn.getCapabilities))

    def _host_record(self, capabilities=None):
        capabilities = (capabilities if capabilities is not None
                        else self._capabilities())
        hostname = self._hostname()
        # The test driver's capabilities have no host UUID.
        host_uuid = capabilities.findtext("host/uuid") or hostname
        return {
            "id": host_uuid.lower(),
            "name": hostname,
            "address": self._host_without_port(),
        }

    def get_pool(self):
        info = self._call(self.conn.getInfo)
        free_bytes = self._call(self.conn.getFreeMemory)
        total_mib = info[1]
        host = self._host_record()
        library_version = self._call(self.conn.getLibVersion)
        hypervisor_version = self._call(self.conn.getVersion)
        return {
            "used_memory": max(total_mib - free_bytes // MIB, 0),
            "total_memory": total_mib,
            "uuid": host["id"],
            "master": host["address"],
            "software_info": {
                "version": _version_string(library_version),
                "hypervisor": self._call(self.conn.getType),
                "hypervisor_version": _version_string(hypervisor_version),
                "driver": self.driver,
            },
        }

    def _max_vcpus(self, domain_type, arch=None, machine=None):
        """Return the max vCPUs of a guest, or None when libvirt has no
        figure for this driver (LXC).

        The domain capabilities give the limit of the machine type, which
        QEMU enforces. virConnectGetMaxVcpus, the fallback, gives one figure
        per domain type (16 for TCG in libvirt 9.0, below QEMU's 255).
        """
        try:
            capabilities = ET.fromstring(self._call(
                self.conn.getDomainCapabilities, None, arch, machine,
                domain_type, 0))
            vcpu = capabilities.find("vcpu")
            if vcpu is not None and vcpu.get("max"):
                return int(vcpu.get("max"))
        except (errors.FeatureNotImplemented, errors.HypervisorError,
                errors.InvalidArguments) as error:
            logger.debug("no domain capabilities for %s on %s: %s",
                         domain_type, self.host, error.message)
        try:
            return self._call(self.conn.getMaxVcpus, domain_type)
        except (errors.FeatureNotImplemented, errors.HypervisorError) as \
                error:
            logger.debug("no max vCPUs for %s on %s: %s", domain_type,
                         self.host, error.message)
            return None

    def _check_cpus(self, cpus, domain_root=None):
        """Raise InvalidArguments when the guest cannot have ``cpus``.

        ``domain_root`` is the definition of an existing guest. Its type,
        architecture and machine type set the limit. Without it, the limit
        is that of a new guest.
        """
        if self.driver == "qemu":
            domain_type = self.config["domain_type"]
        else:
            domain_type = self.driver
        arch = machine = None
        if domain_root is not None:
            domain_type = domain_root.get("type")
            os_type = domain_root.find("os/type")
            if os_type is not None:
                arch = os_type.get("arch")
                machine = os_type.get("machine")
        maximum = self._max_vcpus(domain_type, arch, machine)
        if maximum is not None and cpus > maximum:
            raise errors.InvalidArguments(
                "invalid cpus %d; %s guests of type %s%s take at most %d"
                % (cpus, self.hypervisor_name, domain_type,
                   " on machine %s" % machine if machine else "", maximum))

    def _check_memory(self, memory_mib):
        """Raise InvalidArguments when ``memory_mib`` exceeds the host's
        memory, which a guest could never get."""
        total_mib = self._call(self.conn.getInfo)[1]
        if memory_mib > total_mib:
            raise errors.InvalidArguments(
                "invalid memory %d MiB; host %s has %d MiB"
                % (memory_mib, self.host, total_mib))

    def list_hosts(self):
        return [self._host_record()]

    def get_host(self, host_id):
        host = self._host_record()
        if str(host_id).lower() not in (host["id"], host["name"].lower()):
            raise errors.EntityNotFound("host %s not found" % host_id)
        return host

    # -- storages ----------------------------------------------------------

    def _storage_record(self, pool):
        root = ET.fromstring(self._call(pool.XMLDesc, 0))
        _state, capacity, allocation, _available = self._call(pool.info)
        # allocated_space sums the virtual sizes of the pool's volumes, so
        # it can exceed size when volumes are sparse (thin provisioning).
        virtual_total = 0
        if self._call(pool.isActive):
            for volume in self._call(pool.listAllVolumes, 0):
                try:
                    virtual_total += self._call(volume.info)[1]
                except errors.EntityNotFound:
                    continue  # deleted since listAllVolumes
        return {
            "id": pool.UUIDString().lower(),
            "name": pool.name(),
            "type": root.get("type"),
            "used_space": allocation // GIB,
            "allocated_space": virtual_total // GIB,
            "size": capacity // GIB,
        }

    def list_storages(self):
        records = []
        for pool in self._call(self.conn.listAllStoragePools, 0):
            try:
                records.append(self._storage_record(pool))
            except errors.EntityNotFound:
                continue  # deleted since listAllStoragePools
        return records

    def get_storage(self, storage_id):
        return self._storage_record(self._pool(storage_id))


def _version_string(number):
    """Format libvirt's version number (major * 1e6 + minor * 1e3 + micro)."""
    major, rest = divmod(number, 1000000)
    minor, micro = divmod(rest, 1000)
    return "%d.%d.%d" % (major, minor, micro)
