"""The engine's passes of a Tier 1 move (``advance``): engine steps and due timers run, one pass at a
time with the tree pruned between passes (``tiergate.bpmn.prunetree``), until only people's tasks and
future timers remain; a failing step named by its task (``StepFailure``). ``tiergate.bpmn.persistence``
re-exports every name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import touched
from tiergate.bpmn.prunetree import prune
from tiergate.bpmn.scripting import RestrictedWorkflow

#: Engine passes one advance may take before the run is failed as an endless loop.
MAX_PASSES = 100_000


@dataclass
class StepFailure(Exception):
    """An engine step (script, condition, gateway, decision, timer) failed."""

    task: Task
    message: str
    #: False when running the element again cannot help (an error nothing catches).
    retryable: bool = True

    def __str__(self) -> str:
        return self.message


def _error_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.rstrip(". ") or type(exc).__name__


def _failing_task(exc: BaseException, running: Task) -> Task:
    task = getattr(exc, "task", None)
    if isinstance(task, Task):
        return task
    return running


def _ready_in_order(wf: Any, top: RestrictedWorkflow) -> list[Task]:
    """The READY tasks of ``wf`` that a pass goes through, in the order of SpiffWorkflow's tree walk.

    The walk (``get_tasks``) is what orders them; it costs a generic iterator step per task,
    so a workflow without subprocesses (where the walk sees exactly the tasks of ``wf.tasks``)
    whose READY tasks are all people's steps but at most one, which is most passes of most runs,
    is answered from the task dictionary: there is nothing to order. (Every READY task is
    reached by the walk, or ``advance`` would never stop: it ends only when none is left.)
    """
    engine = touched.engine_ready(wf)
    if wf is top and not top.subprocesses:
        if len(engine) < 2:
            return engine
    elif not engine:
        return []  # nothing for the engine: spare the walk of the tree (1,000 open instances, each pass)
    return wf.get_tasks(state=TaskState.READY)  # type: ignore[no-any-return]


def _one_pass(top: RestrictedWorkflow, did_run: Callable[[Task], None]) -> bool:
    ran = 0
    before = len(top.get_active_subprocesses())

    def run_ready(wf: Any) -> int:
        count = 0
        for task in _ready_in_order(wf, top):
            if task.task_spec.manual or task.state != TaskState.READY:
                continue
            try:
                task.run()
            except Exception as exc:  # noqa: BLE001 - every engine failure fails the run, named by element
                raise StepFailure(_failing_task(exc, task), _error_message(exc)) from exc
            count += 1
            did_run(task)
        return count

    for sub in sorted(top.get_active_subprocesses(), key=lambda s: s.depth, reverse=True):
        count = run_ready(sub)
        ran += count
        if count == 0 and sub.parent_task_id is not None:
            owner = top.get_task_from_id(sub.parent_task_id)
            try:
                owner.task_spec._update(owner)
            except Exception as exc:  # noqa: BLE001
                raise StepFailure(_failing_task(exc, owner), _error_message(exc)) from exc
    ran += run_ready(top)
    return ran > 0 or len(top.get_active_subprocesses()) > before


def _ready_engine_task(top: RestrictedWorkflow) -> bool:
    return any(touched.engine_ready(wf) for wf in (top, *top.subprocesses.values()))


def advance(top: RestrictedWorkflow, did_run: Callable[[Task], None] | None = None,
            max_passes: int = MAX_PASSES) -> int:
    """Run engine steps and due timers until only people's tasks and future timers remain.

    Prunes after every pass that may have changed the tree. Raises StepFailure naming the failing task.
    Returns passes run.
    """
    callback = did_run or (lambda task: None)
    passes = 0
    clean = False  # pruned, and nothing changed since
    while True:
        progressed = _one_pass(top, callback)
        if progressed or not clean or top.subprocesses:  # (a pass without subprocesses that ran nothing
            prune(top)                                     # changed nothing: pruning again would remove nothing)
        clean = True
        if progressed:
            passes += 1
            if passes > max_passes:
                raise StepFailure(top.task_tree, f"the process ran {max_passes} automatic steps without waiting "
                                                 "for a person or a timer: a loop of scripts, gateways or plain "
                                                 "tasks whose conditions never let it out. Check the conditions "
                                                 "on the loop's flows against this run's data (`tiergate status "
                                                 "RUN`), fix the process, and start a new run",
                                  retryable=False)
            continue
        waiting = [t for t in top.event_manager.tasks.values()
                   if isinstance(t.task_spec, CatchingEvent) and t.state == TaskState.WAITING]
        clean = clean and not waiting
        for task in waiting:
            try:
                task.task_spec._update(task)
            except Exception as exc:  # noqa: BLE001
                raise StepFailure(_failing_task(exc, task), _error_message(exc)) from exc
        if not _ready_engine_task(top):
            return passes
