"""SpiffWorkflow's record of a task's change of state, built only when its logger would write it.

``Task._set_state`` (SpiffWorkflow 3.2) logs every change of a task's state at INFO, and every
setting of the same state at DEBUG, on the ``spiff.task`` logger. It builds the record's details
first (``Task.collect_log_extras``: the spec's and workflow's names, the task's parent looked up
by its UUID, the state's name) and a message, whether or not anything will write them; a run of
a short process changes its tasks' states a dozen times per move. Nothing in tiergate turns that
logger on, so the details are thrown away every time.

``install`` (done on import) replaces ``_set_state`` with one that does the same in the same
order (the state, its ``last_state_change`` stamp, the check against the current state), notes the
task as touched in a tracked workflow (``tiergate.bpmn.touched``), and asks the logger first, as
``Logger.info`` itself would, before building the record. With the logger on, the same records
are written with the same details (``tests/test_tier1_statelog.py`` compares them with
SpiffWorkflow's own function).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from SpiffWorkflow import task as spiff_task
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn.touched import SINCE_PRUNE, TOUCHED, became_ready

#: SpiffWorkflow's own function, kept for the tests that compare the two.
ORIGINAL = Task._set_state
_LOG = spiff_task.logger
_READY = TaskState.READY


def set_state(self: Any, value: int) -> None:
    """``Task._set_state``, with the log record's details made only when the record is written."""
    if value != self._state:
        elapsed = time.time() - self.last_state_change
        self.last_state_change = time.time()
        self._state = value
        workflow = self.workflow  # a kept workflow's next dump, and its next prune, look at this task
        touched = getattr(workflow, TOUCHED, None)
        if touched is not None:
            touched[id(self)] = self
        since = getattr(workflow, SINCE_PRUNE, None)
        if since is not None:
            since[id(self)] = self
        if value == _READY:
            became_ready(self)
        if _LOG.isEnabledFor(logging.INFO):
            _LOG.info(f"State changed to {TaskState.get_name(value)}",
                      extra=self.collect_log_extras({"elapsed": elapsed}))
    elif _LOG.isEnabledFor(logging.DEBUG):
        _LOG.debug(f"State set to {TaskState.get_name(value)}", extra=self.collect_log_extras())


def install() -> None:
    Task._set_state = set_state  # type: ignore[method-assign]


install()
