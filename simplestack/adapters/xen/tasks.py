"""XAPI tasks and the HTTP handlers that stream images.

A stream through ``/import`` or ``/export`` is followed by a task that
the client creates: create the task, pass its id with the request, stream,
poll the task until it leaves ``pending``, read its result or error, and
destroy it. A stream the client abandons cancels the task first.
"""

import logging
import time
import xmlrpc.client
from urllib.parse import urlencode

import XenAPI

from simplestack import errors
from simplestack.adapters.xen.constants import TASK_LABEL

logger = logging.getLogger(__name__)

#: Pauses between polls of a task, in seconds: short at first, since the
#: task often ends with the stream, then at most POLL_MAX apart.
POLL_FIRST = 0.05
POLL_MAX = 1.0

UNFINISHED_STATUSES = ("pending", "cancelling")


def task_result_refs(result):
    """Return the references in a task result.

    A task result is an XML-RPC value fragment such as
    ``<value><array><data><value>OpaqueRef:..</value></data></array></value>``.
    """
    if not result:
        return []
    document = ("<methodResponse><params><param>%s</param></params>"
                "</methodResponse>" % result)
    (value,), _method = xmlrpc.client.loads(document)
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


class TasksMixin:
    """Methods of XenAdapter for tasks and HTTP handler requests."""

    def _create_task(self, description):
        return self._call("task.create", TASK_LABEL, description)

    def _wait_for_task(self, task_ref, operation):
        """Poll the task until it ends and return its record; raise
        HypervisorTimeout when it runs longer than ``read_timeout``."""
        deadline = time.monotonic() + self.config["read_timeout"]
        pause = POLL_FIRST
        while True:
            task = self._call("task.get_record", task_ref)
            if task["status"] not in UNFINISHED_STATUSES:
                return task
            if time.monotonic() >= deadline:
                raise errors.HypervisorTimeout(
                    "%s at %s did not finish %s within %s s"
                    % (self.hypervisor_name, self.host, operation,
                       self.config["read_timeout"]))
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX)

    def _task_result(self, task, operation):
        """Return the result of an ended task, or raise its error."""
        if task["status"] == "success":
            return task["result"]
        info = [str(item) for item in task["error_info"]] or [
            "TASK_%s" % str(task["status"]).upper()]
        raise self._translate_failure(XenAPI.Failure(info), operation)

    def _end_task(self, task_ref, cancel):
        """Cancel (when ``cancel``) and destroy the task, logging failures
        instead of raising them."""
        if cancel:
            try:
                self._call("task.cancel", task_ref)
            except errors.SimplestackError as error:
                logger.warning("cancelling a task on %s failed: %s",
                               self.host, error.message)
        try:
            self._call("task.destroy", task_ref)
        except errors.SimplestackError as error:
            logger.warning("destroying a task on %s failed: %s", self.host,
                           error.message)

    def _handler_path(self, handler, **query):
        """Return the path of an HTTP handler, with the session and task.

        The session id authenticates the request, so the path is never
        logged.
        """
        query = dict(query, session_id=self.session.handle)
        return "/%s?%s" % (handler, urlencode(query))
