"""A run's last move from a template (``tiergate.bpmn.lastmove``) is the engine's own, byte for byte.

The first completions that end a run of a step are probes: the template's outcome is compared
with SpiffWorkflow's move; once ``PROBES`` agreed the template is trusted and the move is not
run. Whole runs are made both ways (``lastmove.ENABLED`` off: the engine's move every time) and
compared as stored and logged; the runner's result from one state is compared as the store would
write it, byte for byte. Completions outside the narrow case run the engine's move, and a
template broken on purpose is caught by its probe and never used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from support import events, row, turned_off
from test_tier1_events import ERROR_SUBPROCESS, SIGNAL, event, process
from test_tier1_fresh import INLINE, _stored_state
from test_tier1_instances import camunda_mi, repeated
from test_tier1_prepost import task_with_scripts
from tier1_helpers import LINEAR, bpmn, chain, flow, tier1_home, user
from tiergate import jsontext
from tiergate.actors import SYSTEM, Actor
from tiergate.bpmn import kept, lastmove
from tiergate.bpmn.definition import BpmnDefinition, load_process
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, InvalidDataError
from tiergate.runners.base import RunContext, Transition
from tiergate.runners.bpmn import BpmnRunner
from tiergate.store.db import encode_json

SINGLE = bpmn("single", '<bpmn:startEvent id="start"/>' + user("triage", gate={
    "type": "object", "required": ["summary"], "properties": {"summary": {"type": "string", "minLength": 3}}})
    + '<bpmn:endEvent id="end"/>' + chain("start", "triage", "end"))
MANUAL = bpmn("manual", '<bpmn:startEvent id="start"/>' + user("check", kind="manualTask")
              + '<bpmn:endEvent id="end"/>' + chain("start", "check", "end"))
JOINED = bpmn("joined", '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("a") + user("b")
              + '<bpmn:parallelGateway id="join"/>' + user("c") + '<bpmn:endEvent id="end"/>'
              + chain("start", "split") + flow("f1", "split", "a") + flow("f2", "split", "b")
              + flow("f3", "a", "join") + flow("f4", "b", "join") + chain("join", "c", "end"))
OPTIONAL = bpmn("optional", '<bpmn:startEvent id="start"/>' + user("work") + user("extra", optional="true")
                + '<bpmn:endEvent id="end"/>' + chain("start", "work", "extra", "end"))
PLAIN_AFTER = bpmn("plain_after", '<bpmn:startEvent id="start"/>' + user("work") + '<bpmn:task id="notify"/>'
                   '<bpmn:intermediateThrowEvent id="noted"/><bpmn:endEvent id="end"/>'
                   + chain("start", "work", "notify", "noted", "end"))
#: Processes whose last step ends the run with nothing evaluated: (xml, the steps of a run, the last templated).
NARROW = {
    "single": (SINGLE, [("triage", {"summary": "wrong rate", "ticket": "T-9"}, "agent:a")]),
    "linear": (LINEAR, [("draft", {"note": "a first draft"}, "agent:a"),
                        ("approve", {"approved": True, "note": "fine"}, "human:alice")]),
    "manual": (MANUAL, [("check", {}, "human:bob")]),
    "joined": (JOINED, [("b", {"note": "b"}, "agent:a"), ("a", {"note": "a"}, "agent:a"),
                        ("c", {"done": True, "nested": {"x": [1, {"y": None}]}}, "agent:a")]),
    "choice": (INLINE["choice"], [("high_path", {"n": 99, "ü": "ß"}, "agent:a")]),
    "optional": (OPTIONAL, [("work", {"note": "w"}, "agent:a"), ("extra", None, "agent:a")]),  # skipped
    "plain_after": (PLAIN_AFTER, [("work", {"note": "w"}, "agent:a")]),  # a plain task and a none event on the way
}
DATA = {"ticket": "T-1", "n": 7, "nested": {"deep": [{"x": 1}], "ü": "ß"}, "none": None, "number": 2.5,
        "tenants": ["acme", "globex"]}

TERMINATE = bpmn("terminate", '<bpmn:startEvent id="start"/>' + user("work")
                 + '<bpmn:endEvent id="end"><bpmn:terminateEventDefinition/></bpmn:endEvent>'
                 + chain("start", "work", "end"))
SCRIPT_AFTER = bpmn("script_after", '<bpmn:startEvent id="start"/>' + user("work")
                    + '<bpmn:scriptTask id="calc"><bpmn:script>total = n + 1</bpmn:script></bpmn:scriptTask>'
                    + '<bpmn:endEvent id="end"/>' + chain("start", "work", "calc", "end"))
GATEWAY_AFTER = bpmn("gateway_after", '<bpmn:startEvent id="start"/>' + user("work")
                     + '<bpmn:exclusiveGateway id="gw" default="plain"/><bpmn:endEvent id="end"/>'
                       '<bpmn:endEvent id="end2"/>' + chain("start", "work", "gw") + flow("plain", "gw", "end")
                     + flow("big", "gw", "end2", "n > 100"))
POST_SCRIPT = bpmn("post_script", '<bpmn:startEvent id="start"/>' + task_with_scripts("work", post="checked = True")
                   + '<bpmn:endEvent id="end"/>' + chain("start", "work", "end"))
DATA_OBJECT = bpmn("data_object", '<bpmn:dataObject id="limit"/><bpmn:dataObjectReference id="limit_out" '
                   'dataObjectRef="limit"/><bpmn:startEvent id="start"/>'
                   + user("work").replace("</bpmn:userTask>", '<bpmn:dataOutputAssociation id="writes"><bpmn:targetRef>'
                                          'limit_out</bpmn:targetRef></bpmn:dataOutputAssociation></bpmn:userTask>')
                   + '<bpmn:endEvent id="end"/>' + chain("start", "work", "end"))
TWO_ENDS = bpmn("two_ends", '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("a") + user("b")
                + '<bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>' + chain("start", "split")
                + flow("f1", "split", "a") + flow("f2", "split", "b") + chain("a", "e1") + chain("b", "e2"))
MANY = bpmn("many", '<bpmn:startEvent id="start"/>' + repeated("verify", camunda_mi("tenants", "tenant"))
            + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "end"))
SUBPROCESS = bpmn("subprocess", '<bpmn:startEvent id="start"/><bpmn:subProcess id="sub"><bpmn:startEvent id="s_start"/>'
                 + user("inner") + '<bpmn:endEvent id="s_end"/>' + chain("s_start", "inner", "s_end", prefix="s")
                 + '</bpmn:subProcess><bpmn:endEvent id="end"/>' + chain("start", "sub", "end"))
SIGNAL_END = process("signal_end", '<bpmn:startEvent id="start"/>' + user("work") + event("endEvent", "end", SIGNAL)
                     + chain("start", "work", "end"))
#: Processes whose last step does not end the run plainly: (xml, steps of a run). None of their steps is templated.
WIDE = {
    "terminate": (TERMINATE, [("work", {}, "agent:a")]),
    "script_after": (SCRIPT_AFTER, [("work", {"note": "x"}, "agent:a")]),
    "gateway_after": (GATEWAY_AFTER, [("work", {}, "agent:a")]),
    "post_script": (POST_SCRIPT, [("work", {"note": "x"}, "agent:a")]),
    "data_object": (DATA_OBJECT, [("work", {"limit": 3}, "agent:a")]),
    "two_ends": (TWO_ENDS, [("a", {}, "agent:a"), ("b", {}, "agent:a")]),  # a: b is still open; b: e1's join waits
    "timer": (INLINE["timer"], [("work", {}, "agent:a")]),  # a boundary timer on the last task
    "many": (MANY, [("verify[1]", {}, "agent:a"), ("verify[0]", {}, "agent:a")]),
    "subprocess": (SUBPROCESS, [("inner", {"note": "x"}, "agent:a")]),  # its end is the subprocess's
    "signal_end": (SIGNAL_END, [("work", {}, "agent:a")]),
    "evs": (process("evs", ERROR_SUBPROCESS), [("other", {}, "agent:a"), ("work", {"broken": False}, "agent:a")]),
}


def engine_moves() -> AbstractContextManager[None]:
    """Every last move run by the engine (no template)."""
    return turned_off(lastmove.ENABLED)


def _spec(engine: Engine, process_id: str) -> Any:
    return engine.definitions.process(process_id).specs[0]


def _run(engine: Engine, process_id: str, steps: list[tuple[str, Any, str]]) -> str:
    run = engine.start(process_id, DATA, actor="agent:a").id
    for step, evidence, actor in steps:
        if evidence is None:
            engine.skip(run, step, "not needed this time", actor=actor)
        else:
            engine.complete(run, step, evidence, actor=actor)
    assert engine.status(run).status == "completed"
    return run


def _same_runs(engine: Engine, mine: str, theirs: str) -> None:
    assert _stored_state(engine, mine) == _stored_state(engine, theirs)
    views = [[(v.id, v.state, v.actor, v.evidence, v.reason, v.title) for v in engine.status(run).steps]
             for run in (mine, theirs)]
    assert views[0] == views[1]
    assert engine.status(mine).data == engine.status(theirs).data
    assert [e[:2] for e in events(engine, mine)] == [e[:2] for e in events(engine, theirs)]
    assert [(_detail(e), e["duration_s"] is None) for e in engine.log(mine)] == \
        [(_detail(e), e["duration_s"] is None) for e in engine.log(theirs)]


def _detail(entry: dict[str, Any]) -> dict[str, Any]:
    """A log entry's detail, a signal's broadcast id (random) left out."""
    return {key: value for key, value in entry["detail"].items() if key != "broadcast"}


@pytest.mark.parametrize("process_id", sorted(NARROW))
def test_runs_ended_by_a_template_are_stored_and_logged_as_the_engine_ends_them(
        process_id: str, tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml, steps = NARROW[process_id]
    engine = make_engine(tier1_home(tmp_path / "home", {process_id: xml}))
    last = steps[-1][0]
    for number in range(lastmove.PROBES + 2):
        mine = _run(engine, process_id, steps)
        with engine_moves():
            theirs = _run(engine, process_id, steps)
        _same_runs(engine, mine, theirs)
        made = lastmove.known(_spec(engine, process_id), last)
        assert made is not None and made.proven == min(number + 1, lastmove.PROBES)
    assert made.trusted and not lastmove.broken(_spec(engine, process_id))
    for step, _, _ in steps[:-1]:  # a step the run goes on from: never a probe
        earlier = lastmove.known(_spec(engine, process_id), step)
        assert earlier is None or earlier.proven == 0


def test_a_run_read_back_from_the_database_is_ended_alike(tmp_path: Path,
                                                         make_engine: Callable[..., Engine]) -> None:
    """A second engine on the same database has no kept workflow or state: it reads the run's row."""
    home = tier1_home(tmp_path / "home", {"linear": LINEAR})
    first, second = make_engine(home), make_engine(home)
    steps = NARROW["linear"][1]
    for _ in range(lastmove.PROBES + 2):
        runs = []
        for template in (True, False):
            run = first.start("linear", DATA, actor="agent:a").id
            first.complete(run, *steps[0][:2], actor=steps[0][2])  # type: ignore[misc]
            stored = row(first, run)  # the workflow kept in this process for that state: dropped, so it is read back
            assert kept.take(json.loads(stored["state"]) if isinstance(stored["state"], str) else stored["state"],
                             stored["definition_version"]) is not None
            token = lastmove.ENABLED.set(template)
            try:
                done = second.complete(run, *steps[1][:2], actor=steps[1][2])  # type: ignore[misc]
                assert done.status == "completed"
            finally:
                lastmove.ENABLED.reset(token)
            runs.append(run)
        _same_runs(second, *runs)
    pinned = [d.specs[0] for d in second._definitions_by_version.values()]  # (read from the database's snapshot)
    assert len(pinned) == 1 and lastmove.known(pinned[0], "approve").trusted  # type: ignore[union-attr]


@pytest.mark.parametrize("process_id", sorted(WIDE))
def test_a_completion_outside_the_narrow_case_runs_the_engines_move(
        process_id: str, tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml, steps = WIDE[process_id]
    engine = make_engine(tier1_home(tmp_path / "home", {process_id: xml}))
    for _ in range(lastmove.PROBES + 1):
        mine = _run(engine, process_id, steps)
        with engine_moves():
            theirs = _run(engine, process_id, steps)
        _same_runs(engine, mine, theirs)
    spec = _spec(engine, process_id)
    for step, _, _ in steps:
        made = lastmove.known(spec, step.split("[")[0])
        assert made is None or made.proven == 0, step  # never probed, never used
    assert not lastmove.broken(spec)


def test_a_completion_refused_by_its_gate_is_no_probe(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"single": SINGLE}))
    run = engine.start("single", DATA, actor="agent:a").id
    before = _stored_state(engine, run)
    with pytest.raises(GateFailedError):
        engine.complete(run, "triage", {"summary": "no"}, actor="agent:a")  # too short for the gate
    with pytest.raises(InvalidDataError):
        engine.complete(run, "triage", ["long enough"], actor="agent:a")  # not an object of fields
    assert _stored_state(engine, run) == before and engine.status(run).status == "active"
    made = lastmove.known(_spec(engine, "single"), "triage")
    assert made is None or made.proven == 0
    assert engine.complete(run, "triage", {"summary": "long enough"}, actor="agent:a").status == "completed"
    assert lastmove.known(_spec(engine, "single"), "triage").proven == 1  # type: ignore[union-attr]


# --- the runner's result from one state, as the store writes it --------------------------------------------

def _kinds(value: Any) -> Any:
    if isinstance(value, dict):
        return (type(value).__name__, value.text if isinstance(value, jsontext.Encoded) else None,
                [(key, _kinds(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [_kinds(item) for item in value])
    return (type(value).__name__, repr(value))


def _ctx(actor: str) -> RunContext:
    return RunContext(run_id="r", actor=SYSTEM if actor == "system" else Actor.parse(actor),
                      now=datetime.now(timezone.utc))


def _before_last(runner: BpmnRunner, definition: BpmnDefinition, steps: list[tuple[str, Any, str]]) -> dict[str, Any]:
    state = runner.start(definition, DATA, _ctx("system")).state
    for step, evidence, actor in steps[:-1]:
        state = runner.complete_step(definition, state, step, evidence, _ctx(actor)).state
    return state


def _last(runner: BpmnRunner, definition: BpmnDefinition, state: dict[str, Any], step: tuple[str, Any, str],
          ctx: RunContext) -> Transition:
    name, evidence, _ = step
    if evidence is None:
        return runner.skip_step(definition, state, name, "not needed this time", ctx)
    return runner.complete_step(definition, state, name, evidence, ctx)


def _byte_for_byte(mine: Transition, theirs: Transition) -> None:
    assert encode_json(mine.state) == encode_json(theirs.state)
    assert _kinds(mine.state) == _kinds(theirs.state)
    assert mine.events == theirs.events and mine.status == theirs.status


@pytest.mark.parametrize("process_id", ["single", "manual", "joined", "choice", "optional", "plain_after"])
def test_the_templated_state_is_the_engines_byte_for_byte(process_id: str) -> None:
    xml, steps = NARROW[process_id]
    definition, problems = load_process(xml, f"{process_id}.bpmn", process_id)
    assert definition is not None, problems
    runner, spec, name = BpmnRunner(), definition.specs[0], steps[-1][0]
    for number in range(lastmove.PROBES):  # probes: the engine's result, compared with the template's
        state = _before_last(runner, definition, steps)
        ctx = _ctx(steps[-1][2])
        probed = _last(runner, definition, state, steps[-1], ctx)
        with engine_moves():
            _byte_for_byte(probed, _last(runner, definition, state, steps[-1], ctx))
        assert lastmove.known(spec, name).proven == number + 1  # type: ignore[union-attr]
    for templated_first in (True, False):  # the kept workflow goes to the first; the second restores the stored one
        state = _before_last(runner, definition, steps)
        ctx = _ctx(steps[-1][2])
        if templated_first:
            mine = _last(runner, definition, state, steps[-1], ctx)
            with engine_moves():
                theirs = _last(runner, definition, state, steps[-1], ctx)
        else:
            with engine_moves():
                theirs = _last(runner, definition, state, steps[-1], ctx)
            mine = _last(runner, definition, state, steps[-1], ctx)
        _byte_for_byte(mine, theirs)
        assert mine.status.value == "completed" and mine.events[-1].event == "completed"
    assert lastmove.known(spec, name).trusted  # type: ignore[union-attr]


# --- a template broken on purpose ---------------------------------------------------------------------------

def _off_by_one_key(made: jsontext.Encoded) -> jsontext.Encoded:
    return jsontext.Encoded(made, made.text.replace('"success": true', '"success":  true'))


BREAKS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    # the dump's text one space off (its value the same)
    "dump text": lambda mp: mp.setattr(lastmove, "_dump",
                                       lambda wf, data, f=lastmove._dump: _off_by_one_key(f(wf, data))),
    # the data view with a key the engine's lacks
    "data view": lambda mp: mp.setattr(lastmove, "to_jsonable",
                                       lambda value, f=lastmove.to_jsonable: {**f(value), "extra": 1}),
    # the records left unfrozen: the same text, another kind for the store
    "record kinds": lambda mp: mp.setattr(lastmove, "records", SimpleNamespace(freeze=lambda state: None)),
    # the template fails outright
    "failing": lambda mp: mp.setattr(lastmove, "_dump", lambda wf, data: 1 / 0),
}


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_a_template_broken_on_purpose_is_caught_by_its_probe_and_never_used(
        how: str, tmp_path: Path, make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"single": SINGLE}))
    steps = NARROW["single"][1]
    with monkeypatch.context() as patched:
        BREAKS[how](patched)
        mine = _run(engine, "single", steps)  # a probe: the engine's move is what is stored
        spec = _spec(engine, "single")
        assert lastmove.broken(spec)
        later = [_run(engine, "single", steps) for _ in range(lastmove.PROBES + 1)]  # the engine's, every time
    assert lastmove.known(spec, "triage").proven == 0  # type: ignore[union-attr]
    with engine_moves():
        theirs = _run(engine, "single", steps)
    for run in (mine, *later):
        _same_runs(engine, run, theirs)
