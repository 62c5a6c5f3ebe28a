"""A finished Tier 1 run's state: what it waits for is nothing, spelled as before.

A run's last move no longer looks through its tree for timers, messages and signals when the
workflow is completed (``Move.run``: the completed branch replaces them with nothing anyway); a
state stored whole is not searched for parts when its text is too short to hold one
(``tiergate.store.parts``). These tests hold both to what the engine stored before: the same
keys in the same order, nothing waited for once finished, everything waited for while running,
and a log that verifies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from test_tier1_event_subprocess_messages import recall_process
from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate import claims
from tiergate.engine import Engine
from tiergate.jsontext import Encoded
from tiergate.lifecycle import RunStatus
from tiergate.runners.bpmn import BpmnRunner

#: The keys of a Tier 1 run's stored state, in the order every move has written them.
KEYS = ["workflow", "data", "sources", "steps", "timers", "due_at", "error", "passed", "messages", "signals"]

TIMED = ('<bpmn:startEvent id="start"/>' + user("triage")
         + '<bpmn:boundaryEvent id="nudge" attachedToRef="triage" cancelActivity="false"><bpmn:timerEventDefinition>'
           '<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
         + user("remind") + '<bpmn:endEvent id="reminded"/><bpmn:endEvent id="end"/>'
         + chain("start", "triage", "end") + chain("nudge", "remind", "reminded", prefix="n"))
SIGNALLED = ('<bpmn:startEvent id="start"/>' + user("triage")
             + '<bpmn:boundaryEvent id="stop" attachedToRef="triage"><bpmn:signalEventDefinition signalRef="sig"/>'
               '</bpmn:boundaryEvent><bpmn:endEvent id="stopped"/><bpmn:endEvent id="end"/>'
             + chain("start", "triage", "end") + chain("stop", "stopped", prefix="s"))
EMPTY = '<bpmn:startEvent id="start"/><bpmn:endEvent id="end"/>' + chain("start", "end")


def _engine(tmp_path: Path, make_engine: Callable[..., Engine]) -> Engine:
    signalled = bpmn("signalled", SIGNALLED).replace("<bpmn:process ", '<bpmn:signal id="sig" name="stop_now"/>'
                                                     "<bpmn:process ", 1)
    home = tier1_home(tmp_path / "home", {"timed": bpmn("timed", TIMED), "signalled": signalled,
                                          "recall": recall_process("recall", False), "empty": bpmn("empty", EMPTY)})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    return engine


def _stored(engine: Engine, run_id: str) -> dict[str, Any]:
    """The run row's state as its text spells it (keys in their stored order)."""
    with engine.db.read() as conn:
        text = conn.execute(sa.text("SELECT CAST(state AS TEXT) FROM runs WHERE id = :r"), {"r": run_id}).scalar()
    return json.loads(text)  # type: ignore[no-any-return]


def _finished(state: dict[str, Any]) -> None:
    assert list(state) == KEYS
    assert (state["timers"], state["due_at"], state["messages"], state["signals"], state["error"]) == ([], None, [],
                                                                                                       [], None)
    assert state["workflow"]["completed"] is True


def test_a_finished_run_waits_for_nothing_and_keeps_its_keys_order(tmp_path: Path,
                                                                   make_engine: Callable[..., Engine]) -> None:
    engine = _engine(tmp_path, make_engine)
    waiting = {"timed": lambda s: s["timers"] and s["due_at"] and s["timers"][0]["timer"] == "nudge",
               "signalled": lambda s: s["signals"] == [{"signal": "stop_now", "element": "stop"}],
               "recall": lambda s: [m["element"] for m in s["messages"]] == ["recall_in"]}
    for process, waits in waiting.items():
        run = engine.start(process, {"ticket": "T-1"}, actor="agent:a")
        running = _stored(engine, run.id)
        assert list(running) == [*KEYS, "move"] and waits(running), (process, running)  # a run under way: found
        for step in [s.id for s in run.steps if s.state == "ready"] + (["ship"] if process == "recall" else []):
            info = engine.complete(run.id, step, {"note": step}, actor="agent:a")
        assert info.status == "completed" and info.timers == []
        _finished(_stored(engine, run.id))
    started = engine.start("empty", {"ticket": "T-2"}, actor="agent:a")  # finished by its first move
    assert started.status == "completed"
    _finished(_stored(engine, started.id))
    assert engine.verify_log()["ok"] is True


def _encoded_inside(value: Encoded) -> list[tuple[Encoded, Encoded]]:
    found = []
    for item in value.values():
        if isinstance(item, Encoded):
            found += [(value, item), *_encoded_inside(item)]
    return found


def test_an_encoded_states_text_holds_the_text_of_every_encoded_inside_it(tmp_path: Path,
                                                                          make_engine: Callable[..., Engine]) -> None:
    """What ``parts._find`` relies on to leave a short text unsearched: a large ``Parted`` inside makes it long."""
    engine = _engine(tmp_path, make_engine)
    runner = engine.runners[1]
    assert isinstance(runner, BpmnRunner)
    from tiergate.runners.base import RunContext
    from tiergate.store import parts

    pairs = 0
    for process in ("timed", "recall", "empty"):
        definition = engine.definitions.process(process)
        ctx = RunContext(run_id="r", actor=engine.actor("agent:a"), now=engine.clock())
        state = runner.start(definition, {"ticket": "T-1"}, ctx).state
        for value in state.values():
            if isinstance(value, Encoded):
                for outer, inner in _encoded_inside(value):
                    assert inner.text in outer.text
                    pairs += 1
        assert parts.split(state, {}) is None  # small: stored whole
    assert pairs > 0


TWO = ('<bpmn:startEvent id="start"/>' + user("triage", docs="Read {{ data.ticket }} and rate it.")
       + user("close", docs="Close {{ data.ticket }} as {{ data.rating | default('unrated') }}.")
       + '<bpmn:endEvent id="end"/>' + chain("start", "triage", "close", "end"))


def test_the_answers_of_a_run_without_repeating_steps_are_what_a_run_read_afresh_shows(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """Its views are made whole for each answer (not kept between answers): the same views, the same inbox key;
    its log entries spelled from the evidence's canonical text verify."""
    engine = make_engine(tier1_home(tmp_path / "home", {"two": bpmn("two", TWO)}))
    infos = [engine.start("two", {"ticket": "T-7"}, actor="agent:a")]
    infos.append(engine.complete(infos[0].id, "triage", {"rating": "high", "ticket": "T-8"}, actor="agent:a"))
    assert [s.instructions for s in infos[-1].steps if s.state == "ready"] == ["Close T-8 as high."]
    completed = [e["detail"] for e in engine.log(infos[0].id) if e["event"] == "step_completed"]
    assert completed == [{"evidence": {"rating": "high", "ticket": "T-8"},
                          "overwrote": {"ticket": {"was": "T-7", "by": "inputs"}}}]
    for info in infos[-1:]:
        afresh = engine.status(info.id)
        assert [s.to_dict() for s in info.steps] == [s.to_dict() for s in afresh.steps]
        with engine.db.read() as conn:
            key = conn.execute(sa.text("SELECT ready_for FROM runs WHERE id = :r"), {"r": info.id}).scalar()
        assert key == claims.ready_key(afresh.steps, RunStatus(afresh.status)) and key != "|"
    done = engine.complete(infos[0].id, "close", {"note": "ünïcode ✓", "n": 1.5}, actor="agent:a")
    assert done.status == "completed" and [s.to_dict() for s in done.steps] == [
        s.to_dict() for s in engine.status(done.id).steps]
    assert [e["detail"] for e in engine.log(done.id) if e["event"] == "step_completed"][-1] == {
        "evidence": {"note": "ünïcode ✓", "n": 1.5}}
    assert engine.verify_log()["ok"] is True  # each entry's hash re-worked from its stored detail
