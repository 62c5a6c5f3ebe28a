"""A new run's first passes from a template (``tiergate.bpmn.firstmove``) leave what the engine's own passes leave.

Each start is made twice, with the template and with ``firstmove.ENABLED`` off (the engine's
passes): the state as stored (task ids numbered in order of appearance, last state changes left
out) and the log entries must be the same, byte for byte; then the runs go on step by step and
stay the same. Processes whose first passes evaluate or wait for something run their passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from support import REPO, events, turned_off
from test_tier1_fresh import INLINE, _stored_state
from tier1_helpers import LINEAR, bpmn, chain, flow, tier1_home, user
from tiergate.actors import SYSTEM
from tiergate.bpmn import firstmove, kept, persistence
from tiergate.bpmn.definition import BpmnDefinition, load_process
from tiergate.definitions.home import Home, load_definitions
from tiergate.engine import Engine
from tiergate.runners.base import RunContext
from tiergate.runners.bpmn import BpmnRunner
from tiergate.store.db import encode_json

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

MANUAL = bpmn("manual", '<bpmn:startEvent id="start"/>' + user("check", kind="manualTask") + user("sign")
              + '<bpmn:endEvent id="end"/>' + chain("start", "check", "sign", "end"))
SPLIT_FIRST = bpmn("split_first", '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("a")
                   + user("b") + '<bpmn:parallelGateway id="join"/>' + user("c") + '<bpmn:endEvent id="end"/>'
                   + chain("start", "split") + flow("f1", "split", "a") + flow("f2", "split", "b")
                   + flow("f3", "a", "join") + flow("f4", "b", "join") + chain("join", "c", "end"))
PROCESSES = {"linear": LINEAR, "parallel": INLINE["parallel"], "manual": MANUAL, "split_first": SPLIT_FIRST,
             "choice": INLINE["choice"], "timer": INLINE["timer"], "many": INLINE["many"], "evs": INLINE["evs"]}
#: Those whose first passes evaluate, wait for or read something: they run their passes every time.
PASSES_RUN = {"choice", "timer", "many"}
DATA = {"ticket": "T-1", "n": 7, "tenants": ["acme", "globex"], "nested": {"deep": [{"x": 1}], "ü": "ß"},
        "none": None, "number": 2.5}


def passes_run() -> AbstractContextManager[None]:
    return turned_off(firstmove.ENABLED)


def _definitions() -> list[tuple[str, BpmnDefinition]]:
    found = []
    for process_id, xml in PROCESSES.items():
        definition, problems = load_process(xml, f"{process_id}.bpmn", process_id)
        assert definition is not None, problems
        found.append((process_id, definition))
    platform = load_definitions(Home(REPO))
    for path in sorted((REPO / "processes").glob("*.bpmn")):
        found.append((f"processes/{path.stem}", platform.process(path.stem)))
    return found


DEFINITIONS = _definitions()


def stored_text(state: dict[str, Any]) -> str:
    """The state's text as stored, its move stamp and tasks' last state changes left out, ids numbered in order."""
    value = json.loads(encode_json(state))
    value.pop("move", None)
    for workflow in (value["workflow"], *value["workflow"].get("subprocesses", {}).values()):
        for task in workflow.get("tasks", {}).values():
            task.pop("last_state_change")
    text = json.dumps(value)
    numbers: dict[str, str] = {}
    for found in _UUID.finditer(text):
        numbers.setdefault(found.group(0), f"task-{len(numbers)}")
    return _UUID.sub(lambda m: numbers[m.group(0)], text)


def _start_data(definition: BpmnDefinition) -> dict[str, Any]:
    """``DATA``, with a text for each input a platform process requires."""
    schema = definition.inputs if isinstance(definition.inputs, dict) else {}
    return {**DATA, **{name: "x" for name in schema.get("required", ())}}


@pytest.mark.parametrize("name, definition", DEFINITIONS, ids=[name for name, _ in DEFINITIONS])
def test_a_templated_start_is_stored_and_logged_as_the_engines_passes_leave_it(name: str,
                                                                              definition: BpmnDefinition) -> None:
    runner, data = BpmnRunner(), _start_data(definition)
    ctx = RunContext(run_id="r", actor=SYSTEM, now=datetime.now(timezone.utc))
    templated = runner.start(definition, data, ctx)
    with passes_run():
        real = runner.start(definition, data, ctx)
    first = firstmove.template_of(*definition.specs, lambda data: None)  # (made by the first start)
    assert (first is None) == (name in PASSES_RUN)
    assert first is None or first.shape is not None  # (small trees: the dump is spelled from its shape)
    assert stored_text(templated.state) == stored_text(real.state)
    assert [(e.event, e.step, e.detail) for e in templated.events] == [(e.event, e.step, e.detail) for e in real.events]
    assert templated.status == real.status
    assert data == _start_data(definition)  # the caller's data is copied, not taken


def _sharing(workflow: Any) -> list[list[tuple[str, bool]]]:
    """Per task: for each value of its data, whether it is the root's own object, and its items the root's."""
    root = workflow.task_tree.data
    found = []
    for task in persistence.all_tasks(workflow):
        found.append([(key, value is root.get(key),
                       isinstance(value, (list, dict)) and all(a is b for a, b in zip(
                           value.values() if isinstance(value, dict) else value,
                           root[key].values() if isinstance(root.get(key), dict) else root.get(key) or ())))
                      for key, value in task.data.items()])
    return found


@pytest.mark.parametrize("process_id", ["linear", "parallel", "split_first"])
def test_a_templated_starts_tasks_share_their_data_as_the_engines_inheritance_shares_it(process_id: str) -> None:
    """SpiffWorkflow's inheritance (``DeepMerge`` into an empty dict) copies lists and dicts one level deep:
    a script that changes a nested item in one task changes it in the others. The copy does the same."""
    definition = dict(DEFINITIONS)[process_id]
    runner = BpmnRunner()
    ctx = RunContext(run_id="r", actor=SYSTEM, now=datetime.now(timezone.utc))
    templated = runner.start(definition, DATA, ctx)
    with passes_run():
        real = runner.start(definition, DATA, ctx)
    mine, theirs = (kept.take(t.state, definition.version) for t in (templated, real))
    assert mine is not None and theirs is not None
    assert _sharing(mine) == _sharing(theirs)
    assert any(inherited for task in _sharing(mine)[1:] for _, _, inherited in task)  # (there is sharing to see)
    order = [task.task_spec.name for task in sorted(persistence.all_tasks(mine), key=lambda t: t.last_state_change)]
    assert order == [t.task_spec.name for t in sorted(persistence.all_tasks(theirs), key=lambda t: t.last_state_change)]
    assert max(t.last_state_change for t in mine.tasks.values()) <= datetime.now(timezone.utc).timestamp()


def test_a_copy_shares_nothing_with_the_template_or_another_run() -> None:
    definition = dict(DEFINITIONS)["parallel"]
    runner = BpmnRunner()
    ctx = RunContext(run_id="r", actor=SYSTEM, now=datetime.now(timezone.utc))
    first, second = (runner.start(definition, DATA, ctx) for _ in range(2))
    one, other = (kept.take(t.state, definition.version) for t in (first, second))
    first = firstmove.template_of(*definition.specs, lambda data: None)
    assert first is not None and one is not None and other is not None
    assert not set(one.tasks) & set(other.tasks)
    one.task_tree.data["nested"]["deep"].append("changed")
    for task in one.tasks.values():
        task.internal_data["marker"] = True
    assert other.task_tree.data["nested"] == DATA["nested"] and DATA["nested"]["deep"] == [{"x": 1}]
    assert all("marker" not in t.internal_data for t in (*other.tasks.values(), *first.template.tasks))


STEPS = {"linear": [("draft", {"note": "a first draft"}, "agent:a"), ("approve", {"approved": True}, "human:alice")],
         "parallel": [("b", {"note": "b first"}, "agent:a"), ("a", {"note": "then a"}, "agent:a")],
         "split_first": [("a", {}, "agent:a"), ("b", {}, "agent:a"), ("c", {"done": True}, "agent:a")],
         "manual": [("check", {}, "human:bob"), ("sign", {}, "human:bob")],
         "choice": [("high_path", {}, "agent:a")],
         "evs": [("work", {"broken": True}, "agent:a"), ("repair", {}, "agent:a")]}  # an error, caught


@pytest.mark.parametrize("process_id", sorted(STEPS))
def test_runs_started_both_ways_are_stored_and_logged_alike_to_their_end(
        process_id: str, tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {p: PROCESSES[p] for p in STEPS}))
    templated = engine.start(process_id, DATA, actor="agent:a").id
    with passes_run():
        real = engine.start(process_id, DATA, actor="agent:a").id
    assert _stored_state(engine, templated) == _stored_state(engine, real)
    for step, evidence, actor in STEPS[process_id]:
        engine.complete(templated, step, evidence, actor=actor)
        engine.complete(real, step, evidence, actor=actor)
        assert _stored_state(engine, templated) == _stored_state(engine, real)
    assert engine.status(templated).status == engine.status(real).status == "completed"
    assert [e[:2] for e in events(engine, templated)] == [e[:2] for e in events(engine, real)]
    assert [e["detail"] for e in engine.log(templated)] == [e["detail"] for e in engine.log(real)]
