"""A run's last move, written from a template made per process spec and step, proven against SpiffWorkflow first.

Completing (or skipping) a people's task whose only way on is a plain end event (perhaps through
plain tasks and none throw events, which run through) ends the run: SpiffWorkflow completes the
task, readies and runs each element on the way, the end event, the end join and its ``End``
task (each inheriting the data before it: ``DeepMerge`` into an empty dict), the end join copies
its data into the workflow's (``_EndJoin._run_hook``), the tree is pruned to its root and the
workflow is completed. When nothing on that way evaluates anything (no script, condition,
decision, data input or output, timer, message, signal, boundary event, multi-instance or loop,
pre- or post-script, no hook of a spec's own) and nothing else is under way in the run (its tree
is the chain from its root to the task, then the future tasks on its way to the end, empty), the outcome is the
same for every run but for what this run brings: the root's task dict (its id, data and time,
its children gone), the workflow's data (the task's data with the evidence merged in, as
``apply`` merges it), the step record, sources and log entry ``apply`` writes, and the move's
clock. So the move is written straight from those (``finish``): the state's keys in the order the
engine's move sets them, the workflow's dump as ``tiergate.bpmn.dumping`` spells a one-task tree,
the data view of a completed run, the frozen records, and the ``completed`` entry.

**Proven first.** ``of`` keeps, per spec (one definition version) and task spec, what the spec
allows (``_static``); each completion that fits (``_narrow``) is a probe until ``PROBES`` of them
came out the same: the template writes its result aside (``aside``, on a copy of the state, the
workflow untouched), the engine's own move runs as always, and ``prove`` compares the two: the
status, the log entries and the state, its stored text byte for byte and the kind of every part
(``Encoded``, ``Frozen`` records, ...). The first difference, or a template that fails, turns the
template off for the whole spec for good; the engine's result is the one returned in every probe.
Any completion outside the narrow case, SpiffWorkflow's loggers or a path trace on, or
``ENABLED`` off (tests), runs the engine's move. ``tests/test_tier1_lastmove.py`` compares whole
runs both ways.
"""

from __future__ import annotations

import json
import logging
import threading
from contextvars import ContextVar
from typing import Any, Callable

from SpiffWorkflow.bpmn.specs.control import SimpleBpmnTask, _EndJoin
from SpiffWorkflow.bpmn.specs.defaults import EndEvent, IntermediateThrowEvent
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, MultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate import jsontext
from tiergate.actors import SYSTEM
from tiergate.bpmn import kept, persistence, records, taskdict
from tiergate.bpmn.moves import PATH_TRACE
from tiergate.bpmn.parser import PlainTask
from tiergate.bpmn.release import release
from tiergate.bpmn.statecopy import copy_state
from tiergate.jsonutil import to_jsonable
from tiergate.lifecycle import RunStatus
from tiergate.log import LogEvent
from tiergate.runners.base import Transition

#: Turned off by the tests that compare a templated last move with the engine's own.
ENABLED: ContextVar[bool] = ContextVar("tiergate_last_move_template", default=True)
#: Completions of a spec's step compared with the engine's own before its template is trusted.
PROBES = 3

_ATTRIBUTE = "_tiergate_last_moves"
_LOCK = threading.Lock()  # (a probe's count or verdict: rare, short)
_LOGGERS = (logging.getLogger("spiff.task"), logging.getLogger("spiff.workflow"), logging.getLogger("spiff.data"))
_COMPLETED = TaskState.COMPLETED
_AHEAD = TaskState.FUTURE | TaskState.LIKELY
_MOST = 64  # tasks: a larger tree is not the narrow case (a pruned one holds the open tasks and little else)
#: Hooks a spec may be given of its own (``tiergate.bpmn.prepost`` wraps some): any of them, and it is not plain.
_HOOKS = ("_update", "_update_hook", "_on_ready", "_on_ready_hook", "_run", "_run_hook", "_on_complete",
          "_on_complete_hook", "_predict_hook", "_on_cancel")
_CHAIN = (EndEvent, _EndJoin, SimpleBpmnTask)  # what follows the task: the end event, the end join, ``End``
Apply = Callable[[Any, dict[str, Any], list[LogEvent], "float | None"], None]


class _Lasts:
    """A spec's last moves by task spec name (None: that step's completion is not one), and whether a probe
    of any of them differed (then none is used again)."""

    __slots__ = ("spec", "by_task", "broken")

    def __init__(self, spec: Any):
        self.spec, self.broken = spec, False
        self.by_task: dict[str, Last | None] = {}


class Last:
    """One step's last move: the specs after its task, the elements it passes, and how many probes it passed."""

    __slots__ = ("owner", "spec", "chain", "passed", "proven")

    def __init__(self, owner: _Lasts, spec: Any, chain: tuple[Any, ...], passed: frozenset[str]):
        self.owner, self.spec, self.chain, self.passed = owner, spec, chain, passed
        self.proven = 0

    @property
    def trusted(self) -> bool:
        return self.proven >= PROBES and not self.owner.broken

    def finish(self, move: Any, task: Task, apply: Apply, duration: float | None) -> RunStatus:
        """The move's outcome from the template, on the move's own state and events; the workflow is let go."""
        status = _finish(move.state, move.events, move.workflow, task, self.passed, apply, duration)
        release(move.workflow)  # a finished run is not moved again (as ``Move.run`` does)
        return status

    def aside(self, move: Any, task: Task, apply: Apply, duration: float | None) -> Transition | None:
        """A probe: the template's outcome on a copy of the move's state, the workflow untouched; None if it
        failed (then the spec's templates are off)."""
        state, events = copy_state(move.state), list(move.events)
        try:
            status = _finish(state, events, move.workflow, task, self.passed, apply, duration)
        except Exception:  # noqa: BLE001 - a template that cannot write the move is not used
            self.owner.broken = True
            return None
        return Transition(state=state, status=status, events=events)

    def prove(self, made: Transition, real: Transition) -> bool:
        """Compare a probe's outcome with the engine's: one more proof, or the spec's templates off for good."""
        same = _same(made, real)
        with _LOCK:
            if same:
                self.proven += 1
            else:
                self.owner.broken = True
        return same


def usable() -> bool:
    """Whether a completion may take a template now: not turned off, SpiffWorkflow's loggers off (the engine's
    move would write records), and no path trace (``tiergate.bpmn.moves.PATH_TRACE``)."""
    return ENABLED.get() and PATH_TRACE.get() is None and not any(log.isEnabledFor(logging.INFO) for log in _LOGGERS)


def of(move: Any, task: Task) -> Last | None:
    """The last move of ``task``'s step if completing it now is the narrow case, else None."""
    workflow = move.workflow
    if task.workflow is not workflow:  # a task of a subprocess: its way on is not the run's end
        return None
    spec = workflow.spec
    lasts: _Lasts | None = spec.__dict__.get(_ATTRIBUTE)
    if lasts is None or lasts.spec is not spec:  # (a copied spec carries its original's: not used)
        lasts = _Lasts(spec)
        spec.__dict__[_ATTRIBUTE] = lasts  # two threads may both make one: either will do
    if lasts.broken or not usable():
        return None
    name = task.task_spec.name
    try:
        last = lasts.by_task[name]
    except KeyError:
        last = lasts.by_task[name] = _static(lasts, task.task_spec, move.model)
    if last is None or last.spec is not task.task_spec or not _narrow(workflow, task, last.chain):
        return None
    return last


def known(spec: Any, name: str) -> Last | None:
    """The last move kept for the step of task spec ``name`` of ``spec`` (None: none, or not worked out yet)."""
    lasts: _Lasts | None = spec.__dict__.get(_ATTRIBUTE)
    return lasts.by_task.get(name) if lasts is not None and lasts.spec is spec else None


def broken(spec: Any) -> bool:
    """Whether a probe of one of ``spec``'s last moves differed from the engine's (then none is used)."""
    lasts: _Lasts | None = spec.__dict__.get(_ATTRIBUTE)
    return lasts is not None and lasts.spec is spec and lasts.broken


def _plain(spec: Any) -> bool:
    """Whether a spec does nothing with the run's data beyond SpiffWorkflow's inheritance."""
    return (not spec.pre_assign and not spec.post_assign and not spec.data_input_associations
            and not spec.data_output_associations and spec.io_specification is None
            and not getattr(spec, "_tiergate_scripts", False) and not any(hook in vars(spec) for hook in _HOOKS))


def _static(owner: _Lasts, spec: Any, model: Any) -> Last | None:
    """What a people's task's spec allows: its only way on a plain end event, nothing on the way evaluated."""
    if not spec.manual or isinstance(spec, (MultiInstanceTask, LoopTask, SubWorkflowTask)) or not _plain(spec):
        return None
    chain: list[Any] = []
    current = spec
    while len(current.outputs) == 1 and _between(current.outputs[0]) and len(chain) < _MOST:
        current = current.outputs[0]  # a plain task or a none throw event: run through, nothing evaluated
        chain.append(current)
    for kind in _CHAIN:
        outputs = current.outputs
        if len(outputs) != 1 or type(outputs[0]) is not kind or not _plain(outputs[0]):
            return None
        current = outputs[0]
        chain.append(current)
    if current.outputs or type(chain[-3].event_definition) is not NoneEventDefinition:
        return None
    passed = [getattr(one, "bpmn_id", None) for one in chain]
    return Last(owner, spec, tuple(chain), frozenset(e for e in passed if e and e in model.nodes))


def _between(spec: Any) -> bool:
    """Whether a spec between the task and the end runs through evaluating nothing: a plain task (``bpmn:task``,
    nobody's step) or an intermediate none throw event."""
    if type(spec) is PlainTask:
        return _plain(spec)
    return type(spec) is IntermediateThrowEvent and type(spec.event_definition) is NoneEventDefinition \
        and _plain(spec)


def _narrow(workflow: Any, task: Task, chain: tuple[Any, ...]) -> bool:
    """Whether the run's tree is the chain from its root to ``task`` (each finished, one child each) and the
    tasks of ``chain`` ahead of it (future, empty, one child each), and nothing else is under way."""
    tasks = workflow.tasks
    if len(tasks) > _MOST or workflow.subprocesses or workflow.bpmn_events or workflow.correlations \
            or workflow.data or workflow.completed or workflow.event_manager.tasks:
        return False
    count, up = 1, task
    while up._parent is not None:
        parent = tasks.get(up._parent)
        if parent is None or parent._state != _COMPLETED or len(parent._children) != 1 \
                or not _same_id(parent._children[0], up.id):
            return False
        up, count = parent, count + 1
    if up is not workflow.task_tree or type(up) is not Task:
        return False
    down = task
    for spec in chain:
        children = down._children
        child = tasks.get(children[0]) if len(children) == 1 else None
        if child is None or child.task_spec is not spec or not _same_id(child._parent, down.id) \
                or not child._state & _AHEAD or child.data or child.internal_data or child.triggered:
            return False
        down, count = child, count + 1
    return not down._children and len(tasks) == count


def _same_id(one: Any, other: Any) -> bool:
    """Whether two task ids are the same: mostly the same object (SpiffWorkflow's tree shares them)."""
    return one is other or one == other


class _Held:
    """What ``apply`` is handed for the task: its data, copied (the workflow's is not changed)."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]):
        self.data = data


def _finish(state: dict[str, Any], events: list[LogEvent], workflow: Any, task: Task, passed: frozenset[str],
            apply: Apply, duration: float | None) -> RunStatus:
    """Write the move's outcome into ``state`` and ``events``, each key set in the order ``Move.run`` sets it."""
    held = _Held(dict(task.data))
    apply(held, state, events, duration)
    data = held.data  # the end join's data, which becomes the workflow's
    if passed:
        state["passed"] = sorted(set(state.get("passed") or ()) | passed)
    state["timers"], state["due_at"], state["messages"], state["signals"] = [], None, [], []
    state["error"] = None
    view = to_jsonable(data)
    state["workflow"] = _dump(workflow, data)
    state["data"] = view
    records.freeze(state)
    events.append(LogEvent("completed", SYSTEM))
    state["due_at"], state["timers"], state["messages"] = None, [], []
    state["signals"] = []
    kept.forget(state)
    return RunStatus.COMPLETED


_CONVERTERS: dict[int, tuple[Any, Callable[[Task], dict[str, Any]]]] = {}


def _dump(workflow: Any, data: dict[str, Any]) -> jsontext.Encoded:
    """``dumping.dump`` of the workflow once completed: its tree pruned to its root, ``data`` its data. The text
    is spelled as ``jsontext.spliced`` spells that dump's members (``json.dumps``'s separators), in one piece."""
    registry = persistence.REGISTRY
    known = _CONVERTERS.get(id(registry))
    if known is None or known[0] is not registry:
        known = _CONVERTERS[id(registry)] = (registry, taskdict.converter(registry))
    root = workflow.task_tree
    made = known[1](root)
    made["children"] = []  # (the root is kept, its finished descendants pruned)
    root_id = made["id"]
    tasks = {root_id: made}
    tasks_text = json.dumps(tasks)
    converted = data if _plain_values(data) else registry.convert(registry.clean(data))
    typename = registry.typenames[type(workflow)]
    value = {"format": persistence.FORMAT, "data": converted, "correlations": {}, "last_task": None,
             "success": workflow.success, "completed": True, "tasks": jsontext.Encoded(tasks, tasks_text),
             "root": root_id, "subprocesses": jsontext.Encoded({}, "{}"), "bpmn_events": [], "typename": typename}
    head, tail = _texts(typename)
    success = "true" if workflow.success is True else json.dumps(workflow.success)
    # (a task's id is a UUID's text: nothing in it to escape)
    text = (f'{head}{json.dumps(converted)}, "correlations": {{}}, "last_task": null, "success": {success}, '
            f'"completed": true, "tasks": {tasks_text}, "root": "{root_id}"{tail}')
    return jsontext.Encoded(value, text)


_TEXTS: dict[str, tuple[str, str]] = {}


def _texts(typename: str) -> tuple[str, str]:
    """The dump's text before its data and after its root's id (they do not change), made once."""
    known = _TEXTS.get(typename)
    if known is None:
        known = _TEXTS[typename] = (f'{{"format": {json.dumps(persistence.FORMAT)}, "data": ',
                                    f', "subprocesses": {{}}, "bpmn_events": [], "typename": {json.dumps(typename)}}}')
    return known


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _plain_values(data: dict[str, Any]) -> bool:
    """Whether the registry would give ``data`` back as it is: text keys, each value text, a number, a flag or
    None (it copies lists and dicts and converts other kinds: then it goes through them)."""
    for key, item in data.items():
        if type(key) is not str or type(item) not in _ATOMS:
            return False
    return True


def _same(made: Transition, real: Transition) -> bool:
    """Whether two outcomes are the same: status, log entries, the state's text as the store writes it
    (``store.db.encode_json`` is ``jsontext.dumps``) and the kind of each of its parts."""
    return (made.status == real.status and made.events == real.events
            and jsontext.dumps(made.state) == jsontext.dumps(real.state) and _kinds(made.state) == _kinds(real.state))


def _kinds(value: Any) -> Any:
    """A value with its types spelled out (an ``Encoded``'s with its text), to compare two states exactly."""
    if isinstance(value, dict):
        text = value.text if isinstance(value, jsontext.Encoded) else None
        return (type(value).__name__, text, [(key, _kinds(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [_kinds(item) for item in value])
    return (type(value).__name__, repr(value))
