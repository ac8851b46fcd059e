"""Disks and the media device (the guest's first CD-ROM drive).

A disk's id is its position number (see devices.CONTROLLER_SLOTS): the
first SCSI disk is "0". A media image is named by its datastore path,
"[datastore] folder/file.iso". A bare file name is searched for on every
datastore and must match exactly one file.
"""

import posixpath
import re

from pyVmomi import vim

from simplestack import errors
from simplestack.adapters.guest_locks import guest_lock
from simplestack.adapters.vmware.constants import GIB, state_of
from simplestack.adapters.vmware.devices import (
    Device, cdroms_of, devices_of, disks_of, empty_cdrom_backing,
    free_scsi_slot, grow_disk_spec, new_disk_spec, remove_device_spec)
from simplestack.adapters.vmware.guest_records import disk_capacity

DISK_PATHS = ("name", "config.hardware.device", "config.files.vmPathName",
              "runtime.powerState", "snapshot")

DATASTORE_PATH = re.compile(r"^\[([^\]]+)\] ?(.*)$")


def disk_record(number, disk):
    file_name = getattr(disk.backing, "fileName", None) or ""
    return {
        "id": str(number),
        "name": posixpath.basename(file_name.split("] ", 1)[-1]),
        "number": number,
        "size": disk_capacity(disk) // GIB,
        "extra_info": file_name,
    }


def datastore_of_path(path):
    match = DATASTORE_PATH.match(path or "")
    return match.group(1) if match else None


def join_datastore_path(folder, file_name):
    """Join a folder such as "[ds]", "[ds] dir/" or "[ds]/dir" (the form
    govmomi's simulator returns) and a file name into "[ds] dir/file"."""
    match = DATASTORE_PATH.match(folder)
    if match is None:
        return "%s/%s" % (folder.rstrip("/"), file_name)
    relative = match.group(2).strip("/ ")
    if relative:
        return "[%s] %s/%s" % (match.group(1), relative, file_name)
    return "[%s] %s" % (match.group(1), file_name)


def positive_gib(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.InvalidArguments(
            "invalid %s %r; expected a positive number of GiB" % (what, value))
    return value


class DisksMixin:
    """Methods of VmwareAdapter for disks and the media device."""

    def _disk(self, found, disk_id):
        for number, disk in disks_of(devices_of(found)):
            if str(number) == str(disk_id):
                return number, disk
        raise errors.EntityNotFound("disk %s of guest %s not found"
                                    % (disk_id, found.get("name")))

    def _device_lock(self, found):
        """Return a context manager that holds the lock of ``found``'s
        device changes in the service processes of the machine."""
        return guest_lock(self.type_name, self.host, found.ref._moId)

    def _reconfigure(self, ref, method="ReconfigVM_Task", **spec_fields):
        self._run(method, ref, spec=vim.vm.ConfigSpec(**spec_fields))

    def list_disks(self, guest_id):
        found = self._guest(guest_id, DISK_PATHS)
        return [disk_record(number, disk)
                for number, disk in disks_of(devices_of(found))]

    def get_disk(self, guest_id, disk_id):
        found = self._guest(guest_id, DISK_PATHS)
        return disk_record(*self._disk(found, disk_id))

    def create_disk(self, guest_id, spec):
        size = positive_gib(spec.get("size"), "disk size")
        if spec.get("name") is not None:
            raise errors.FeatureNotImplemented(
                "VMware cannot name disks: vSphere names the disk file "
                "after the guest")
        found = self._guest(guest_id, DISK_PATHS)
        if spec.get("storage_id") is not None:
            datastore_name = self._datastore(spec["storage_id"]).get("name")
        else:
            datastore_name = datastore_of_path(
                found.get("config.files.vmPathName"))
        # Another add on this guest could take the same free slot.
        with self._device_lock(found):
            found = self._properties(found.ref, DISK_PATHS)
            controller_key, unit = free_scsi_slot(devices_of(found))

            self._reconfigure(found.ref, deviceChange=[new_disk_spec(
                controller_key, unit, size, datastore_name)])

            after = self._properties(found.ref, DISK_PATHS)
        for number, disk in disks_of(devices_of(after)):
            if (disk.controllerKey, disk.unitNumber) == (controller_key,
                                                          unit):
                return disk_record(number, disk)
        raise errors.HypervisorError(
            "the new disk of guest %s is missing after ReconfigVM_Task"
            % found.get("name"))

    def update_disk(self, guest_id, disk_id, changes):
        unknown = set(changes) - {"name", "size"}
        if unknown:
            raise errors.FeatureNotImplemented(
                "VMware cannot change %s of a disk" % ", ".join(
                    sorted(unknown)))
        found = self._guest(guest_id, DISK_PATHS)
        number, disk = self._disk(found, disk_id)
        record = disk_record(number, disk)
        if changes.get("name") not in (None, record["name"]):
            raise errors.FeatureNotImplemented(
                "VMware cannot rename disks: vSphere names the disk file "
                "after the guest")
        if changes.get("size") is None:
            return record

        size = positive_gib(changes["size"], "disk size")
        current = disk_capacity(disk)
        if size * GIB < current:
            raise errors.InvalidArguments(
                "cannot shrink disk %s from %d GiB to %d GiB; disks can only "
                "grow" % (disk_id, record["size"], size))
        if size * GIB == current:
            return record
        self._grow(found, disk, size * GIB)
        after = self._properties(found.ref, DISK_PATHS)
        return disk_record(*self._disk(after, disk_id))

    def _grow(self, found, disk, size_bytes):
        # vSphere refuses to extend a disk that has snapshots; govmomi's
        # simulator accepts it, so the adapter checks.
        if found.get("snapshot") is not None:
            raise errors.InvalidState(
                "cannot grow a disk of guest %s while it has snapshots; "
                "delete them first" % found.get("name"))
        self._reconfigure(found.ref,
                          deviceChange=[grow_disk_spec(disk, size_bytes)])

    def delete_disk(self, guest_id, disk_id):
        found = self._guest(guest_id, DISK_PATHS)
        _number, disk = self._disk(found, disk_id)
        self._reconfigure(found.ref, deviceChange=[
            remove_device_spec(disk, destroy_file=True)])

    # -- media device ----------------------------------------------------------

    def _cdrom(self, found):
        cdroms = cdroms_of(devices_of(found))
        if not cdroms:
            raise errors.InvalidState("guest %s has no CD-ROM drive"
                                      % found.get("name"))
        return cdroms[0]

    def get_media(self, guest_id):
        found = self._guest(guest_id, DISK_PATHS)
        return self._media_record(self._cdrom(found))

    @staticmethod
    def _media_record(cdrom):
        if isinstance(cdrom.backing, Device.VirtualCdrom.IsoBackingInfo):
            return {"name": cdrom.backing.fileName}
        return {"name": None}

    def set_media(self, guest_id, name):
        if name is not None and (not isinstance(name, str) or not name):
            raise errors.InvalidArguments("invalid image name %r" % (name,))
        found = self._guest(guest_id, DISK_PATHS)
        cdrom = self._cdrom(found)
        running = state_of(found.get("runtime.powerState")) == "STARTED"
        if name is None:
            if self._media_record(cdrom)["name"] is None:
                return {"name": None}
            cdrom.backing = empty_cdrom_backing()
            cdrom.connectable = Device.VirtualDevice.ConnectInfo(
                startConnected=False, connected=False,
                allowGuestControl=True)
        else:
            # govmomi's simulator mounts a missing file; vSphere does not.
            path = self._find_iso(name)
            cdrom.backing = Device.VirtualCdrom.IsoBackingInfo(fileName=path)
            cdrom.connectable = Device.VirtualDevice.ConnectInfo(
                startConnected=True, connected=running,
                allowGuestControl=True)
        self._reconfigure(found.ref, deviceChange=[vim.vm.device.
                          VirtualDeviceSpec(operation="edit", device=cdrom)])
        after = self._properties(found.ref, DISK_PATHS)
        return self._media_record(self._cdrom(after))

    def _find_iso(self, name):
        """Return the datastore path of the image ``name``: a datastore
        path that must exist, or a file name that must match one file."""
        datastores = self._retrieve({vim.Datastore: ("name", "browser")})[
            vim.Datastore]
        match = DATASTORE_PATH.match(name)
        if match:
            datastore_name, relative = match.group(1), match.group(2)
            folder, file_name = posixpath.split(relative)
            candidates = [item for item in datastores
                          if item.get("name") == datastore_name]
            if not candidates or not file_name:
                raise errors.EntityNotFound("image %s not found" % name)
            found = self._search_datastore(
                candidates[0], "[%s] %s" % (datastore_name, folder),
                file_name, recursive=False)
        else:
            if "/" in name:
                raise errors.InvalidArguments(
                    "invalid image name %r; give a file name or a datastore "
                    "path such as '[datastore] folder/file.iso'" % name)
            found = []
            for item in datastores:
                found += self._search_datastore(
                    item, "[%s]" % item.get("name"), name, recursive=True)
        if not found:
            raise errors.EntityNotFound("image %s not found on any datastore"
                                        % name)
        if len(found) > 1:
            raise errors.Conflict("%d files are called %s: %s; give the "
                                  "datastore path" % (
                                      len(found), name, ", ".join(found)))
        return found[0]

    def _search_datastore(self, datastore, folder, file_name, recursive):
        """Return the datastore paths of the files called ``file_name``
        under ``folder``."""
        browser = datastore.get("browser")
        spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=[file_name])
        method = "SearchDatastoreSubFolders_Task" if recursive else \
            "SearchDatastore_Task"
        try:
            result = self._run(method, browser, datastorePath=folder,
                               searchSpec=spec)
        except errors.EntityNotFound:
            return []
        results = result if isinstance(result, list) else [result]
        paths = []
        for folder_result in results:
            if folder_result is None:
                continue
            for file_info in folder_result.file or []:
                if file_info.path != file_name:
                    continue
                paths.append(join_datastore_path(folder_result.folderPath,
                                                 file_info.path))
        return paths
