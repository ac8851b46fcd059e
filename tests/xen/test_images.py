"""XVA export and import through XAPI's HTTP handlers and their tasks."""

import io
import tarfile
import threading
import time

import pytest

from simplestack import errors
from tests import backends


@pytest.fixture
def stats(xapi_simulator):
    xapi_simulator.reset_stats()
    yield xapi_simulator
    xapi_simulator.clear_faults()


def task_count(xen_kit):
    with xen_kit.session() as xapi:
        return len(xapi.task.get_all())


def export_bytes(adapter, guest_id):
    image = adapter.export_guest(guest_id)
    try:
        return b"".join(image)
    finally:
        image.close()


def test_export_is_xva_and_ends_task(adapter, make_guest, xen_kit, stats):
    guest = make_guest()

    image = adapter.export_guest(guest["id"])
    try:
        data = b"".join(image)
    finally:
        image.close()

    assert image.content_type == "application/x-xva"
    assert image.filename == guest["id"] + ".xva"
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getnames()[0] == "ova.xml"
    calls = stats.stats()["calls"]
    assert calls["task.create"] == 1
    assert calls["task.destroy"] == 1
    assert "task.cancel" not in calls
    assert task_count(xen_kit) == 0


def test_abandoned_export_cancels_task(adapter, make_guest, xen_kit, stats):
    guest = make_guest(hdd=2)

    image = adapter.export_guest(guest["id"])
    chunks = iter(image)
    assert next(chunks)
    image.close()

    calls = stats.stats()["calls"]
    assert calls["task.cancel"] == 1
    assert calls["task.destroy"] == 1
    assert task_count(xen_kit) == 0


def test_export_of_running_guest_rejected(adapter, make_guest, stats):
    guest = make_guest()
    adapter.set_power(guest["id"], "start")

    with pytest.raises(errors.InvalidState) as raised:
        adapter.export_guest(guest["id"])

    assert "STARTED" in raised.value.message
    assert "task.create" not in stats.stats()["calls"]


def test_import_round_trip(adapter, make_guest, xen_kit, stats):
    guest = make_guest(cpus=2, memory=96)
    data = export_bytes(adapter, guest["id"])
    name = backends.unique_name("imported")

    imported = adapter.import_guest(io.BytesIO(data), len(data),
                                    "application/x-xva", name=name)
    try:
        assert imported["name"] == name
        assert imported["id"] != guest["id"]
        assert imported["cpus"] == 2
        assert imported["memory"] == 96
        assert imported["hdd"] == 1
        assert task_count(xen_kit) == 0
    finally:
        adapter.delete_guest(imported["id"])


def with_ova_xml(data, change):
    """Return the XVA ``data`` with ``change(text)`` applied to ova.xml."""
    source = tarfile.open(fileobj=io.BytesIO(data))
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w",
                      format=tarfile.USTAR_FORMAT) as archive:
        for member in source.getmembers():
            body = source.extractfile(member).read()
            if member.name == "ova.xml":
                body = change(body.decode("utf-8")).encode("utf-8")
            info = tarfile.TarInfo(member.name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return output.getvalue()


def test_import_of_default_template_image(adapter, make_guest, xen_kit):
    """An image of a template shipped with XAPI imports as a user
    template: the copy loses other_config:default_template, which would
    hide it from guest requests and make XAPI reject its VM.destroy."""
    guest = make_guest()
    marker = "<member><name>default_template</name><value>true</value></member>"

    def mark_as_shipped_template(text):
        flag = "<name>is_a_template</name><value><boolean>%d</boolean>"
        assert flag % 0 in text
        text = text.replace(flag % 0, flag % 1)
        other_config = "<name>other_config</name><value><struct>"
        assert other_config in text
        return text.replace(other_config, other_config + marker)

    data = with_ova_xml(export_bytes(adapter, guest["id"]),
                        mark_as_shipped_template)

    imported = adapter.import_guest(io.BytesIO(data), len(data),
                                    "application/x-xva",
                                    name=backends.unique_name("template"))
    try:
        with xen_kit.session() as xapi:
            vm = xapi.VM.get_record(xapi.VM.get_by_uuid(imported["id"]))
        assert vm["is_a_template"] is True
        assert "default_template" not in vm["other_config"]
        assert adapter.get_guest(imported["id"]) == imported
    finally:
        adapter.delete_guest(imported["id"])


def test_import_into_named_storage(adapter, make_guest, xen_kit):
    guest = make_guest()
    data = export_bytes(adapter, guest["id"])
    storage = [record for record in adapter.list_storages()
               if record["name"] == "Local storage"][0]

    imported = adapter.import_guest(io.BytesIO(data), len(data), None,
                                    storage_id=storage["id"])
    try:
        disk = adapter.list_disks(imported["id"])[0]
        with xen_kit.session() as xapi:
            vdi = xapi.VDI.get_by_uuid(disk["extra_info"])
            sr = xapi.VDI.get_SR(vdi)
            assert xapi.SR.get_uuid(sr) == storage["id"]
    finally:
        adapter.delete_guest(imported["id"])


def test_short_upload_cancels_task(adapter, make_guest, xen_kit, stats):
    guest = make_guest()
    data = export_bytes(adapter, guest["id"])
    names = xen_kit.guest_names()
    stats.reset_stats()

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.import_guest(io.BytesIO(data[:len(data) // 2]), len(data),
                             None, name=backends.unique_name("short"))

    assert "%d of %d" % (len(data) // 2, len(data)) in raised.value.message
    assert stats.stats()["calls"]["task.cancel"] == 1
    assert task_count(xen_kit) == 0
    assert xen_kit.guest_names() == names


# An ova.xml that describes no VM at all.
EMPTY_OVA_XML = (
    b"<value><struct>"
    b"<member><name>version</name><value><struct></struct></value></member>"
    b"<member><name>objects</name><value><array><data></data></array>"
    b"</value></member>"
    b"</struct></value>")


def test_xva_without_vm_fails_on_task(adapter, xen_kit):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("ova.xml")
        body = EMPTY_OVA_XML
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    data = archive.getvalue()
    names = xen_kit.guest_names()

    with pytest.raises(errors.InvalidArguments) as raised:
        adapter.import_guest(io.BytesIO(data), len(data), None)

    assert raised.value.code.startswith("IMPORT_ERROR")
    assert task_count(xen_kit) == 0
    assert xen_kit.guest_names() == names


@pytest.mark.parametrize("head, error", [
    (b"QFI\xfb" + b"\0" * 508, errors.FeatureNotImplemented),
    (b"x" * 512, errors.InvalidArguments),
])
def test_non_xva_rejected_before_any_task(adapter, stats, head, error):
    with pytest.raises(error):
        adapter.import_guest(io.BytesIO(head), len(head), None)

    assert "task.create" not in stats.stats()["calls"]


def test_ova_rejected(adapter, stats):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("appliance.ovf")
        info.size = 0
        tar.addfile(info, io.BytesIO())
    data = archive.getvalue()

    with pytest.raises(errors.FeatureNotImplemented) as raised:
        adapter.import_guest(io.BytesIO(data), len(data), None)

    assert "appliance.ovf" in raised.value.message



def test_handler_failed_export_task_not_cancelled(adapter, make_guest, xen_kit,
                                                  stats, caplog):
    # The guest starts after the service's state check and before XAPI's
    # export handler runs. XAPI fails the task before the handler responds
    # with an error, and it rejects the cancel of an ended task, so the
    # task is only destroyed.
    guest = make_guest()
    stats.set_fault("task.create", "hang", times=1, seconds=1.0)
    raised = []

    def export():
        try:
            adapter.export_guest(guest["id"])
        except errors.SimplestackError as error:
            raised.append(error)

    with caplog.at_level("WARNING", logger="simplestack"):
        thread = threading.Thread(target=export)
        thread.start()
        time.sleep(0.3)
        with xen_kit.session() as xapi:
            xapi.VM.start(xapi.VM.get_by_uuid(guest["id"]), False, False)
        thread.join(10)

    assert not thread.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], errors.InvalidState), raised[0].message
    calls = stats.stats()["calls"]
    assert "task.cancel" not in calls
    assert calls["task.destroy"] == 1
    assert task_count(xen_kit) == 0
    assert not [record for record in caplog.records
                if "task" in record.getMessage()]
