"""The pool, host and storage records of a libvirt connection."""

import xml.etree.ElementTree as ET

from simplestack import errors
from simplestack.adapters.libvirt.constants import GIB, MIB


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
