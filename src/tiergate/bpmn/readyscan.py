"""The ready steps of a kept workflow's move, from the last move's and the tasks this move touched.

A workflow kept between moves (``tiergate.bpmn.kept``) is tracked (``tiergate.bpmn.touched``): the
tasks whose state, parent or children changed since its last dump, and the tasks made since. A
move (``tiergate.bpmn.moves.Move``) of such a workflow finds what changed among its ready steps
from those instead of going through every task (1,000 of them with a multi-instance task open),
with the same result in the same order; anything these cannot tell sends it through every task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import dumping, records, touched
from tiergate.jsontext import Frozen
from tiergate.log import format_time

if TYPE_CHECKING:
    from tiergate.bpmn.moves import Move


def touched_by_move(move: Move) -> dict[int, Task] | None:
    """The tasks this move touched (``tiergate.bpmn.touched``), by ``UUID.int``, when the workflow
    was kept and tracked and has the same subprocesses as when the move began; else None."""
    workflow = move.workflow
    assert workflow is not None
    if move.subprocesses_before is None or set(workflow.subprocesses) != move.subprocesses_before:
        return None
    found: dict[int, Task] = {}
    for owner in (workflow, *workflow.subprocesses.values()):
        marked = getattr(owner, touched.TOUCHED, None)
        if marked is None:
            return None
        found.update((task.id.int, task) for task in marked.values())
    return found


def ready_changes(move: Move, is_step: Callable[[Task], bool]) -> tuple[dict[int, Task], list[Task]] | None:
    """What ``Move._newly_ready`` and ``Move._sync_ready`` need of a kept workflow without subprocesses whose
    ready steps were kept: the tasks this move touched, and the ready steps not ready before it,
    in the tree's order. None (look at every task) unless each of those is a task this move made:
    new tasks come last in the tree, in the order they were made (which ``touched`` keeps), while
    the place of an older one among the tree's tasks is not known without going through them."""
    assert move.workflow is not None
    if move.ready_kept is None or move.workflow.subprocesses:
        return None
    changed = touched_by_move(move)
    if changed is None:
        return None
    fresh: list[Task] = []
    for key, task in changed.items():
        if task._state == TaskState.READY and is_step(task) and key not in move.ready_before \
                and task.workflow.tasks.get(task.id) is task:
            if dumping.existed(task) is not False:
                return None
            fresh.append(task)
    return changed, fresh


def sync_ready_kept(move: Move, changed: dict[int, Task], fresh: list[Task], before: dict[int, str],
                    is_step: Callable[[Task], bool], step_of: Callable[[Task], str | None]) -> dict[int, str]:
    """``Move._sync_ready`` from the last move's ready steps (``before``, in the tree's order) and
    this move's changes (``ready_changes``): the same steps in the same order (returned), and the
    same records checked in that order (a frozen record is as that move left it: ready)."""
    assert move.workflow is not None
    ready = dict(before)
    for key, task in changed.items():
        if key in ready and not (task._state == TaskState.READY and is_step(task)
                                 and task.workflow.tasks.get(task.id) is task):
            del ready[key]
    for task in fresh:
        ready[task.id.int] = step_of(task) or ""
    steps = move.state["steps"]
    edited = {step for step, record in steps.items() if type(record) is not Frozen}
    new = {task.id.int for task in fresh}
    for key, step in [(key, step) for key, step in ready.items() if step in edited or key in new]:
        record = steps.get(step)
        if record is None or record.get("status") != "ready":
            record = records.editable(move.state, step)
            record["status"] = "ready"
            record.setdefault("ready_at", format_time(move.ctx.now))
    return ready

