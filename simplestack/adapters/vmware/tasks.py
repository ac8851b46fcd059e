"""Waiting for vSphere tasks.

A task's state is read through the PropertyCollector (WaitForUpdatesEx on
``info.state``, ``info.error`` and ``info.result``), never through
``task.info``: govmomi's simulator sets ``info.entity`` of snapshot tasks
to the snapshot, which pyVmomi 9.1 cannot deserialize into TaskInfo, and
pyVim's WaitForTask reads ``task.info``.
"""

import time

from pyVmomi import vmodl

from simplestack import errors

PropertyCollector = vmodl.query.PropertyCollector

TASK_PATHS = ["info.state", "info.error", "info.result"]


class TasksMixin:
    """Methods of VmwareAdapter that wait for tasks."""

    def _wait(self, task, method):
        """Wait for ``task`` (started by the vSphere ``method``) to end
        and return its result; raise its fault translated."""
        collector = self.content.propertyCollector
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=task, skip=False)],
            propSet=[PropertyCollector.PropertySpec(
                type=type(task), pathSet=TASK_PATHS)])
        task_filter = collector.CreateFilter(spec, partialUpdates=False)
        # Each wait returns before the read timeout, so that a quiet task
        # is not mistaken for a dead server.
        wait_seconds = max(1, int(min(60, self.config["read_timeout"] / 2)))
        options = PropertyCollector.WaitOptions(maxWaitSeconds=wait_seconds)
        deadline = time.monotonic() + self.config["task_timeout"]
        values = {}
        version = ""
        try:
            while values.get("info.state") not in ("success", "error"):
                if time.monotonic() > deadline:
                    raise errors.HypervisorTimeout(
                        "%s did not finish %s within %s s" % (
                            self.hypervisor_name, method,
                            self.config["task_timeout"]))
                update = collector.WaitForUpdatesEx(version, options)
                if update is None:
                    continue
                version = update.version
                for filter_update in update.filterSet:
                    for object_update in filter_update.objectSet:
                        for change in object_update.changeSet:
                            values[change.name] = change.val
        finally:
            task_filter.DestroyPropertyFilter()

        if values["info.state"] == "error":
            fault = values.get("info.error")
            if fault is None:
                raise errors.HypervisorError(
                    "%s failed in %s without a fault" % (
                        self.hypervisor_name, method))
            raise self.translate_fault(fault, method) from fault
        return values.get("info.result")

    def _run(self, method, target, *args, **kwargs):
        """Call the task method ``method`` of ``target`` and wait for it."""
        task = getattr(target, method)(*args, **kwargs)
        return self._wait(task, method)
