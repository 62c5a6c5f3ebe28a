"""A new run's first state from its definition's recipe (``tiergate.bpmn.firststate``) is what ``Move.run`` makes.

Each start is compared with ``Move.run`` on the very same workflow (same ids, times and data), state
and log entries byte for byte and type for type; whole runs started both ways (``firststate.ENABLED``
off) are stored and logged alike to their end, on SQLite and PostgreSQL; and a recipe broken on
purpose is caught by the same comparison, which is what keeps it from being used.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from copy import deepcopy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support import events, turned_off
from test_tier1_firstmove import DATA, DEFINITIONS, PASSES_RUN, PROCESSES, stored_text
from test_tier1_fresh import _stored_state
from tier1_helpers import GATE_NOTE, bpmn, chain, flow, props, tier1_home, user

from tiergate.bpmn import firstmove, firststate, kept
from tiergate.bpmn.definition import BpmnDefinition, load_process
from tiergate.bpmn.moves import _READY_STEPS, Move
from tiergate.engine import Engine
from tiergate.runners import bpmn as runner_module
from tiergate.runners.bpmn import BpmnRunner

SERVICE_FIRST = bpmn("service_first", '<bpmn:startEvent id="start"/>'
                     + f'<bpmn:serviceTask id="build">{props(gate=GATE_NOTE, topic="ci-build")}</bpmn:serviceTask>'
                     + user("review") + '<bpmn:endEvent id="end"/>' + chain("start", "build", "review", "end"))
OFF_PATH_FIRST = bpmn("off_path_first", '<bpmn:startEvent id="start"/>' + user("hotfix") + user("review")
                      + '<bpmn:endEvent id="end"/>' + flow("f1", "start", "hotfix", deviation=True)
                      + chain("hotfix", "review", "end"))
INLINE = {"service_first": SERVICE_FIRST, "off_path_first": OFF_PATH_FIRST}


def _inline() -> list[tuple[str, BpmnDefinition]]:
    found = []
    for process_id, xml in INLINE.items():
        definition, problems = load_process(xml, f"{process_id}.bpmn", process_id)
        assert definition is not None, problems
        found.append((process_id, definition))
    return found


ALL = DEFINITIONS + _inline()
TEMPLATED = [(name, definition) for name, definition in ALL if name not in PASSES_RUN]


def without_recipe() -> AbstractContextManager[None]:
    return turned_off(firststate.ENABLED)


def _data(definition: BpmnDefinition) -> dict[str, Any]:
    schema = definition.inputs if isinstance(definition.inputs, dict) else {}
    return {**DATA, **{name: "x" for name in schema.get("required", ())}}


def _both_ways(definition: BpmnDefinition, recipe: firststate.Recipe,
               data: dict[str, Any]) -> tuple[Move, Move, dict[int, str]]:
    """``Move.run`` and the recipe on one workflow: the full move, the recipe's, and the ready steps the full kept."""
    fresh_state = runner_module._fresh_state
    full = Move(definition, fresh_state(definition, deepcopy(data)), firststate.move_context(), [])
    full.create(deepcopy(data))
    assert full.first is recipe.first
    full.run()
    kept.take(full.state, definition.version)
    ready = dict(getattr(full.workflow, _READY_STEPS))
    short = Move(definition, fresh_state(definition, deepcopy(data)), firststate.move_context(), [])
    short.workflow, short.first = full.workflow, full.first
    assert firststate._apply(recipe, short)
    kept.take(short.state, definition.version)
    return full, short, ready


def _recipe(definition: BpmnDefinition) -> firststate.Recipe | None:
    BpmnRunner().start(definition, _data(definition), firststate.move_context())  # (makes the template and recipe)
    first = firstmove.template_of(*definition.specs, lambda data: None)
    return None if first is None else firststate._recipe_of(
        definition, first, lambda data: runner_module._fresh_state(definition, data))


@pytest.mark.parametrize("name, definition", TEMPLATED, ids=[name for name, _ in TEMPLATED])
def test_the_recipe_gives_what_move_run_gives_on_the_same_workflow(name: str, definition: BpmnDefinition) -> None:
    recipe = _recipe(definition)
    assert recipe is not None  # (every process whose first passes come from a template here has one)
    for data in (_data(definition), {}, {"ü": ["ß", {"deep": None}], "n": -0.0, "big": 10**30}):
        full, short, ready = _both_ways(definition, recipe, data)
        assert firststate.same_state(short.state, full.state)
        assert firststate.same_events(short.events, full.events)
        assert getattr(short.workflow, _READY_STEPS) == ready


@pytest.mark.parametrize("process_id, topic, off_path", [("service_first", {"topic": "ci-build"}, False),
                                                         ("off_path_first", {"off_path": True, "flow": "f1"}, True)])
def test_a_first_steps_topic_or_off_path_flow_is_recorded_and_logged_from_the_recipe(
        process_id: str, topic: dict[str, Any], off_path: bool) -> None:
    definition = dict(ALL)[process_id]
    recipe = _recipe(definition)
    assert recipe is not None
    started = BpmnRunner().start(definition, {"ticket": "T-9"}, firststate.move_context())
    first_step = "build" if process_id == "service_first" else "hotfix"
    assert [(e.event, e.step, e.detail) for e in started.events[1:]] == [("step_ready", first_step, topic)]
    assert started.state["steps"][first_step].get("topic") == topic.get("topic")
    with without_recipe():
        real = BpmnRunner().start(definition, {"ticket": "T-9"}, firststate.move_context())
    assert stored_text(started.state) == stored_text(real.state)


# --- a recipe broken on purpose is caught --------------------------------------------------------

def _broken(recipe: firststate.Recipe) -> list[tuple[str, firststate.Recipe]]:
    ready_step = next(step for step, record, _ in recipe.records if record is None)
    locked = next(((step, record) for step, record, _ in recipe.records if record is not None), None)
    made = [
        ("view left empty", replace(recipe, view_of_root=False)),
        ("a ready record without its status", replace(recipe, ready_records={
            **recipe.ready_records, ready_step: tuple((k, v) for k, v in recipe.ready_records[ready_step]
                                                      if k != "status")})),
        ("elements passed forgotten", replace(recipe, constants={**recipe.constants, "passed": []})),
        ("a timer invented", replace(recipe, constants={**recipe.constants, "due_at": "2030-01-01T00:00:00Z"})),
        ("no step_ready entry", replace(recipe, events=())),
        ("the wrong detail text", replace(recipe, events=tuple((e, s, d, '{"x":1}') for e, s, d, _ in recipe.events))),
        ("keys out of order", replace(recipe, keys=tuple(reversed(recipe.keys)))),
        ("the ready task mixed up", replace(recipe, ready=tuple((index + 1, step) for index, step in recipe.ready))),
    ]
    if locked is not None:
        step, record = locked
        wrong = firststate.Frozen.of({**record, "status": "done"})
        made.append(("a locked record changed", replace(recipe, records=tuple(
            (s, wrong if s == step else r, firststate.member(s, wrong.text) if s == step else t)
            for s, r, t in recipe.records))))
    return made


def _caught(definition: BpmnDefinition, recipe: firststate.Recipe) -> bool:
    try:
        full, short, ready = _both_ways(definition, recipe, DATA)
    except (AssertionError, IndexError, KeyError):
        return True
    return not (firststate.same_state(short.state, full.state) and firststate.same_events(short.events, full.events)
                and getattr(short.workflow, _READY_STEPS) == ready)


@pytest.mark.parametrize("process_id", ["linear", "parallel"])
def test_a_recipe_broken_on_purpose_is_caught_by_the_comparison(process_id: str) -> None:
    definition = dict(ALL)[process_id]
    recipe = _recipe(definition)
    assert recipe is not None and not _caught(definition, recipe)
    for what, broken in _broken(recipe):
        assert _caught(definition, broken), what


def test_a_recipe_that_does_not_give_move_runs_state_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_build`` proves the recipe with the same comparison: one broken there is never kept, and starts run
    ``Move.run``."""
    definition, _ = load_process(PROCESSES["linear"], "linear.bpmn", "linear")
    assert definition is not None
    made = firststate._recipe

    def broken(*args: Any) -> firststate.Recipe | None:
        recipe = made(*args)
        return None if recipe is None else replace(recipe, constants={**recipe.constants, "passed": ["elsewhere"]})

    monkeypatch.setattr(firststate, "_recipe", broken)
    started = BpmnRunner().start(definition, DATA, firststate.move_context())
    first = firstmove.template_of(*definition.specs, lambda data: None)
    assert first is not None
    assert definition.specs[0].__dict__["_tiergate_first_state"][3] is None
    assert started.state["passed"] == ["start"] and started.events[1].detail_json is None  # (Move.run's)


# --- whole runs, through the engine and the database ---------------------------------------------

STEPS = {"linear": [("draft", {"note": "a first draft"}, "agent:a"), ("approve", {"approved": True}, "human:alice")],
         "service_first": [("build", {"note": "built"}, "agent:ci"), ("review", {}, "agent:a")],
         "off_path_first": [("hotfix", {}, "agent:a"), ("review", {"ok": True}, "agent:a")]}


@pytest.mark.parametrize("process_id", sorted(STEPS))
def test_runs_started_from_the_recipe_are_stored_and_logged_as_runs_started_without_it(
        process_id: str, tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    processes = {"linear": PROCESSES["linear"], **INLINE}
    engine = make_engine(tier1_home(tmp_path / "home", {p: processes[p] for p in STEPS}))
    shortcut = engine.start(process_id, DATA, actor="agent:a")
    with without_recipe():
        full = engine.start(process_id, DATA, actor="agent:a")
    definition = engine._definitions_by_version[shortcut.definition_version]
    assert definition.specs[0].__dict__["_tiergate_first_state"][3] is not None  # (the recipe was used)
    assert [(s.id, s.state, s.instructions) for s in shortcut.steps] == \
        [(s.id, s.state, s.instructions) for s in full.steps]
    assert _stored_state(engine, shortcut.id) == _stored_state(engine, full.id)
    for step, evidence, actor in STEPS[process_id]:
        engine.complete(shortcut.id, step, evidence, actor=actor)
        engine.complete(full.id, step, evidence, actor=actor)
        assert _stored_state(engine, shortcut.id) == _stored_state(engine, full.id)
    assert engine.status(shortcut.id).status == engine.status(full.id).status == "completed"
    assert [e[:2] for e in events(engine, shortcut.id)] == [e[:2] for e in events(engine, full.id)]
    assert [e["detail"] for e in engine.log(shortcut.id)] == [e["detail"] for e in engine.log(full.id)]
    assert engine.verify_log()["ok"]  # (the step_ready entries' detail texts given by the recipe chain as any)


def test_runs_share_only_frozen_records_and_a_step_changes_none_of_them(tmp_path: Path,
                                                                          make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"linear": PROCESSES["linear"]}))
    one, other = (engine.start("linear", DATA, actor="agent:a") for _ in range(2))
    engine.complete(one.id, "draft", {"note": "a first draft"}, actor="agent:a")
    assert [(s.id, s.state) for s in engine.status(other.id).steps] == [("draft", "ready"), ("approve", "locked")]
    assert [(s.id, s.state) for s in engine.status(one.id).steps] == [("draft", "done"), ("approve", "ready")]


def test_a_first_move_that_waits_on_the_start_data_has_no_recipe(tmp_path: Path,
                                                                  make_engine: Callable[..., Engine]) -> None:
    """A message waited for from the start is correlated with the run's own data, which both probes lack
    alike: copied from them, every run would wait for the probes' key. Such a start runs ``Move.run``."""
    from test_tier1_event_subprocess_messages import recall_process

    engine = make_engine(tier1_home(tmp_path / "home", {"recall": recall_process("recall", True)}))
    started = {ticket: engine.start("recall", {"ticket": ticket}, actor="agent:a") for ticket in ("T-1", "T-2", "T-3")}
    definition = engine._definitions_by_version[started["T-1"].definition_version]
    assert definition.specs[0].__dict__["_tiergate_first_state"][3] is None
    for ticket, info in started.items():
        state = _stored_state(engine, info.id)
        assert [wait["correlate"] for wait in state["messages"]] == [{"ticket": ticket}]
