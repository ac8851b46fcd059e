"""VDI contents: one sparse file per VDI under a temporary folder."""

import os
import shutil
import tempfile

CHUNK = 1024 * 1024


def data_extents(descriptor, size):
    """Yield (start, end) of the parts of a sparse file that hold data.

    Uses SEEK_DATA and SEEK_HOLE; a file system without them reports the
    whole file as data, which is slower but still correct.
    """
    offset = 0
    while offset < size:
        try:
            start = os.lseek(descriptor, offset, os.SEEK_DATA)
        except OSError:
            # ENXIO: no data after offset.
            return
        end = min(os.lseek(descriptor, start, os.SEEK_HOLE), size)
        if start >= size:
            return
        yield start, end
        offset = end


class DiskStore:
    def __init__(self, folder=None):
        self.owned = folder is None
        self.folder = folder or tempfile.mkdtemp(prefix="xapi-simulator-")
        os.makedirs(self.folder, exist_ok=True)

    def path(self, vdi_uuid):
        return os.path.join(self.folder, "%s.img" % vdi_uuid)

    def create(self, vdi_uuid, size):
        # truncate() makes a sparse file: no blocks are written.
        with open(self.path(vdi_uuid), "wb") as stream:
            stream.truncate(size)

    def resize(self, vdi_uuid, size):
        with open(self.path(vdi_uuid), "r+b") as stream:
            stream.truncate(size)

    def remove(self, vdi_uuid):
        try:
            os.unlink(self.path(vdi_uuid))
        except FileNotFoundError:
            pass

    def copy(self, source_uuid, target_uuid, size):
        """Copy the data extents only, so the copy stays sparse."""
        with open(self.path(source_uuid), "rb") as source, \
                open(self.path(target_uuid), "wb") as target:
            target.truncate(size)
            for start, end in data_extents(source.fileno(), size):
                source.seek(start)
                target.seek(start)
                offset = start
                while offset < end:
                    chunk = source.read(min(CHUNK, end - offset))
                    if not chunk:
                        break
                    target.write(chunk)
                    offset += len(chunk)

    def open(self, vdi_uuid, mode="rb"):
        return open(self.path(vdi_uuid), mode)

    def close(self):
        if self.owned:
            shutil.rmtree(self.folder, ignore_errors=True)
