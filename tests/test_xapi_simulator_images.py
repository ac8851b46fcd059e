"""The XAPI simulator's memory and disk folder during image transfers.

Uses the helpers and the session-scoped simulator of test_xapi_simulator.
"""

import os
import subprocess
import sys

from tests.simulators.fixtures import XapiSimulator, xapi_simulator  # noqa: F401
from tests.test_xapi_simulator import (  # noqa: F401
    MIB, guest, open_session, transfer, unique, upload_disk, xapi_session)


def minor_faults(pid):
    """Return the minor page faults of process ``pid`` so far (Linux)."""
    with open("/proc/%d/stat" % pid) as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[7])


def test_xva_export_reuses_heap_memory(xapi_simulator, xapi_session):
    # The simulator fixes glibc's malloc thresholds at start. With glibc's
    # moving thresholds, each export of this disk took about 37000 page
    # faults (145 MiB of fresh pages), because its 1 MiB blocks came from
    # new mappings.
    xapi, session = xapi_session.xenapi, xapi_session._session
    pid = xapi_simulator.process.pid
    with guest(xapi) as vm:
        disk = [xapi.VBD.get_VDI(v) for v in xapi.VM.get_VBDs(vm)
                if xapi.VBD.get_type(v) == "Disk"][0]
        upload_disk(xapi_simulator, xapi_session, disk, os.urandom(MIB) * 64)
        faults = []
        for _ in range(2):
            before = minor_faults(pid)
            response, archive = transfer(xapi_simulator, "GET", "/export?session_id=%s&ref=%s"
                                         % (session, vm))
            assert response.status == 200
            assert len(archive) > 64 * MIB
            faults.append(minor_faults(pid) - before)
    assert faults[1] < 4096, faults


def test_disk_folder_keeps_vdi_contents(tmp_path):
    simulator = XapiSimulator("--http", "--disk-folder", str(tmp_path), http=True).start()
    try:
        session = open_session(simulator)
        xapi = session.xenapi
        sr = xapi.pool.get_default_SR(xapi.pool.get_all()[0])
        vdi = xapi.VDI.create({"name_label": unique("disk"), "SR": sr,
                               "virtual_size": str(4 * MIB), "type": "user",
                               "sharable": False, "read_only": False,
                               "other_config": {}})
        data = os.urandom(MIB)
        upload_disk(simulator, session, vdi, data)
        folders = list(tmp_path.iterdir())
        assert len(folders) == 1
        image = folders[0] / ("%s.img" % xapi.VDI.get_uuid(vdi))
        with open(image, "rb") as stream:
            assert stream.read(MIB) == data
        session.xenapi.session.logout()
    finally:
        simulator.stop()
    assert list(tmp_path.iterdir()) == []


def test_disk_folder_must_exist(tmp_path):
    missing = str(tmp_path / "missing")
    result = subprocess.run([sys.executable, "-m", "tests.simulators", "xapi",
                             "--disk-folder", missing],
                            capture_output=True, text=True, timeout=60,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 2
    assert "is not an existing folder" in result.stderr
