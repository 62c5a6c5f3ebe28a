"""A new run's first state and log entries, from a recipe made once per definition and proven on probes.

When a run's first passes come from a template (``tiergate.bpmn.firstmove``), the rest of its first
move (``Move.run``) looks at a tree that is the same for every run of the definition but for its
tasks' ids, their last state changes and the start data they hold: the ready steps, their records
and ``step_ready`` entries, the elements passed, the timers, messages and signals waited for (none),
the data view, the dump. So what it writes is fixed but for a few holes, and ``run`` fills them
instead of working it all out:

* the dump: spelled from the template's shape (``firstdump.dump``, as ``Move.run`` does);
* the data view: ``to_jsonable`` of the root's data (the start data, which every open task holds as
  inherited), or of nothing when no open task inherits it, with ``json.dumps``'s text (what
  ``dataview.view`` makes of it);
* each ready step's record: its status (and topic) with ``ready_at`` now; the other records are the
  same frozen records for every run (``tiergate.bpmn.records``: never changed, shared);
* the workflow's ready steps (``Move._sync_ready``: kept on it for the next move), by the tasks' new ids;
* the ``step_ready`` entries, with their detail's canonical text made once;
* the rest of the state (timers, due time, messages, signals, error, elements passed): the same values,
  and only when nothing is waited for (no timer, message or signal: a wait's due time or correlation is
  worked out from the run's own data); a first move that waits for one runs ``Move.run``.

The recipe is made from ``Move.run`` itself, on a copy of the template given each of
``firstmove``'s two probes' start data (different keys, nested values), and kept only if, for both,
the state it gives is the one ``Move.run`` gave for that copy, byte for byte and type for type
(its text and every value), in the same order of keys, with the same log entries and the same
ready steps kept on the workflow, and the move left the run active. Anything else (a start that
completes, a long dump, data with keys that are not text, a template not used) runs ``Move.run``.
What it leaves out is the data view kept on the workflow for the next move (``dataview``): the
next move makes its view whole, which gives the same view. ``tests/test_tier1_firststate.py``
compares starts both ways.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tiergate.actors import SYSTEM
from tiergate.bpmn import firstdump, firstmove, kept
from tiergate.bpmn.moves import _READY_STEPS, Move
from tiergate.bpmn.records import FrozenRecords
from tiergate.jsontext import Encoded, Frozen, dumps, member
from tiergate.jsonutil import canonical_json, to_jsonable
from tiergate.lifecycle import RunStatus
from tiergate.log import LogEvent, format_time
from tiergate.runners.base import RunContext

#: Turned off by the tests that compare a start from the recipe with ``Move.run``'s.
ENABLED: ContextVar[bool] = ContextVar("tiergate_first_state", default=True)

_ATTRIBUTE = "_tiergate_first_state"
_MADE = ("workflow", "data", "steps")  # the state's members ``run`` makes for each run (the others: copied)
_ATOMS = frozenset({str, int, float, bool, type(None)})
#: What the members copied as they are may hold, but for the elements passed (the template's path): nothing.
#: A wait (a timer's due time, a message's correlation) is worked out from the run's data, which the probes
#: cannot be trusted to vary in the way that matters, so a first move that waits for one runs ``Move.run``.
_EMPTY = (None, [], {})
#: What a ready step's record made by the recipe holds: the same for every run (``ready_at``: the start's time).
_READY_KEYS = frozenset({"status", "ready_at", "topic"})
#: A fixed time for the probes (any will do: both ways are given the same).
_PROBE_NOW = datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Recipe:
    first: firstmove.First
    #: The state's keys in order (``move`` left out: ``kept.keep`` adds it last), and the members copied as they are.
    keys: tuple[str, ...]
    constants: dict[str, Any]
    #: Per step record, in order: (step id, the shared frozen record or None for a ready one, its member's text).
    records: tuple[tuple[str, Frozen | None, str], ...]
    #: A ready record's members (text, numbers, flags), by step id: ``ready_at``'s value is the time it is made.
    ready_records: dict[str, tuple[tuple[str, Any], ...]]
    where: dict[str, int]
    #: The ready steps kept on the workflow: (index of the task in the template, step id).
    ready: tuple[tuple[int, str], ...]
    #: The move's log entries: (event, step, detail, detail's canonical text).
    events: tuple[tuple[str, str | None, dict[str, Any], str], ...]
    #: Whether the data view is the root's data (else: empty).
    view_of_root: bool


def run(move: Move, fresh_state: Callable[[dict[str, Any]], dict[str, Any]]) -> RunStatus:
    """``move.run()`` for a new run's first move (``move.create`` just made its workflow), from the definition's
    recipe when it has one. ``fresh_state(data)``: a new run's state before its first move, as the runner makes it."""
    first = move.first
    recipe = _recipe_of(move.definition, first, fresh_state) if first is not None and ENABLED.get() else None
    if recipe is None or recipe.first is not first or not _apply(recipe, move):
        return move.run()
    return RunStatus.ACTIVE


def _recipe_of(definition: Any, first: firstmove.First,
               fresh_state: Callable[[dict[str, Any]], dict[str, Any]]) -> Recipe | None:
    spec = definition.specs[0]
    found = spec.__dict__.get(_ATTRIBUTE)
    if found is not None and found[0] is spec and found[1] is definition and found[2] is first:
        return found[3]  # type: ignore[no-any-return]
    recipe = _build(definition, first, fresh_state)
    spec.__dict__[_ATTRIBUTE] = (spec, definition, first, recipe)  # two threads may both build one: either will do
    return recipe


def _apply(recipe: Recipe, move: Move) -> bool:
    """Fill ``move``'s state, events and workflow from ``recipe``; False (nothing changed) if it cannot."""
    workflow = move.workflow
    first = recipe.first
    if workflow is None or first.shape is None:
        return False
    root = workflow.task_tree.data
    for key in root:
        if type(key) is not str:
            return False
    try:  # (whatever cannot be made here, ``Move.run`` makes or refuses the usual way: nothing is changed yet)
        dumped = firstdump.dump(first.template, first.shape, workflow)
        view = to_jsonable(root) if recipe.view_of_root else {}
    except Exception:  # noqa: BLE001
        return False
    if dumped is None:
        return False
    now = format_time(move.ctx.now)
    steps: dict[str, Any] = {}
    members: list[str] = []
    for step, record, text in recipe.records:
        if record is None:
            record = Frozen.of({key: now if key == "ready_at" else value for key, value in recipe.ready_records[step]})
            text = member(step, record.text)
        steps[step] = record
        members.append(text)
    state = move.state
    for key in recipe.keys:
        if key == "workflow":
            state[key] = dumped
        elif key == "data":
            state[key] = Frozen(view, json.dumps(view))
        elif key == "steps":
            state[key] = FrozenRecords(steps, members, recipe.where)
        elif key != "sources":
            state[key] = _copied(recipe.constants[key])
    tasks = list(workflow.tasks.values())
    setattr(workflow, _READY_STEPS, {tasks[index].id.int: step for index, step in recipe.ready})
    workflow.bpmn_events = []
    move.events.extend(LogEvent(event, SYSTEM, step=step, detail=dict(detail), detail_json=text)  # (atoms: dict copies)
                       for event, step, detail, text in recipe.events)
    kept.keep(state, move.definition.version, workflow)
    return True


def _build(definition: Any, first: firstmove.First,
           fresh_state: Callable[[dict[str, Any]], dict[str, Any]]) -> Recipe | None:
    """The definition's recipe, made from ``Move.run`` on the first probe and proven on both; or None."""
    try:
        return _proven(definition, first, fresh_state)
    except Exception:  # noqa: BLE001 - a recipe that cannot be made or proven is not used: starts run ``Move.run``
        return None


def _proven(definition: Any, first: firstmove.First,
            fresh_state: Callable[[dict[str, Any]], dict[str, Any]]) -> Recipe | None:
    if first.shape is None:
        return None
    recipe = None
    for probe in firstmove.PROBES:
        made = _moved(definition, first, fresh_state, probe)
        if made is None:
            return None
        state, events, workflow, ready = made
        if recipe is None:
            recipe = _recipe(first, state, events, workflow, ready)
            if recipe is None:
                return None
        again = Move(definition, fresh_state(deepcopy(probe)), move_context(), [])
        again.workflow, again.first = workflow, first
        if not _apply(recipe, again):
            return None
        kept.take(again.state, definition.version)
        if not same_state(again.state, state) or not same_events(again.events, events) \
                or getattr(workflow, _READY_STEPS, None) != ready:
            return None
    return recipe


def move_context() -> RunContext:
    return RunContext(run_id="", actor=SYSTEM, now=_PROBE_NOW)


def _moved(definition: Any, first: firstmove.First, fresh_state: Callable[[dict[str, Any]], dict[str, Any]],
           probe: dict[str, Any]) -> tuple[dict[str, Any], list[LogEvent], Any, dict[int, str]] | None:
    """``Move.run``'s first move on a copy of the template given ``probe``: its state, events, workflow and the
    ready steps it kept on it; None if the copy did not come from ``first`` or the run is not active."""
    data = deepcopy(probe)
    events: list[LogEvent] = []
    move = Move(definition, fresh_state(data), move_context(), events)
    move.create(data)
    if move.first is not first:
        return None
    try:
        status = move.run()
    except Exception:  # noqa: BLE001 - a first move that fails fails again, the usual way, for the run
        return None
    kept.take(move.state, definition.version)
    if status != RunStatus.ACTIVE:
        return None
    return move.state, events, move.workflow, dict(getattr(move.workflow, _READY_STEPS, None) or {})


def _recipe(first: firstmove.First, state: dict[str, Any], events: list[LogEvent], workflow: Any,
            ready: dict[int, str]) -> Recipe | None:
    keys = list(state)
    if not keys or keys[-1] != "move" or any(key not in keys for key in _MADE):
        return None
    keys.pop()
    steps, view = state["steps"], state["data"]
    if type(steps) is not FrozenRecords or type(view) is not Frozen:
        return None
    now = format_time(_PROBE_NOW)
    records: list[tuple[str, Frozen | None, str]] = []
    ready_records: dict[str, tuple[tuple[str, Any], ...]] = {}
    for step, record in steps.items():
        if type(step) is not str or type(record) is not Frozen:
            return None
        if record.get("ready_at") == now:
            if any(type(value) not in _ATOMS for value in record.values()) or not set(record) <= _READY_KEYS:
                return None  # (an instance's item comes from the data: not a constant)
            ready_records[step] = tuple(record.items())
            records.append((step, None, ""))
        else:
            records.append((step, record, member(step, record.text)))
    root = workflow.task_tree.data
    if view == to_jsonable(root):
        view_of_root = True
    elif not view:
        view_of_root = False
    else:
        return None
    position = {task.id.int: index for index, task in enumerate(workflow.tasks.values())}
    if any(task_id not in position for task_id in ready):
        return None
    made_events = []
    for event in events:
        if event.actor != SYSTEM or event.duration_s is not None or event.detail_json is not None \
                or event.door is not None:
            return None
        if type(event.detail) is not dict or any(type(value) not in _ATOMS for value in event.detail.values()):
            return None
        made_events.append((event.event, event.step, dict(event.detail), canonical_json(event.detail)))
    constants = {key: deepcopy(state[key]) for key in keys if key not in _MADE and key != "sources"}
    if any(value not in _EMPTY for key, value in constants.items() if key != "passed"):
        return None  # a timer, message, signal or due time waited for may hang on the start data: not a constant
    return Recipe(first=first, keys=tuple(keys), constants=constants, records=tuple(records),
                  ready_records=ready_records, where=dict(steps.where), events=tuple(made_events),
                  ready=tuple((position[task_id], step) for task_id, step in ready.items()),
                  view_of_root=view_of_root)


def _copied(value: Any) -> Any:
    """A run's own copy of a constant member of the state (most are None, empty lists or lists of text)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is list and all(type(item) in _ATOMS for item in value):
        return list(value)
    return deepcopy(value)


def same_state(mine: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Whether two states are the same, but for their move stamps: in text, values and types, key order included."""
    mine, theirs = dict(mine), dict(theirs)
    if not isinstance(mine.pop("move", None), str) or not isinstance(theirs.pop("move", None), str):
        return False
    return list(mine) == list(theirs) and dumps(mine) == dumps(theirs) and _kinds(mine) == _kinds(theirs)


def same_events(mine: list[LogEvent], theirs: list[LogEvent]) -> bool:
    """Whether two moves' log entries are the same (a detail's canonical text given or not, if it is the detail's)."""
    return len(mine) == len(theirs) and all(
        (a.event, a.actor, a.step, a.duration_s, a.door) == (b.event, b.actor, b.step, b.duration_s, b.door)
        and _kinds(a.detail) == _kinds(b.detail)
        and all(text is None or text == canonical_json(a.detail) for text in (a.detail_json, b.detail_json))
        for a, b in zip(mine, theirs))


def _kinds(value: Any) -> Any:
    """A value with its types spelled out (an ``Encoded``'s text too), to compare two exactly."""
    if isinstance(value, Encoded):
        return (type(value).__name__, value.text, [(key, _kinds(item)) for key, item in value.items()])
    if isinstance(value, dict):
        return (type(value).__name__, [(key, _kinds(item)) for key, item in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_kinds(item) for item in value])
    return (type(value).__name__, repr(value))
