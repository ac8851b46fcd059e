"""Virtual device helpers: positions, controllers and device specs."""

from pyVmomi import vim

from simplestack import errors

Device = vim.vm.device
DeviceSpec = vim.vm.device.VirtualDeviceSpec

#: Disk position offsets and unit counts per controller kind: a disk's
#: number is offset + bus number * units + unit number, so SCSI disks
#: count from 0 as scsi0:0, scsi0:1, ...
CONTROLLER_SLOTS = (
    (Device.VirtualSCSIController, 0, 16),
    (Device.VirtualSATAController, 1000, 30),
    (Device.VirtualNVMEController, 2000, 64),
    (Device.VirtualIDEController, 3000, 2),
)

#: The unit number that a SCSI controller itself takes on its bus.
SCSI_CONTROLLER_UNIT = 7


def devices_of(found):
    return list(found.get("config.hardware.device") or [])


def controllers_by_key(devices):
    return {device.key: device for device in devices
            if isinstance(device, Device.VirtualController)}


def disk_number(disk, controllers):
    """Return the disk's position number, from its controller and unit."""
    controller = controllers.get(disk.controllerKey)
    for kind, offset, units in CONTROLLER_SLOTS:
        if isinstance(controller, kind):
            return offset + controller.busNumber * units + \
                (disk.unitNumber or 0)
    return 9000 + disk.key


def disks_of(devices):
    """Return [(number, disk)] sorted by number."""
    controllers = controllers_by_key(devices)
    disks = [(disk_number(device, controllers), device)
             for device in devices
             if isinstance(device, Device.VirtualDisk)]
    return sorted(disks, key=lambda pair: pair[0])


def cdroms_of(devices):
    return [device for device in devices
            if isinstance(device, Device.VirtualCdrom)]


def nics_of(devices):
    return [device for device in devices
            if isinstance(device, Device.VirtualEthernetCard)]


def free_scsi_slot(devices, pending=()):
    """Return (controller key, unit number) of a free SCSI unit.

    ``pending`` lists (controller key, unit) pairs already promised in the
    same change.
    """
    taken = {(device.controllerKey, device.unitNumber) for device in devices
             if device.controllerKey is not None}
    taken.update(pending)
    controllers = sorted(
        (device for device in devices
         if isinstance(device, Device.VirtualSCSIController)),
        key=lambda controller: controller.busNumber)
    for controller in controllers:
        for unit in range(16):
            if unit == SCSI_CONTROLLER_UNIT:
                continue
            if (controller.key, unit) not in taken:
                return controller.key, unit
    if not controllers:
        raise errors.InvalidState("the guest has no SCSI controller to "
                                  "attach a disk to")
    raise errors.Conflict("every unit of the guest's SCSI controllers is "
                          "in use")


def new_disk_spec(controller_key, unit, size_gib, datastore_name, key=-101):
    """Return the spec that adds a new thin-provisioned disk."""
    disk = Device.VirtualDisk(
        key=key, controllerKey=controller_key, unitNumber=unit,
        capacityInKB=size_gib * 1024 * 1024,
        backing=Device.VirtualDisk.FlatVer2BackingInfo(
            diskMode="persistent", thinProvisioned=True,
            fileName="[%s]" % datastore_name))
    return DeviceSpec(operation=DeviceSpec.Operation.add,
                      fileOperation=DeviceSpec.FileOperation.create,
                      device=disk)


def grow_disk_spec(disk, size_bytes):
    disk.capacityInKB = size_bytes // 1024
    disk.capacityInBytes = size_bytes
    return DeviceSpec(operation=DeviceSpec.Operation.edit, device=disk)


def remove_device_spec(device, destroy_file=False):
    spec = DeviceSpec(operation=DeviceSpec.Operation.remove, device=device)
    if destroy_file:
        spec.fileOperation = DeviceSpec.FileOperation.destroy
    return spec


def empty_cdrom_backing():
    return Device.VirtualCdrom.RemotePassthroughBackingInfo(
        deviceName="", exclusive=False)


def new_scsi_controller_spec(key=-100):
    controller = Device.ParaVirtualSCSIController(
        key=key, busNumber=0,
        sharedBus=Device.VirtualSCSIController.Sharing.noSharing)
    return DeviceSpec(operation=DeviceSpec.Operation.add, device=controller)


def new_cdrom_spec(ide_key, key=-102):
    """Return the spec of an empty CD-ROM drive on the IDE controller
    ``ide_key`` (200, the first of the two that vSphere gives every VM)."""
    cdrom = Device.VirtualCdrom(
        key=key, controllerKey=ide_key, unitNumber=0,
        backing=empty_cdrom_backing(),
        connectable=Device.VirtualDevice.ConnectInfo(
            startConnected=False, connected=False, allowGuestControl=True))
    return DeviceSpec(operation=DeviceSpec.Operation.add, device=cdrom)


def nic_backing(network):
    """Return the NIC backing of ``network``, a Found from _networks."""
    if isinstance(network.ref, vim.dvs.DistributedVirtualPortgroup):
        return Device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(
                portgroupKey=network.get("key"),
                switchUuid=network.get("switch_uuid")))
    if isinstance(network.ref, vim.OpaqueNetwork):
        raise errors.FeatureNotImplemented(
            "the VMware adapter cannot attach NICs to opaque (NSX) networks")
    return Device.VirtualEthernetCard.NetworkBackingInfo(
        deviceName=network.get("name"), network=network.ref)


def new_nic_spec(network, mac=None, key=-103):
    nic = Device.VirtualVmxnet3(
        key=key, backing=nic_backing(network),
        connectable=Device.VirtualDevice.ConnectInfo(
            startConnected=True, connected=False, allowGuestControl=True))
    if mac:
        nic.addressType = "manual"
        nic.macAddress = mac
    else:
        nic.addressType = "generated"
    return DeviceSpec(operation=DeviceSpec.Operation.add, device=nic)
