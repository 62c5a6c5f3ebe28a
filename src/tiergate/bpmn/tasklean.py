"""Two of SpiffWorkflow's tree walks per run, answered from the task dictionary when the tree is small.

A short process walks SpiffWorkflow's task tree twice a run for answers a look at its handful
of tasks gives (``TaskIterator``: a Python generator step and a list of children looked up by
UUID, hashed in Python, per task):

* **A catching event that runs** (``CatchingEvent._run_hook``: a start event, a timer, a
  message catch) resets the event of every task of its spec in its own subtree, itself
  included. When no other task of the workflow has that spec, the walk finds the event's task
  alone: it is reset twice, as SpiffWorkflow does (each reset changes only its own task's
  internal data, the same way each time).
* **The process's end join** (``_EndJoin._check_threshold_unstructured``) fires when the walk
  from the root (not going below a task of the end join's spec) finds no unfinished task but
  itself. The same tasks are those of the dictionary whose chain of parents reaches the root
  without passing such a task: one unfinished is enough to wait.

Only for a tree of fewer than ``SMALL`` tasks (its depth is then far below the walks' limit of
1,000), and only when each task's chain of parents is in the dictionary and reaches the root
(as in every tree SpiffWorkflow and ``tiergate.bpmn.persistence.prune`` leave); else
SpiffWorkflow's own function answers. ``install`` (done on import) puts them in place;
``tests/test_tier1_tasklean.py`` holds each answer to SpiffWorkflow's, and whole runs to
runs with SpiffWorkflow's own functions.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.util.task import TaskState

#: Trees of this many tasks or more are walked by SpiffWorkflow as before.
SMALL = 64
_UNFINISHED = TaskState.NOT_FINISHED_MASK

#: SpiffWorkflow's own functions, kept for the tests that compare the two and for large trees.
ORIGINAL_RUN_HOOK = CatchingEvent._run_hook
ORIGINAL_END_JOIN = _EndJoin._check_threshold_unstructured


def catching_run_hook(self: Any, my_task: Any) -> Any:
    """``CatchingEvent._run_hook``, without the walk when the event's task is its spec's only task."""
    tasks = my_task.workflow.tasks
    if len(tasks) >= SMALL:
        return ORIGINAL_RUN_HOOK(self, my_task)
    name = self.name
    for task in tasks.values():
        if task.task_spec.name == name and task is not my_task:
            return ORIGINAL_RUN_HOOK(self, my_task)
    definition = self.event_definition
    definition.update_task_data(my_task)
    my_task.task_spec.event_definition.reset(my_task)  # (the walk's one task)
    definition.reset(my_task)
    return super(CatchingEvent, self)._run_hook(my_task)


def end_join_may_fire(self: Any, my_task: Any) -> bool:
    """``_EndJoin._check_threshold_unstructured`` of a small tree, from the task dictionary."""
    workflow = my_task.workflow
    tasks = workflow.tasks
    if len(tasks) >= SMALL:
        return ORIGINAL_END_JOIN(self, my_task)  # type: ignore[no-any-return]
    root, name = workflow.task_tree, self.name
    for task in tasks.values():
        if task is my_task or not task._state & _UNFINISHED:
            continue
        current, below_join = task, False
        for _ in range(SMALL):
            parent_id = current._parent
            if parent_id is None:
                break
            current = tasks.get(parent_id)
            if current is None:
                return ORIGINAL_END_JOIN(self, my_task)  # type: ignore[no-any-return]
            if current.task_spec.name == name:
                below_join = True
                break
        else:
            return ORIGINAL_END_JOIN(self, my_task)  # type: ignore[no-any-return]
        if below_join:
            continue
        if current is not root:
            return ORIGINAL_END_JOIN(self, my_task)  # type: ignore[no-any-return]
        return False  # an unfinished task the walk reaches
    return True


def install() -> None:
    CatchingEvent._run_hook = catching_run_hook  # type: ignore[method-assign]
    _EndJoin._check_threshold_unstructured = end_join_may_fire  # type: ignore[method-assign]


def uninstall() -> None:
    """SpiffWorkflow's own functions again (for tests)."""
    CatchingEvent._run_hook = ORIGINAL_RUN_HOOK  # type: ignore[method-assign]
    _EndJoin._check_threshold_unstructured = ORIGINAL_END_JOIN  # type: ignore[method-assign]


install()
