"""What a SpiffWorkflow task of a Tier 1 run is to tiergate: its BPMN element, its step id, whether it
is a person's step or a timer. Each answer about a spec is kept on the spec, which never changes.

    element_of(task)     # "review", or None for SpiffWorkflow's own tasks (Start, End, ...)
    step_of(task)        # "review" or "verify[tenant-a]" for an instance
    is_step(task)        # a user or manual task of an element
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.task import Task

from tiergate.bpmn import instances

_SPLIT = ".BoundaryEventSplit"


def element_of(task: Task) -> str | None:
    """The BPMN element of a task: kept on its spec, which never changes."""
    spec = task.task_spec
    try:
        return spec._tiergate_element  # type: ignore[no-any-return]
    except AttributeError:
        found = spec._tiergate_element = _element_of_spec(spec)
        return found


def _element_of_spec(spec: Any) -> str | None:
    element = getattr(spec, "bpmn_id", None)
    if element:
        return str(element)
    if spec.name.endswith(_SPLIT):
        return spec.name[: -len(_SPLIT)]
    return None


def step_of(task: Task) -> str | None:
    """The step id of a task: its element, with the instance key for a multi-instance or loop instance."""
    element = element_of(task)
    return None if element is None else instances.step_id(element, instances.instance_key(task))


def is_step(task: Task) -> bool:
    """A people's task (user or manual task) of an element: kept on its spec, which never changes."""
    spec = task.task_spec
    try:
        return spec._tiergate_is_step  # type: ignore[no-any-return]
    except AttributeError:
        found = spec._tiergate_is_step = bool(spec.manual) and element_of(task) is not None
        return found


def is_timer(task: Task) -> bool:
    """A timer event, or an event-based gateway with a timer among its events."""
    if not isinstance(task.task_spec, CatchingEvent):
        return False
    definition = task.task_spec.event_definition
    if isinstance(definition, MultipleEventDefinition):
        return any(isinstance(d, TimerEventDefinition) for d in definition.event_definitions)
    return isinstance(definition, TimerEventDefinition)
