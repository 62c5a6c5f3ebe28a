"""A process (or subprocess) ends when its flow has ended: event subprocesses still waiting to start are cancelled.

SpiffWorkflow 3.2 starts an event subprocess whose start event is a timer (or an error, escalation
or signal) as a subprocess task when its scope starts, with the start event waiting inside, and
its end join waits for every unfinished task: so a process whose main flow has ended stays
under way until a non-interrupting timer event subprocess fires (``R1/P5D``: five days later),
and forever if it never does. BPMN says otherwise: an event subprocess listens only while its
scope is active, and the scope completes when its flow has ended. ``close_idle`` cancels, in a
scope whose end join waits for nothing but them, the event subprocesses that have not started
(their only unfinished task is the start event, waiting); the end join then completes the scope.
An event subprocess that has started is waited for, as BPMN says.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn.model import ProcessModel


def _idle(task: Any, top: Any, model: ProcessModel) -> bool:
    """An event subprocess task whose subprocess waits at its start event and nothing else."""
    node = model.nodes.get(getattr(task.task_spec, "bpmn_id", None) or "")
    if node is None or not node.triggered_by_event or task.state != TaskState.STARTED:
        return False
    sub = top.subprocesses.get(task.id)
    if sub is None:
        return False
    open_tasks = [t for t in sub.tasks.values() if not t.has_state(TaskState.FINISHED_MASK)
                  and not isinstance(t.task_spec, _EndJoin) and t.task_spec.name != "End"]
    return bool(open_tasks) and all(isinstance(t.task_spec, StartEvent) and t.state == TaskState.WAITING
                                    for t in open_tasks)


def close_idle(top: Any, model: ProcessModel) -> bool:
    """Cancel the idle event subprocesses of each scope whose flow has ended; True if any was cancelled."""
    if not any(node.triggered_by_event for node in model.nodes.values()):
        return False  # no event subprocess anywhere: nothing to walk the tasks for
    closed = False
    for workflow in [top, *top.subprocesses.values()]:
        unfinished = [t for t in workflow.tasks.values() if not t.has_state(TaskState.FINISHED_MASK)]
        joins = [t for t in unfinished if isinstance(t.task_spec, _EndJoin) and t.state == TaskState.WAITING]
        if not joins:
            continue
        others = [t for t in unfinished if not isinstance(t.task_spec, _EndJoin) and t.task_spec.name != "End"
                  and not t.has_state(TaskState.PREDICTED_MASK)]
        if others and all(_idle(t, top, model) for t in others):
            for task in others:
                task.cancel()
            for join in joins:
                join.task_spec._update(join)
            closed = True
    return closed
