"""OVA import through an HTTP NFC lease, and export's missing method.

govmomi's simulator accepts the disk uploads of an import lease and
discards their bytes, and it lacks ExportVm altogether.
"""

import io
import tarfile

import pytest

from simplestack import errors
from tests import backends

# A guest with one CPU, 64 MiB and one 1 GiB disk, in OVF 1.0.
OVF_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
 xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
 xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:id="file1" ovf:href="disk1.vmdk" ovf:size="{disk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="1"
     ovf:capacityAllocationUnits="byte * 2^30"
     ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="1"><Info>Operating system</Info></OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:ElementName>1 virtual CPU</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:ElementName>64 MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>64</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""


def make_ova(name="sstest-ova", disk=b"KDMV" + b"\0" * 65532):
    """Return the bytes of an OVA archive: descriptor, then the disk."""
    descriptor = OVF_TEMPLATE.format(name=name, disk_size=len(disk)).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) \
            as archive:
        for member_name, data in (("%s.ovf" % name, descriptor),
                                  ("disk1.vmdk", disk)):
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def imported(adapter):
    """Guest ids to delete after the test."""
    guest_ids = []
    yield guest_ids
    for guest_id in guest_ids:
        adapter.delete_guest(guest_id)


def test_import_ova_through_lease(adapter, imported, vmware_kit):
    image = make_ova()
    name = backends.unique_name("imported")

    record = adapter.import_guest(io.BytesIO(image), len(image),
                                  "application/ova", name=name)
    imported.append(record["id"])

    assert record["name"] == name
    assert record["memory"] == 64
    assert record["cpus"] == 1
    assert record["hdd"] == 1
    assert record["state"] == "STOPPED"
    assert name in vmware_kit.guest_names()


def test_import_takes_name_from_descriptor(adapter, imported):
    name = backends.unique_name("ovf")
    image = make_ova(name=name)

    record = adapter.import_guest(io.BytesIO(image), len(image), None)
    imported.append(record["id"])

    assert record["name"] == name


def test_import_of_taken_name_rejected(adapter, make_guest, vmware_kit):
    taken = make_guest()["name"]
    image = make_ova()
    names = vmware_kit.guest_names()

    with pytest.raises(errors.Conflict):
        adapter.import_guest(io.BytesIO(image), len(image), None, name=taken)

    assert vmware_kit.guest_names() == names


@pytest.mark.parametrize("head, error", [
    (b"QFI\xfb" + b"\0" * 1020, errors.FeatureNotImplemented),
    (b"x" * 1024, errors.InvalidArguments),
])
def test_non_ova_rejected(adapter, vmware_kit, head, error):
    names = vmware_kit.guest_names()

    with pytest.raises(error):
        adapter.import_guest(io.BytesIO(head), len(head), None,
                             name=backends.unique_name("bad"))

    assert vmware_kit.guest_names() == names


def test_short_ova_rejected(adapter, vmware_kit):
    image = make_ova(disk=b"\0" * 200000)[:20000]
    names = vmware_kit.guest_names()

    with pytest.raises(errors.InvalidArguments):
        adapter.import_guest(io.BytesIO(image), len(image) + 300000, None,
                             name=backends.unique_name("short"))

    assert vmware_kit.guest_names() == names


def test_export_missing_method_is_501(adapter, make_guest):
    guest_id = make_guest()["id"]

    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.export_guest(guest_id)

    assert raised.value.code == "MethodNotFound"
    assert "ExportVm" in raised.value.message


def test_export_of_running_guest_rejected(adapter, make_guest):
    guest_id = make_guest()["id"]
    adapter.set_power(guest_id, "start")

    with pytest.raises(errors.InvalidState) as raised:
        adapter.export_guest(guest_id)

    assert "STARTED" in raised.value.message
