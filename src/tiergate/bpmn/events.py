"""Error, escalation, signal and message events of a Tier 1 run, as log entries.

SpiffWorkflow throws and catches these inside the workflow; tiergate watches the engine steps
run (``Move.did_run``) and writes down what left the expected path:

* a **boundary event** (error, escalation, signal, message) that caught something, and the
  **start event of an event subprocess** that something triggered, are logged ``escalated``
  with ``event`` (the kind), ``code`` (the error or escalation code, or the signal or message
  name), ``by`` (the catching element), ``task`` (the activity it sits on, or the event
  subprocess), ``flows``/``to`` (where the process goes) and ``interrupting``. The metrics
  count each as an ``escalated`` deviation, like a timer that escalates.
* an **error** that nothing catches fails the run at the element that threw it: BPMN ends the
  process abnormally there, and tiergate does not let it end as if it had succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
    ErrorEventDefinition,
    EscalationEventDefinition,
    SignalEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.simple import CancelEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import (
    CatchingEvent,
    ThrowingEvent,
)
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.actors import SYSTEM
from tiergate.bpmn.model import ProcessModel
from tiergate.log import LogEvent

KINDS: tuple[tuple[type, str], ...] = ((ErrorEventDefinition, "error"), (EscalationEventDefinition, "escalation"),
                                       (SignalEventDefinition, "signal"), (MessageEventDefinition, "message"),
                                       (CancelEventDefinition, "cancel"))


def kind_of(definition: Any) -> str | None:
    for cls, name in KINDS:
        if isinstance(definition, cls):
            return name
    return None


def code_of(definition: Any) -> str | None:
    code = getattr(definition, "code", None)
    return str(code) if code not in (None, "") else getattr(definition, "name", None)


@dataclass
class Thrown:
    """An error thrown by ``element``; it fails the run unless something catches it."""

    element: str
    code: str | None
    task: Task


def caught(task: Task, element: str, model: ProcessModel) -> LogEvent | None:
    """The ``escalated`` entry for a boundary or event-subprocess start event that just ran, if any."""
    spec = task.task_spec
    if not isinstance(spec, CatchingEvent):
        return None
    kind = kind_of(spec.event_definition)
    node = model.nodes.get(element)
    if kind is None or node is None:
        return None
    if node.kind == "boundaryEvent":
        on, interrupting = node.attached_to, node.cancel_activity
    elif node.kind == "startEvent" and node.container in model.nodes \
            and model.nodes[node.container].triggered_by_event:
        on, interrupting = node.container, node.cancel_activity
    else:
        return None
    outgoing = model.outgoing(element)
    detail = {"event": kind, "code": code_of(spec.event_definition), "by": element, "task": on,
              "flows": [f.id for f in outgoing], "to": [f.target for f in outgoing], "interrupting": interrupting}
    return LogEvent("escalated", SYSTEM, step=on, detail=detail)


def thrown_error(task: Task, element: str) -> Thrown | None:
    spec = task.task_spec
    if isinstance(spec, ThrowingEvent) and isinstance(spec.event_definition, ErrorEventDefinition):
        return Thrown(element, code_of(spec.event_definition), task)
    return None


def uncaught_errors(workflow: Any) -> list[Any]:
    """The error events nobody caught (SpiffWorkflow keeps them as events for outside the process)."""
    return [e for e in workflow.bpmn_events if isinstance(e.event_definition, ErrorEventDefinition)]


def interrupt_scope(task: Task) -> None:
    """An interrupting event subprocess started: cancel everything else in the process (or subprocess) around it.

    SpiffWorkflow starts event subprocesses but never interrupts: this does what BPMN says.
    """
    subworkflow = task.workflow
    owner_id = getattr(subworkflow, "parent_task_id", None)
    if owner_id is None:
        return
    owner = subworkflow.top_workflow.get_task_from_id(owner_id)
    scope = owner.workflow
    keep = {owner.id}
    ancestor = owner.parent
    while ancestor is not None:
        keep.add(ancestor.id)
        ancestor = ancestor.parent
    for candidate in list(scope.task_tree.children):
        _cancel_except(candidate, keep)
    # The event subprocess is now the only way on: give it the path to the end of its scope, which
    # SpiffWorkflow does not predict for a triggered event subprocess.
    owner._sync_children(owner.task_spec.outputs, TaskState.FUTURE)
    for child in owner.children:  # down to the scope's End, whose completion ends a subprocess (or called process)
        child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)


def _cancel_except(task: Task, keep: set[Any]) -> None:
    if task.id in keep or task.has_state(TaskState.FINISHED_MASK):
        for child in list(task.children):
            _cancel_except(child, keep)
    else:
        task.cancel()
