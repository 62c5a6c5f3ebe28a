"""Messages into and out of a Tier 1 run.

**Waiting.** A message catch (intermediate catch event, boundary event, receive task, or an
event after an event-based gateway) waits for a message by its name (the ``bpmn:message`` its
``messageRef`` names). Its extension property ``correlate`` lists the data fields a message
must match to reach this run: ``correlate`` = ``change_id`` (or ``client_id, change_id``). After
each move the run's state lists what it waits for (``state["messages"]``: message, element and
the values to match), so a message can be matched without loading SpiffWorkflow.

**Delivering.** ``tiergate message NAME --correlate change_id=CH-7 --data '{...}'`` (or
``Engine.message``) goes to the one active run that waits for NAME with exactly those values
for every field its catch correlates on; the data is merged into the run's data and the catch
completes. A message that matches no waiting run, or more than one, is refused: nothing is
delivered and nothing is lost silently.

**Event subprocesses.** A message start event of an event subprocess (of the process, or of a
subprocess or called process while that is under way; interrupting or not) waits while its scope is under way and no interrupting event
subprocess has started: SpiffWorkflow keeps it on the process's start task, not as a waiting task,
so ``event_starts`` lists it beside the waiting catches and ``start_event_subprocess`` starts the
event subprocess as SpiffWorkflow would for a message from outside, then hands the message to its
start event. Its correlation values are read from the run's data.

**Sending.** A message throw (intermediate throw or end event, send task) that nothing in the
run catches is logged ``message_sent`` (message, element); tiergate does not send it anywhere.
"""

from __future__ import annotations

import copy
from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import EventBasedGateway
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import persistence
from tiergate.bpmn import triggers  # noqa: F401 - installs the start task's trigger
from tiergate.bpmn.language import ExpressionError
from tiergate.bpmn.model import ProcessModel
from tiergate.errors import InvalidDataError
from tiergate.jsonutil import to_jsonable


def correlation_keys(model: ProcessModel, element: str) -> list[str]:
    node = model.nodes.get(element)
    text = node.properties.get("correlate", "") if node is not None else ""
    return [key.strip() for key in text.split(",") if key.strip()]


def catches(task: Task, element_of: Any) -> list[tuple[str, str | None]]:
    """(message name, catching element) for each message a task can catch: one for a catch event or
    receive task, one per message event after an event-based gateway (the gateway waits for them)."""
    spec = task.task_spec
    if not isinstance(spec, CatchingEvent):
        return []
    definition = spec.event_definition
    if isinstance(definition, MessageEventDefinition):
        return [(definition.name, element_of(task))]
    if isinstance(definition, MultipleEventDefinition) and isinstance(spec, EventBasedGateway):
        return [(d.name, getattr(out, "bpmn_id", None)) for d, out in zip(definition.event_definitions, spec.outputs)
                if isinstance(d, MessageEventDefinition)]
    if isinstance(definition, MultipleEventDefinition):
        # One catch event with several messages: it waits for each it has not caught yet (all of them when
        # it is parallelMultiple, else the first that comes).
        seen = [getattr(e, "event_definition", None) for e in task.internal_data.get("seen_events", [])]
        return [(d.name, element_of(task)) for d in definition.event_definitions
                if isinstance(d, MessageEventDefinition) and not any(d == s for s in seen)]
    return []


def is_message_catch(task: Task) -> bool:
    return bool(catches(task, lambda t: None))


def waiting(tasks: list[Task], model: ProcessModel, element_of: Any) -> list[dict[str, Any]]:
    """What the run waits for: ``{"message", "element", "correlate": {field: value}}`` per waiting catch,
    then per message start event of an event subprocess that a message could start now."""
    found = waiting_catches(tasks, model, element_of)
    return found + (event_starts(tasks[0].workflow.top_workflow, model) if tasks else [])


def waiting_catches(tasks: list[Task], model: ProcessModel, element_of: Any) -> list[dict[str, Any]]:
    """The waiting catches among ``tasks``, as in ``waiting``."""
    found = []
    waiting = TaskState.WAITING  # (``task.state`` is ``task._state``; a comprehension skips the rest in one pass)
    for task in [t for t in tasks if t._state == waiting]:
        for name, element in catches(task, element_of):
            keys = correlation_keys(model, element or "")
            found.append({"message": name, "element": element,
                          "correlate": {key: to_jsonable(task.data.get(key)) for key in keys}})
    return found


def matches(entry: dict[str, Any], name: str, correlate: dict[str, Any]) -> bool:
    """A waiting catch matches a message with its name and the same value for every field it correlates on."""
    if entry.get("message") != name:
        return False
    wanted: dict[str, Any] = entry.get("correlate") or {}
    return all(key in correlate and _same(correlate[key], value) for key, value in wanted.items())


def _same(given: Any, expected: Any) -> bool:
    return given == expected or (isinstance(given, str) and not isinstance(expected, str)
                                 and expected is not None and given == str(expected))


def deliver(task: Task, name: str, data: dict[str, Any]) -> None:
    """Hand the message to one waiting catch; SpiffWorkflow merges its data when the catch runs."""
    event = BpmnEvent(MessageEventDefinition(name), payload=dict(data))
    try:
        task.task_spec.catch(task, event)
    except ExpressionError as err:  # a BPMN correlation property reads the message's data
        raise InvalidDataError(
            f"message '{name}' was not delivered: the process's correlation property for it could not be read "
            f"from the message's data ({err}). Send the field it names in --data.",
            details={"message": name, "error": str(err)}) from None
    spec = task.task_spec
    if isinstance(spec.event_definition, MultipleEventDefinition) and not isinstance(spec, EventBasedGateway):
        task.set_data(**copy.deepcopy(dict(data)))   # SpiffWorkflow keeps only that it came, not its data
    task.task_spec._update(task)


def unsent(workflow: Any) -> list[str]:
    """The names of messages thrown in the run that nothing in it caught."""
    return [e.event_definition.name for e in workflow.bpmn_events
            if isinstance(e.event_definition, MessageEventDefinition)]


def message_starts(definition: Any) -> set[str]:
    """The messages a process's own start events wait for (message start events): such a message,
    when no run waits for it, starts a run of the process (``Engine.message``)."""
    try:
        spec, _subprocess_specs = definition.specs
    except Exception:  # noqa: BLE001 - a process that cannot be built starts nothing; `check` reports it
        return set()
    start = spec.task_specs.get("Start")
    names = set()
    for output in getattr(start, "outputs", []) if start is not None else []:
        definition_ = getattr(output, "event_definition", None)
        if isinstance(definition_, MessageEventDefinition):
            names.add(definition_.name)
        elif isinstance(definition_, MultipleEventDefinition):   # a start event with several messages
            names.update(d.name for d in definition_.event_definitions if isinstance(d, MessageEventDefinition))
    return names



def _scopes(top: Any) -> list[Any]:
    """The process and each subprocess (or called process) under way in it: each may hold event subprocesses."""
    return [top, *(sub for sub in top.subprocesses.values() if not sub.is_completed())]


def _subprocess_starts(workflow: Any) -> list[tuple[str, Any]]:
    """(subprocess spec name, start event spec) for each message start event of the event subprocesses of
    ``workflow`` (the process, or one subprocess or called process in it)."""
    found = []
    specs = getattr(workflow, "top_workflow", workflow).subprocess_specs
    for spec_name in getattr(workflow.spec.start, "trigger_specs", []):
        spec = specs.get(spec_name)
        for start in getattr(spec, "bpmn_start_events", []) if spec is not None else []:
            if isinstance(start.event_definition, MessageEventDefinition):
                found.append((spec_name, start))
    return found


def _interrupted(workflow: Any, model: ProcessModel) -> bool:
    """Whether an interrupting event subprocess was started in the process (its other work is cancelled)."""
    for task in workflow.task_tree.children:
        if not task.triggered or task.has_state(TaskState.CANCELLED):
            continue
        starts = [n for n in model.nodes.values() if n.kind == "startEvent" and n.container == task.task_spec.bpmn_id]
        if any(n.cancel_activity for n in starts):
            return True
    return False


def _run_data(workflow: Any, key: str) -> Any:
    """The run's value of ``key``: from a task under way in the process, else from its start."""
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
        if task.workflow is workflow and key in task.data:
            return task.data[key]
    return workflow.task_tree.data.get(key)


def event_starts(top: Any, model: ProcessModel) -> list[dict[str, Any]]:
    """The message start events of event subprocesses that a message could start now (see the module's doc),
    in the process and in each subprocess or called process under way in it."""
    if persistence.is_completed(top):  # (``top.is_completed()``, from the task dictionary)
        return []
    found: list[dict[str, Any]] = []
    for workflow in _scopes(top):
        found.extend(_scope_starts(workflow, model))
    return found


def _scope_starts(workflow: Any, model: ProcessModel) -> list[dict[str, Any]]:
    starts = _subprocess_starts(workflow)
    if not starts or workflow.is_completed() or _interrupted(workflow, model):
        return []
    # One at a time: a step is named by its element, so two of the same event subprocess under way at once
    # could not be told apart. Another message may start it again once it has ended.
    under_way = {t.task_spec.name for t in workflow.task_tree.children
                 if t.triggered and not t.has_state(TaskState.FINISHED_MASK)}
    found = []
    for spec_name, start in starts:
        if spec_name in under_way:
            continue
        keys = correlation_keys(model, start.bpmn_id or "")
        node = model.nodes.get(start.bpmn_id or "")
        found.append({"message": start.event_definition.name, "element": start.bpmn_id,
                      "correlate": {key: to_jsonable(_run_data(workflow, key)) for key in keys},
                      "starts": node.container if node is not None else None})
    return found


def start_event_subprocess(top: Any, element: str, name: str, data: dict[str, Any]) -> None:
    """Start the event subprocess whose start event ``element`` waits for ``name`` and deliver the message there."""
    workflow, spec_name, start = next((w, s, t) for w in _scopes(top) for s, t in _subprocess_starts(w)
                                      if t.bpmn_id == element)
    child_id = workflow.spec.start.trigger_wf(workflow.task_tree, spec_name)  # tiergate.bpmn.triggers
    subprocess = top.subprocesses[child_id]
    task = next(t for t in subprocess.get_tasks(state=TaskState.WAITING) if t.task_spec.name == start.name)
    deliver(task, name, data)
