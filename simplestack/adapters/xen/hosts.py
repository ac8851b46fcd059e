"""Pool, host and storage records."""

from simplestack import errors
from simplestack.adapters.xen.constants import MIB
from simplestack.adapters.xen.records import (
    host_record, software_info, storage_record)


class HostsMixin:
    """Methods of XenAdapter for the pool, its hosts and its SRs."""

    def get_pool(self):
        loaded = self._load_classes(("pool", "host", "host_metrics"))
        pools = list(loaded["pool"].values())
        if not pools:
            raise errors.HypervisorError("%s at %s reports no pool"
                                         % (self.hypervisor_name, self.host))
        pool = pools[0]
        hosts = loaded["host"]
        metrics = loaded["host_metrics"]

        total = used = 0
        for host in hosts.values():
            host_metrics = metrics.get(host["metrics"])
            if host_metrics is None:
                continue
            total += int(host_metrics["memory_total"])
            used += (int(host_metrics["memory_total"])
                     - int(host_metrics["memory_free"]))
        master = hosts.get(pool["master"])
        return {
            "used_memory": used // MIB,
            "total_memory": total // MIB,
            "uuid": pool["uuid"].lower(),
            "master": master["address"] if master is not None else None,
            "software_info": software_info(master) if master is not None
            else {"version": ""},
        }

    def list_hosts(self):
        return [host_record(host)
                for host in self._all_records("host").values()]

    def get_host(self, host_id):
        _ref, host = self._host(host_id)
        return host_record(host)

    def list_storages(self):
        # An SR without PBDs is known to the pool but attached to no
        # host, so nothing can be stored on it.
        return [storage_record(sr) for sr in self._all_records("SR").values()
                if sr["PBDs"]]

    def get_storage(self, storage_id):
        _ref, sr = self._storage(storage_id)
        return storage_record(sr)
