"""gunicorn server hooks for prometheus_client's multiprocess mode.

``production.ini`` names them in its ``[server:main]`` section, which
``pserve`` hands to gunicorn. With ``gunicorn --paste`` they go in a gunicorn
configuration file instead.
"""

import glob
import logging
import os

from simplestack.metrics import MULTIPROCESS_ENVIRONMENT_VARIABLE

logger = logging.getLogger(__name__)


def on_starting(server):
    """Remove the metric files that an earlier run left behind.

    Runs in the master before any worker starts. Without it, /metrics
    would add the counts of processes from before the restart.
    """
    directory = os.environ.get(MULTIPROCESS_ENVIRONMENT_VARIABLE)
    if not directory:
        return
    stale = glob.glob(os.path.join(directory, "*.db"))
    for path in stale:
        os.remove(path)
    if stale:
        logger.info("removed %d metric files of an earlier run from %s",
                    len(stale), directory)


def child_exit(server, worker):
    """Drop the live gauges of a worker that exited, in the master."""
    if not os.environ.get(MULTIPROCESS_ENVIRONMENT_VARIABLE):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
