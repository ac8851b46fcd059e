"""The XVA format: a tar stream of ``ova.xml`` and each disk in 1 MiB blocks.

Layout, as XAPI writes it:
    ova.xml                    an XML-RPC struct {version, objects}; each
                               object is {class, id: "Ref:N", snapshot: record},
                               and references between exported objects use
                               those ids
    Ref:N/00000000             block 0 of disk Ref:N (1 MiB)
    Ref:N/00000000.checksum    the block's SHA-1, in hex
    ...                        blocks of zeros are left out, except the
                               first and the last
"""

import hashlib
import io
import tarfile
import time

from . import wire
from .disks import data_extents
from .schema import CLASSES, NULL_REF

BLOCK = 1024 * 1024
EXPORT_VERSION = "2"


def _info(name, size):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = int(time.time())
    info.mode = 0o644
    return info


def add_member(archive, name, data):
    archive.addfile(_info(name, len(data)), io.BytesIO(data))


def exported_objects(db, vm):
    """Return (objects, disks): the ova.xml objects, and [(id, VDI uuid, size)]."""
    ids = {}

    def ref_id(ref):
        if ref not in ids:
            ids[ref] = "Ref:%d" % len(ids)
        return ids[ref]

    vm_record = db.record("VM", vm)
    ref_id(vm)
    vbds, vdis, vifs, networks, srs = [], [], [], [], []
    for vbd in vm_record["VBDs"]:
        record = db.record("VBD", vbd)
        if record["type"] == "CD" or record["empty"]:
            # ISO images stay in their library: the VBD goes out empty.
            record.update(VDI=NULL_REF, empty=True)
        else:
            vdis.append(record["VDI"])
            srs.append(db.get("VDI", record["VDI"])["SR"])
        vbds.append((vbd, record))
    for vif in vm_record["VIFs"]:
        record = db.record("VIF", vif)
        vifs.append((vif, record))
        networks.append(record["network"])

    objects = []

    def add(cls, ref, record):
        objects.append({"class": cls, "id": ref_id(ref), "snapshot": record})

    for sr in dict.fromkeys(srs):
        ref_id(sr)
    for vdi in vdis:
        ref_id(vdi)
    for network in dict.fromkeys(networks):
        ref_id(network)
    for vbd, _ in vbds:
        ref_id(vbd)
    for vif, _ in vifs:
        ref_id(vif)

    def translate(cls, record):
        result = {}
        for name, field in CLASSES[cls].items():
            value = record[name]
            if field.type[0] == "ref" and value in ids:
                value = ids[value]
            elif field.type[0] == "set" and field.type[1][0] == "ref":
                value = [ids.get(v, v) for v in value if v in ids]
            result[name] = value
        return result

    add("VM", vm, translate("VM", vm_record))
    for vbd, record in vbds:
        add("VBD", vbd, translate("VBD", record))
    for vdi in vdis:
        add("VDI", vdi, translate("VDI", db.record("VDI", vdi)))
    for sr in dict.fromkeys(srs):
        add("SR", sr, translate("SR", db.record("SR", sr)))
    for vif, record in vifs:
        add("VIF", vif, translate("VIF", record))
    for network in dict.fromkeys(networks):
        add("network", network, translate("network", db.record("network", network)))

    disks = [(ids[vdi], db.get("VDI", vdi)["uuid"], db.get("VDI", vdi)["virtual_size"])
             for vdi in vdis]
    return objects, disks


def ova_xml(objects, host_record):
    software = host_record["software_version"]
    document = {
        "version": {
            "hostname": host_record["hostname"],
            "date": software.get("date", ""),
            "product_version": software.get("product_version", ""),
            "product_brand": software.get("product_brand", ""),
            "build_number": software.get("build_number", ""),
            "xapi_major": str(host_record["API_version_major"]),
            "xapi_minor": str(host_record["API_version_minor"]),
            "export_vsn": EXPORT_VERSION,
        },
        "objects": objects,
    }
    return wire.value_fragment(document).encode("utf-8")


def write_disk(archive, disk_id, path, size, cancelled):
    """Append one disk's blocks; ``cancelled()`` is checked between blocks."""
    last = max((size - 1) // BLOCK, 0)
    with open(path, "rb") as stream:
        wanted = {0, last}
        for start, end in data_extents(stream.fileno(), size):
            wanted.update(range(start // BLOCK, (end - 1) // BLOCK + 1))
        for index in sorted(wanted):
            if cancelled():
                return False
            stream.seek(index * BLOCK)
            block = stream.read(BLOCK)
            block += b"\0" * (min(BLOCK, size - index * BLOCK) - len(block))
            name = "%s/%08d" % (disk_id, index)
            add_member(archive, name, block)
            add_member(archive, name + ".checksum",
                       hashlib.sha1(block).hexdigest().encode("ascii"))
    return True
