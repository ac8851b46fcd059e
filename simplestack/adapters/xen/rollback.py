"""Undoing the first steps of a change whose later step failed.

XAPI has no transactions: an operation made of several calls (create a VM,
then set its memory, then add a disk) can fail half-way. Each step
registers how to undo itself, and a failure undoes the steps done so far,
newest first, before the error goes to the caller.
"""

import logging

from simplestack import errors

logger = logging.getLogger(__name__)


class Rollback:
    """A context manager that runs the registered undo steps on error."""

    def __init__(self, operation):
        self.operation = operation
        self._steps = []

    def add(self, description, function, *args):
        """Register ``function(*args)`` as the undo of the last step."""
        self._steps.append((description, function, args))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            return False
        for description, function, args in reversed(self._steps):
            try:
                function(*args)
            except errors.SimplestackError as error:
                logger.warning("%s failed, and undoing its step '%s' failed "
                               "too: %s", self.operation, description,
                               error.message)
        return False
