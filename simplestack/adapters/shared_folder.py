"""The folder of the files that the service processes of this user on the
machine share: the export marks and guest locks (lock files), and the
change logs of the guest list caches.

Everything in it reaches the processes of one machine and user with the
same temporary folder (tempfile.gettempdir(), so TMPDIR).
"""

import logging
import os
import stat
import tempfile
import threading

logger = logging.getLogger(__name__)

#: The folder, private to the user of the process. Its name comes from the
#: export marks, its first use.
SHARED_DIR = os.path.join(tempfile.gettempdir(),
                          "simplestack-export-marks-%d" % os.getuid())

#: Description of the folder's files, for warnings.
SHARED_FILES = "guest locks, export marks and list change logs"

_warned = set()
_warned_lock = threading.Lock()


def warn_once(what, reason, error):
    """Log once per ``reason`` that ``what`` (a plural) cover this process
    only."""
    with _warned_lock:
        if reason in _warned:
            return
        _warned.add(reason)
    logger.warning("%s cover this process only, because %s: %s", what,
                   reason, error)


def private_folder():
    """Return SHARED_DIR, created if missing, or None when it is not a
    folder of this user that only this user can write."""
    try:
        os.mkdir(SHARED_DIR, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        warn_once(SHARED_FILES, "creating %s failed" % SHARED_DIR, error)
        return None
    info = os.lstat(SHARED_DIR)
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
            or info.st_mode & 0o022):
        warn_once(SHARED_FILES,
                  "%s is not a private folder of this user" % SHARED_DIR,
                  "mode %o, owner %d" % (info.st_mode, info.st_uid))
        return None
    return SHARED_DIR
