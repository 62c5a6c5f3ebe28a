"""Which tasks of a kept workflow a move touched, so the next dump looks at those and not at every task.

A workflow kept between moves (``tiergate.bpmn.kept``) is dumped at the end of each move
(``tiergate.bpmn.dumping``). Once dumped, it carries a *touched* dict (``TOUCHED``: the tasks by
``id()``, in the order they were touched) that the following hooks fill until its next dump:

* a change of a task's state (``tiergate.bpmn.statelog.set_state``; it also stamps
  ``last_state_change``): the task;
* a new task (``Task.__init__``): the task and its parent (whose children changed);
* a task removed by SpiffWorkflow (``Workflow._remove_task``, which ``_sync_children`` and
  ``_drop_children`` go through): the task and its parent;
* pruning (``tiergate.bpmn.persistence``): a task given another parent, a task whose children
  changed, a task removed (``mark``).

What is not tracked is a change of a task's data or internal data in place: the dump reuses a
task's dict only while the task is a person's ready task, which nothing but running it changes
(see ``tiergate.bpmn.dumping``), and checks its parent's data itself. A workflow without the dict
(never dumped, or restored from JSON) is not tracked: the hooks do nothing for it.

The engine's passes ask whether any task is ready for the engine (not a person's) after every
prune: a tracked workflow keeps the tasks that became ready for the engine since it was first asked
(``ENGINE_READY``, filled by the same hooks), so the answer looks at those, not at every task.

Pruning follows the same hooks with a dict of its own (``SINCE_PRUNE``: the tasks touched since
the workflow's last prune), which a prune of a tracked workflow starts afresh when it ends
(``pruned``); ``tiergate.bpmn.pruning`` then looks only at those tasks and their parents.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from SpiffWorkflow.workflow import Workflow

#: The attribute of a (sub)workflow with its touched tasks since its last dump, by ``id()``.
TOUCHED = "_tiergate_touched"
#: The attribute of a (sub)workflow with its touched tasks since its last prune, by ``id()``.
SINCE_PRUNE = "_tiergate_touched_since_prune"


#: The attribute of a tracked (sub)workflow with every task that became ready for the engine since it
#: was set (and perhaps changed since: ``engine_ready`` checks), by ``id()``.
ENGINE_READY = "_tiergate_engine_ready"
_READY = TaskState.READY


def engine_ready(workflow: Any) -> list[Any]:
    """The tasks of ``workflow`` ready for the engine (READY, not a person's; in no particular order when
    there are several): from the tasks that became so since it was first asked when it is tracked, else
    by going through every task (and, for a tracked workflow, keeping them for the next time)."""
    tasks = workflow.tasks
    noted: dict[int, Any] | None = getattr(workflow, ENGINE_READY, None)
    if noted is None:
        found = [t for t in tasks.values() if t._state == _READY and not t.task_spec.manual]
        if hasattr(workflow, TOUCHED):
            setattr(workflow, ENGINE_READY, {id(t): t for t in found})
        return found
    for key, task in list(noted.items()):
        if task._state != _READY or tasks.get(task.id) is not task:
            del noted[key]  # no longer ready, or gone
    return list(noted.values())


def became_ready(task: Any) -> None:
    """Note a task that became READY (``tiergate.bpmn.statelog``) or was made so, if its workflow keeps them."""
    noted = getattr(task.workflow, ENGINE_READY, None)
    if noted is not None and not task.task_spec.manual:
        noted[id(task)] = task


def mark(task: Any) -> None:
    """Note that ``task`` (its state, parent or children) changed, if its workflow is tracked."""
    workflow = task.workflow
    touched = getattr(workflow, TOUCHED, None)
    if touched is not None:
        touched[id(task)] = task
    since = getattr(workflow, SINCE_PRUNE, None)
    if since is not None:
        since[id(task)] = task


def since_prune(workflow: Any) -> dict[int, Any] | None:
    """The tasks touched since ``workflow``'s last prune, when that prune ended while it was tracked."""
    return getattr(workflow, SINCE_PRUNE, None)  # type: ignore[no-any-return]


def pruned(workflow: Any) -> None:
    """A prune of ``workflow`` ended (nothing left to remove): track what changes until the next one,
    if the workflow is tracked; else forget what was noted (the next prune looks at every task)."""
    if hasattr(workflow, TOUCHED):
        setattr(workflow, SINCE_PRUNE, {})
    elif hasattr(workflow, SINCE_PRUNE):
        delattr(workflow, SINCE_PRUNE)


def start(workflow: Any) -> None:
    """Track ``workflow`` from now on (its dump was just made)."""
    setattr(workflow, TOUCHED, {})


def stop(workflow: Any) -> None:
    if hasattr(workflow, TOUCHED):
        delattr(workflow, TOUCHED)


_TASK_INIT = Task.__init__
_REMOVE_TASK = Workflow._remove_task


def _task_init(self: Any, workflow: Any, task_spec: Any, parent: Any = None, *args: Any, **kwargs: Any) -> None:
    _TASK_INIT(self, workflow, task_spec, parent, *args, **kwargs)
    mark(self)
    if self._state == _READY:
        became_ready(self)
    if parent is not None:
        mark(parent)


def _remove_task(self: Any, task_id: Any) -> None:
    task = self.tasks.get(task_id)
    if task is not None:
        mark(task)
        parent = task.parent
        if parent is not None:
            mark(parent)
    _REMOVE_TASK(self, task_id)


def install() -> None:
    Task.__init__ = _task_init  # type: ignore[method-assign]
    Workflow._remove_task = _remove_task  # type: ignore[method-assign]


install()
