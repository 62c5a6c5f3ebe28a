"""A new run's workflow copied from its spec's template (``tiergate.bpmn.fresh``) is the one SpiffWorkflow builds.

Compared on the task tree as stored (``persistence.dump``), with task ids numbered in order of
appearance and last state changes by their order: right after creation, and after the engine
ran on with the same data. Then whole runs: one moved in this process (template and kept
workflow) and one moved by CLI commands (each a new process, restoring from the database) end
in the same states.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support import CORPUS, REPO, CLIResult, events, row
from test_tier1_events import ERROR_SUBPROCESS, process
from test_tier1_instances import camunda_mi, repeated
from tier1_helpers import GATE_NOTE, LINEAR, bpmn, chain, flow, tier1_home, user
from tiergate.bpmn import calls, fresh, instances, persistence
from tiergate.bpmn.definition import load_process
from tiergate.bpmn.model import read_process
from tiergate.bpmn.parser import build_specs
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow
from tiergate.bpmn.xml import BpmnError, parse_bpmn
from tiergate.definitions.home import Home, load_definitions
from tiergate.engine import Engine

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")

TIMER = ('<bpmn:boundaryEvent id="late" attachedToRef="work" cancelActivity="false"><bpmn:timerEventDefinition>'
         '<bpmn:timeDuration>PT4H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>')
INLINE = {
    "linear": LINEAR,
    "parallel": bpmn("parallel", '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>'
                     + user("a") + user("b") + '<bpmn:parallelGateway id="join"/><bpmn:endEvent id="end"/>'
                     + chain("start", "split") + flow("f1", "split", "a") + flow("f2", "split", "b")
                     + flow("f3", "a", "join") + flow("f4", "b", "join") + chain("join", "end")),
    "choice": bpmn("choice", '<bpmn:startEvent id="start"/><bpmn:scriptTask id="calc"><bpmn:script>n = n + 1'
                   '</bpmn:script></bpmn:scriptTask><bpmn:exclusiveGateway id="gw" default="low"/>'
                   + user("high_path") + user("low_path") + '<bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>'
                   + chain("start", "calc", "gw") + flow("high", "gw", "high_path", "n > 5")
                   + flow("low", "gw", "low_path") + chain("high_path", "e1") + chain("low_path", "e2")),
    "timer": bpmn("timer", '<bpmn:startEvent id="start"/>' + user("work") + TIMER + user("remind")
                  + '<bpmn:endEvent id="end"/><bpmn:endEvent id="end2"/>' + chain("start", "work", "end")
                  + chain("late", "remind", "end2")),
    "many": bpmn("many", '<bpmn:startEvent id="start"/>' + repeated("verify", camunda_mi("tenants", "tenant"),
                                                                     gate=GATE_NOTE)
                 + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "end")),
}
INLINE["evs"] = process("evs", ERROR_SUBPROCESS)
DATA = {"n": 7, "tenants": ["acme", "globex"], "ticket": "T-1"}


def _specs() -> list[tuple[str, Any, dict[str, Any]]]:
    found = []
    sources = [(name, xml.encode()) for name, xml in INLINE.items()]
    definitions = load_definitions(Home(REPO))  # the platform's processes, with its roles and decisions
    for process_id in sorted(p.stem for p in (REPO / "processes").glob("*.bpmn")):
        found.append((f"processes/{process_id}", *definitions.process(process_id).specs))
    for path in sorted((REPO / "src/tiergate/builtin").glob("*.bpmn")):
        definition, _ = load_process(path.read_bytes(), path.name, path.stem, schema_folder=path.parent, builtin=True)
        assert definition is not None
        found.append((path.name, *definition.specs))
    for path in sorted((CORPUS / "bpmn-miwg" / "reference").glob("*.bpmn")):  # shapes, made executable
        sources.append((path.name, path.read_bytes().replace(b'isExecutable="false"', b'isExecutable="true"')))
    for name, data in sources:
        root = parse_bpmn(data, name).getroot()
        for element in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}process"):
            try:
                tree = parse_bpmn(data, name)
                model = read_process(tree, element.get("id"), name)
                spec, subprocess_specs = build_specs(tree, model, name, calls.called_trees({}))
            except BpmnError:
                continue  # refused by tiergate's checks (tests/test_tier1_check.py): never a run's spec
            for one in (spec, *subprocess_specs.values()):
                if one is not None:
                    persistence.connect_join_listeners(one)
                    instances.connect_instances(one)
            found.append((f"{name}:{element.get('id')}", spec, subprocess_specs))
    return found


SPECS = _specs()


def stored(workflow: RestrictedWorkflow) -> tuple[Any, list[int]]:
    """The workflow as stored, its ids numbered in order and times left out; and the order of its tasks' changes."""
    dumped = persistence.dump(workflow)
    changes = [task.pop("last_state_change") for task in dumped["tasks"].values()]
    for sub in dumped.get("subprocesses", {}).values():
        for task in sub["tasks"].values():
            task.pop("last_state_change")
    text = json.dumps(dumped)
    numbers: dict[str, str] = {}
    for found in _UUID.finditer(text):
        numbers.setdefault(found.group(0), f"task-{len(numbers)}")
    text = _TIME.sub("<time>", _UUID.sub(lambda m: numbers[m.group(0)], text))
    return json.loads(text), sorted(range(len(changes)), key=lambda i: (changes[i], i))


def advanced(workflow: RestrictedWorkflow) -> Any:
    workflow.task_tree.data.update(json.loads(json.dumps(DATA)))
    try:
        persistence.advance(workflow)
    except persistence.StepFailure as failure:
        return {"failed": str(failure), "state": stored(workflow)[0]}
    return stored(workflow)[0]


def test_the_corpus_is_there() -> None:
    names = {name for name, _, _ in SPECS}
    platform = {f"processes/{p.stem}" for p in (REPO / "processes").glob("*.bpmn")}
    assert len(SPECS) >= 12 and {"linear:linear", "many:many", "timer:timer", "evs:evs", *platform} <= names


@pytest.mark.parametrize("name, spec, subprocess_specs", SPECS, ids=[name for name, _, _ in SPECS])
def test_a_copy_of_the_template_is_the_workflow_spiffworkflow_builds(name: str, spec: Any,
                                                                     subprocess_specs: dict[str, Any]) -> None:
    template = fresh.template_of(spec, subprocess_specs)
    assert template is not None and fresh.template_of(spec, subprocess_specs) is template  # built once
    built = RestrictedWorkflow(spec, subprocess_specs, script_engine=RestrictedScriptEngine())
    copied = fresh.new_workflow(spec, subprocess_specs, RestrictedScriptEngine())
    assert stored(copied) == stored(built)
    assert advanced(copied) == advanced(built)


def test_copies_share_nothing_with_the_template_or_each_other() -> None:
    _, spec, subprocess_specs = next(s for s in SPECS if s[0] == "many:many")
    template = fresh.template_of(spec, subprocess_specs)
    assert template is not None
    first = fresh.new_workflow(spec, subprocess_specs, RestrictedScriptEngine())
    second = fresh.new_workflow(spec, subprocess_specs, RestrictedScriptEngine())
    assert not set(first.tasks) & set(second.tasks) and not set(first.tasks) & {t.id for t in template.tasks}
    assert all(task.workflow is first for task in first.tasks.values())
    first.task_tree.data["tenants"] = ["acme"]
    for task in first.tasks.values():
        task.internal_data["marker"] = True
    assert second.task_tree.data == {} and all(t.data == {} and t.internal_data == {} for t in template.tasks)
    assert all("marker" not in t.internal_data for t in second.tasks.values())
    engine = RestrictedScriptEngine()
    assert fresh.new_workflow(spec, subprocess_specs, engine).script_engine is engine


def test_a_copied_spec_builds_its_own_template() -> None:
    import copy

    _, spec, subprocess_specs = next(s for s in SPECS if s[0] == "linear:linear")
    template = fresh.template_of(spec, subprocess_specs)
    other = copy.copy(spec)  # carries the original's attribute, which names the original
    assert template is not None and fresh.template_of(other, subprocess_specs) is not template


def _stored_state(engine: Engine, run_id: str) -> Any:
    """The run's state as stored, ids numbered in order, times and the move stamp left out."""
    state = row(engine, run_id)["state"]
    state = json.loads(state) if isinstance(state, str) else state
    state.pop("move", None)
    for workflow in (state["workflow"], *state["workflow"].get("subprocesses", {}).values()):
        for task in workflow.get("tasks", {}).values():
            task.pop("last_state_change")
    numbers: dict[str, str] = {}
    text = json.dumps(state)
    for found in _UUID.finditer(text):
        numbers.setdefault(found.group(0), f"task-{len(numbers)}")
    return json.loads(_TIME.sub("<time>", _UUID.sub(lambda m: numbers[m.group(0)], text)))


@pytest.mark.parametrize("process_id, data, moves", [
    ("linear", {"ticket": "T-1"}, [("draft", {"note": "a first draft"}, "agent:a"),
                                   ("approve", {"approved": True}, "human:alice")]),
    ("many", {"tenants": ["acme", "globex"]}, [("verify[1]", {"note": "globex ok"}, "agent:a"),
                                               ("verify[0]", {"note": "acme ok"}, "agent:a")]),
])
def test_a_run_moved_in_this_process_is_stored_as_one_moved_by_separate_commands(
        process_id: str, data: dict[str, Any], moves: list[tuple[str, dict[str, Any], str]], tmp_path: Path,
        make_engine: Callable[..., Engine], cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"linear": LINEAR, "many": INLINE["many"]})
    engine = make_engine(home)  # this process: the template at the start, then the kept workflow
    here = engine.start(process_id, data, actor="agent:a").id
    started = cli("start", process_id, "--data", json.dumps(data), "--actor", "agent:a", "--json", home=home)
    assert started.returncode == 0, started
    there = started.json["data"]["id"]  # each command a new process, restoring the run from the database
    assert _stored_state(engine, here) == _stored_state(engine, there)
    for step, evidence, actor in moves:
        engine.complete(here, step, evidence, actor=actor)
        done = cli("complete", there, step, "--evidence", json.dumps(evidence), "--actor", actor, "--json",
                   home=home)
        assert done.returncode == 0, done
        assert _stored_state(engine, here) == _stored_state(engine, there)
    assert engine.status(here).status == "completed"
    assert [e[:2] for e in events(engine, here)] == [e[:2] for e in events(engine, there)]
    verified = cli("log", "verify", "--json", home=home)  # both runs' chains bind the states stored
    assert verified.returncode == 0, verified


def test_a_copys_ids_are_made_as_uuid4_makes_them() -> None:
    """``fresh._uuid4`` is ``UUID(bytes=..., version=4)`` without the argument checks: the same objects."""
    import os
    from uuid import UUID

    for _ in range(2000):
        raw = os.urandom(16)
        made, expected = fresh._uuid4(int.from_bytes(raw, "big")), UUID(bytes=raw, version=4)
        assert (made, made.int, str(made), made.version, made.variant, made.is_safe, type(made)) == \
            (expected, expected.int, str(expected), 4, expected.variant, expected.is_safe, UUID)
        assert hash(made) == hash(expected) and made.__reduce__() == expected.__reduce__()
