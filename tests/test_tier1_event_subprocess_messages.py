"""Tier 1: a message start event of an event subprocess, interrupting and not, reached by `tiergate message`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import CLIResult, row
from tier1_helpers import bpmn, chain, props, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import RefusedError

MESSAGES = '<bpmn:message id="m_recall" name="recall_requested"/>'


def recall_process(process_id: str, interrupting: bool) -> str:
    """Two steps in a row; an event subprocess that a recall message starts (its own step, then its end)."""
    attrs = "" if interrupting else ' isInterrupting="false"'
    handler = (f'<bpmn:subProcess id="on_recall" triggeredByEvent="true">'
               f'<bpmn:startEvent id="recall_in"{attrs}>{props(correlate="ticket")}'
               '<bpmn:messageEventDefinition messageRef="m_recall"/></bpmn:startEvent>'
               + user("undo") + '<bpmn:endEvent id="recall_done"/>'
               + chain("recall_in", "undo", "recall_done", prefix="r") + '</bpmn:subProcess>')
    body = ('<bpmn:startEvent id="start"/>' + user("prepare") + user("ship") + '<bpmn:endEvent id="end"/>'
            + chain("start", "prepare", "ship", "end") + handler)
    return bpmn(process_id, body).replace("<bpmn:process ", MESSAGES + "<bpmn:process ", 1)


def open_engine(tmp_path: Path, make_engine: Callable[..., Engine], interrupting: bool) -> Engine:
    home = tier1_home(tmp_path / "home", {"recall": recall_process("recall", interrupting)})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    return engine


def ready(info: Any) -> list[str]:
    return sorted(s.id for s in info.ready_steps)


def received(engine: Engine, run_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e["step"], e["actor"], e["detail"]) for e in engine.log(run_id) if e["event"] == "message_received"]


def test_an_interrupting_message_start_event_cancels_the_enclosing_work(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, interrupting=True)
    runs = {ticket: engine.start("recall", {"ticket": ticket}, actor="agent:a").id for ticket in ("T-1", "T-2")}
    state = row(engine, runs["T-2"])["state"]
    state = json.loads(state) if isinstance(state, str) else state
    assert state["messages"] == [{"message": "recall_requested", "element": "recall_in",
                                  "correlate": {"ticket": "T-2"}, "starts": "on_recall"}]

    before = {run_id: row(engine, run_id) for run_id in runs.values()}
    for correlate in ({}, {"ticket": "T-9"}):  # the key is required and must match one run
        with pytest.raises(RefusedError) as err:
            engine.message("recall_requested", correlate, {"why": "typo"}, actor="agent:crm")
        assert err.value.reason == "no_waiting_run"
        assert {w["run"] for w in err.value.details["waiting"]} == set(runs.values())
        assert {w["element"] for w in err.value.details["waiting"]} == {"recall_in"}
    assert {run_id: row(engine, run_id) for run_id in runs.values()} == before

    info = engine.message("recall_requested", {"ticket": "T-2"}, {"why": "wrong address"}, actor="agent:crm")
    assert info.id == runs["T-2"] and ready(info) == ["undo"]  # prepare was cancelled
    assert received(engine, runs["T-2"]) == [("recall_in", "agent:crm", {
        "message": "recall_requested", "correlate": {"ticket": "T-2"}, "data": {"why": "wrong address"},
        "sender": "agent:crm"})]
    escalated = [e for e in engine.log(runs["T-2"]) if e["event"] == "escalated"]
    assert [(e["step"], e["detail"]["event"], e["detail"]["interrupting"]) for e in escalated] == [
        ("on_recall", "message", True)]
    skipped = [(e["step"], e["detail"]["reason"]) for e in engine.log(runs["T-2"]) if e["event"] == "step_skipped"]
    assert len(skipped) == 1 and skipped[0][0] == "prepare" and skipped[0][1].startswith("interrupted by message")
    with pytest.raises(RefusedError) as err:  # interrupted: the run no longer waits for a recall
        engine.message("recall_requested", {"ticket": "T-2"}, {}, actor="agent:crm")
    assert err.value.reason == "no_waiting_run"
    with pytest.raises(RefusedError) as err:
        engine.complete(runs["T-2"], "prepare", {}, actor="agent:a")
    assert err.value.reason in ("not_ready", "already_done")
    done = engine.complete(runs["T-2"], "undo", {}, actor="agent:a")
    assert done.status == "completed" and done.data["why"] == "wrong address"

    other = engine.status(runs["T-1"])  # the other run is untouched and still waits
    assert other.status == "active" and ready(other) == ["prepare"] and received(engine, runs["T-1"]) == []
    assert ready(engine.complete(runs["T-1"], "prepare", {}, actor="agent:a")) == ["ship"]
    assert engine.complete(runs["T-1"], "ship", {}, actor="agent:a").status == "completed"
    with pytest.raises(RefusedError) as err:  # a finished run waits for nothing
        engine.message("recall_requested", {"ticket": "T-1"}, {}, actor="agent:crm")
    assert err.value.reason == "no_waiting_run"


def test_a_non_interrupting_message_start_event_runs_beside_the_process(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, interrupting=False)
    run = engine.start("recall", {"ticket": "T-3"}, actor="agent:a")
    info = engine.message("recall_requested", {"ticket": "T-3"}, {"why": "check"}, actor="agent:crm")
    assert ready(info) == ["prepare", "undo"]
    escalated = [e for e in engine.log(run.id) if e["event"] == "escalated"]
    assert [(e["step"], e["detail"]["interrupting"]) for e in escalated] == [("on_recall", False)]
    assert [r[0] for r in received(engine, run.id)] == ["recall_in"]
    state = row(engine, run.id)["state"]
    assert (json.loads(state) if isinstance(state, str) else state)["messages"] == []
    with pytest.raises(RefusedError) as err:  # one at a time: its steps are named by their elements
        engine.message("recall_requested", {"ticket": "T-3"}, {}, actor="agent:crm")
    assert err.value.reason == "no_waiting_run"
    assert ready(engine.complete(run.id, "undo", {}, actor="agent:a")) == ["prepare"]
    again = engine.message("recall_requested", {"ticket": "T-3"}, {"why": "twice"}, actor="agent:crm")
    assert ready(again) == ["prepare", "undo"] and len(received(engine, run.id)) == 2
    assert ready(engine.complete(run.id, "undo", {}, actor="agent:a")) == ["prepare"]
    assert ready(engine.complete(run.id, "prepare", {}, actor="agent:a")) == ["ship"]
    assert engine.complete(run.id, "ship", {}, actor="agent:a").status == "completed"
    # A run started after the first message behaves the same (nothing of the first run's is shared).
    second = engine.start("recall", {"ticket": "T-4"}, actor="agent:a")
    assert ready(second) == ["prepare"]
    assert ready(engine.message("recall_requested", {"ticket": "T-4"}, {}, actor="agent:crm")) == ["prepare", "undo"]
    third = engine.start("recall", {"ticket": "T-5"}, actor="agent:a")  # and one that gets no message ends as drawn
    assert ready(engine.complete(third.id, "prepare", {}, actor="agent:a")) == ["ship"]
    assert engine.complete(third.id, "ship", {}, actor="agent:a").status == "completed"


def test_a_run_after_one_whose_error_event_subprocess_started_still_ends(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """SpiffWorkflow links the shared spec's start task to a triggered event subprocess; tiergate does not."""
    from test_tier1_events import ERROR, HANDLER, event
    from test_tier1_events import open_engine as open_events_engine

    from tiergate.bpmn.definition import BpmnDefinition

    engine = open_events_engine(tmp_path, make_engine, "evs", (
        '<bpmn:startEvent id="start"/>' + user("work") + '<bpmn:exclusiveGateway id="gw" default="ok"/>'
        + event("endEvent", "fail", ERROR) + '<bpmn:endEvent id="end"/>' + chain("start", "work", "gw")
        + '<bpmn:sequenceFlow id="bad_f" sourceRef="gw" targetRef="fail"><bpmn:conditionExpression>broken'
          '</bpmn:conditionExpression></bpmn:sequenceFlow><bpmn:sequenceFlow id="ok" sourceRef="gw" targetRef="end"/>'
        + HANDLER.replace("{start}", event("startEvent", "h_s", ERROR))))
    first = engine.start("evs", {}, actor="agent:a")
    assert ready(engine.complete(first.id, "work", {"broken": True}, actor="agent:a")) == ["repair"]
    definition: BpmnDefinition = engine.definitions.process("evs")
    assert [s.name for s in definition.specs[0].start.outputs] == ["start"]
    second = engine.start("evs", {}, actor="agent:a")
    assert engine.complete(second.id, "work", {"broken": False}, actor="agent:a").status == "completed"
    assert engine.complete(first.id, "repair", {}, actor="agent:a").status == "completed"


def test_tiergate_message_starts_the_event_subprocess_from_the_command_line(
        tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"recall": recall_process("recall", True)})
    run = cli("start", "recall", "--data", '{"ticket": "T-7"}', "--actor", "agent:a", "--json", home=home.root)
    run_id = run.json["data"]["id"]
    missed = cli("message", "recall_requested", "--correlate", "ticket=T-8", "--json", "--actor", "agent:crm",
                 home=home.root)
    assert missed.returncode != 0 and missed.json["error"]["details"]["reason"] == "no_waiting_run"
    done = cli("message", "recall_requested", "--correlate", "ticket=T-7", "--data", json.dumps({"why": "late"}),
               "--actor", "agent:crm", "--json", home=home.root)
    assert done.returncode == 0, done
    assert done.json["data"]["id"] == run_id and done.json["data"]["ready"] == ["undo"]
