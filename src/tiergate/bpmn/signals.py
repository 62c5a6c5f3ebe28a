"""Signals into and out of a Tier 1 run (the broadcast between runs is ``tiergate.signals``).

**Waiting.** After each move the run's state lists the signals it could catch now
(``state["signals"]``: signal and element): a waiting intermediate catch event, a boundary event
on a task under way, an event-based gateway's signal event, and the signal start event of an
event subprocess whose scope is under way. The broadcast reads that list without loading
SpiffWorkflow.

**Delivering.** ``deliver`` hands the signal to the run's workflow exactly as SpiffWorkflow
hands a signal thrown inside the run: every element waiting for it catches it (a signal is
broadcast, never matched to one catch). The signal's data is merged into the data of each catch.

**Throwing.** ``thrown`` names the signals a completed throw event (intermediate throw or end
event) threw: the move logs each ``signal_thrown``, and the engine broadcasts it to the other
runs once the move is committed.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent, ThrowingEvent
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import messages, persistence
from tiergate.bpmn.model import ProcessModel


def _names(definition: Any) -> list[str]:
    if isinstance(definition, SignalEventDefinition):
        return [definition.name]
    if isinstance(definition, MultipleEventDefinition):
        return [d.name for d in definition.event_definitions if isinstance(d, SignalEventDefinition)]
    return []


def thrown(task: Task) -> list[str]:
    """The signals ``task`` threw when it completed: none unless it is a signal throw event."""
    spec = task.task_spec
    if not isinstance(spec, ThrowingEvent) or isinstance(spec, CatchingEvent):
        return []
    return _names(getattr(spec, "event_definition", None))


def waiting(top: Any, model: ProcessModel, element_of: Any) -> list[dict[str, Any]]:
    """What signals the run (its workflow ``top``) could catch now: ``{"signal", "element"}`` per waiting catch
    (SpiffWorkflow's event manager holds every waiting catch of the run) and per signal start event of an
    event subprocess that a signal could start now."""
    found: list[dict[str, Any]] = []
    for task in list(top.event_manager.tasks.values()):
        if task.state != TaskState.WAITING or not isinstance(task.task_spec, CatchingEvent):
            continue
        for name in _names(task.task_spec.event_definition):
            found.append({"signal": name, "element": element_of(task)})
    if persistence.is_completed(top):  # (``top.is_completed()``, from the task dictionary)
        return found
    for workflow in messages._scopes(top):
        starts = _starts(top, workflow)
        if not starts or workflow.is_completed() or messages._interrupted(workflow, model):
            continue
        found.extend({"signal": name, "element": element} for name, element in starts)
    return found


def _starts(top: Any, workflow: Any) -> list[tuple[str, str]]:
    """(signal, start event) for each signal start event of the event subprocesses of ``workflow``."""
    found = []
    for spec_name in getattr(workflow.spec.start, "trigger_specs", []):
        spec = top.subprocess_specs.get(spec_name)
        for start in getattr(spec, "bpmn_start_events", []) if spec is not None else []:
            found.extend((name, start.bpmn_id) for name in _names(start.event_definition))
    return found


def deliver(workflow: Any, name: str, data: dict[str, Any]) -> int:
    """Hand signal ``name`` to every element of the run waiting for it; how many caught it (0: none)."""
    event = BpmnEvent(SignalEventDefinition(name), payload=dict(data))
    return int(workflow.event_manager.catch(event, internal=False))


def signal_starts(definition: Any) -> set[str]:
    """The signals a process's own start events wait for: such a signal starts a run of the process."""
    try:
        spec, _subprocess_specs = definition.specs
    except Exception:  # noqa: BLE001 - a process that cannot be built starts nothing; `check` reports it
        return set()
    start = spec.task_specs.get("Start")
    names: set[str] = set()
    for output in getattr(start, "outputs", []) if start is not None else []:
        names.update(_names(getattr(output, "event_definition", None)))
    return names
