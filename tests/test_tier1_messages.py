"""Tier 1 messages: catch events, receive tasks, boundaries and event-based gateways, matched by correlation."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import CLIResult, row
from tier1_helpers import bpmn, chain, flow, props, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import RefusedError
from tiergate.worker import run_pass

MESSAGES = '<bpmn:message id="m_ci" name="ci_passed"/><bpmn:message id="m_reply" name="client_reply"/>'
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def process(process_id: str, body: str) -> str:
    return bpmn(process_id, body).replace("<bpmn:process ", MESSAGES + "<bpmn:process ", 1)


def catch(element_id: str, message: str, kind: str = "intermediateCatchEvent", correlate: str = "",
          attrs: str = "") -> str:
    extension = props(correlate=correlate) if correlate else ""
    return (f'<bpmn:{kind} id="{element_id}" {attrs}>{extension}'
            f'<bpmn:messageEventDefinition messageRef="{message}"/></bpmn:{kind}>')


def home_with(tmp_path: Path, processes: dict[str, str]) -> Any:
    return tier1_home(tmp_path / "home", {pid: process(pid, body) for pid, body in processes.items()})


def open_engine(tmp_path: Path, make_engine: Callable[..., Engine], process_id: str, body: str,
                **kwargs: Any) -> Engine:
    engine = make_engine(home_with(tmp_path, {process_id: body}), **kwargs)
    assert [p for p in engine.check() if p.severity == "error"] == []
    return engine


WAIT_FOR_CI = ('<bpmn:startEvent id="start"/>' + user("submit") + catch("wait_ci", "m_ci", correlate="change_id")
               + user("deploy") + '<bpmn:endEvent id="end"/>' + chain("start", "submit", "wait_ci", "deploy", "end"))


def test_a_message_reaches_the_one_run_waiting_with_its_correlation_values(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "ci", WAIT_FOR_CI)
    runs = {}
    for change in ("CH-1", "CH-2"):
        run = engine.start("ci", {"change_id": change}, actor="agent:a")
        info = engine.complete(run.id, "submit", {}, actor="agent:a")
        assert (info.status, info.ready_steps) == ("active", [])
        runs[change] = run.id
    assert engine.status(runs["CH-2"]).to_dict()["data"] == {"change_id": "CH-2"}
    with pytest.raises(RefusedError) as err:
        engine.complete(runs["CH-2"], "deploy", {}, actor="agent:a")
    assert "it waits for message 'ci_passed' at wait_ci for {'change_id': 'CH-2'}" in err.value.message

    before = {run_id: row(engine, run_id) for run_id in runs.values()}
    for correlate, reason in (({}, "no_waiting_run"), ({"change_id": "CH-9"}, "no_waiting_run")):
        with pytest.raises(RefusedError) as err:
            engine.message("ci_passed", correlate, {"build": 1}, actor="agent:ci")
        assert err.value.reason == reason and "was not delivered" in err.value.message
        assert {w["run"] for w in err.value.details["waiting"]} == set(runs.values())
    with pytest.raises(RefusedError) as err:
        engine.message("ci_failed", {"change_id": "CH-2"}, {}, actor="agent:ci")
    assert "No active run waits for 'ci_failed'" in err.value.message
    assert {run_id: row(engine, run_id) for run_id in runs.values()} == before  # nothing changed, nothing lost

    info = engine.message("ci_passed", {"change_id": "CH-2"}, {"build": 42}, actor="agent:ci")
    assert info.id == runs["CH-2"] and [s.id for s in info.ready_steps] == ["deploy"]
    assert info.data == {"change_id": "CH-2", "build": 42}
    received = [e for e in engine.log(runs["CH-2"]) if e["event"] == "message_received"]
    assert [(e["step"], e["actor"], e["detail"]) for e in received] == [("wait_ci", "agent:ci", {
        "message": "ci_passed", "correlate": {"change_id": "CH-2"}, "data": {"build": 42}, "sender": "agent:ci"})]
    with pytest.raises(RefusedError) as err:  # delivered once: the run no longer waits
        engine.message("ci_passed", {"change_id": "CH-2"}, {"build": 43}, actor="agent:ci")
    assert err.value.reason == "no_waiting_run"
    assert engine.complete(runs["CH-2"], "deploy", {}, actor="agent:a").status == "completed"
    assert engine.status(runs["CH-1"]).status == "active"


def test_a_message_that_matches_two_runs_is_refused(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "ci", WAIT_FOR_CI)
    for _ in range(2):
        run = engine.start("ci", {"change_id": "CH-1"}, actor="agent:a")
        engine.complete(run.id, "submit", {}, actor="agent:a")
    with pytest.raises(RefusedError) as err:
        engine.message("ci_passed", {"change_id": "CH-1"}, {}, actor="agent:ci")
    assert err.value.reason == "message_ambiguous" and len(err.value.details["runs"]) == 2


def test_a_receive_task_and_a_message_boundary_on_a_task(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + catch("await_reply", "m_reply", kind="receiveTask", correlate="ticket")
            + user("work") + catch("withdrawn", "m_ci", kind="boundaryEvent", correlate="ticket",
                                   attrs='attachedToRef="work"')
            + user("close_early") + '<bpmn:endEvent id="end"/><bpmn:endEvent id="end2"/>'
            + chain("start", "await_reply", "work", "end") + flow("f_w", "withdrawn", "close_early", deviation=True)
            + chain("close_early", "end2"))
    engine = open_engine(tmp_path, make_engine, "recv", body)
    run = engine.start("recv", {"ticket": "T-5"}, actor="agent:a")
    assert run.ready_steps == []
    info = engine.message("client_reply", {"ticket": "T-5"}, {"answer": "go"}, actor="human:carol")
    assert [s.id for s in info.ready_steps] == ["work"] and info.data["answer"] == "go"
    info = engine.message("ci_passed", {"ticket": "T-5"}, {}, actor="agent:ci")
    assert [s.id for s in info.ready_steps] == ["close_early"]
    entries = [(e["step"], e["event"], e["detail"]) for e in engine.log(run.id)
               if e["event"] in ("escalated", "step_skipped")]
    assert entries == [
        ("work", "escalated", {"event": "message", "code": "ci_passed", "by": "withdrawn", "task": "work",
                               "flows": ["f_w"], "to": ["close_early"], "interrupting": True}),
        ("work", "step_skipped", {"reason": "interrupted by message 'ci_passed' (caught by 'withdrawn')"})]


GATEWAY = ('<bpmn:startEvent id="start"/>' + user("ask") + '<bpmn:eventBasedGateway id="gw"/>'
           + catch("reply", "m_reply", correlate="ticket")
           + '<bpmn:intermediateCatchEvent id="timeout"><bpmn:timerEventDefinition><bpmn:timeDuration>PT48H'
             '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
           + user("handle") + user("chase") + '<bpmn:endEvent id="end"/><bpmn:endEvent id="end2"/>'
           + chain("start", "ask", "gw") + flow("f_r", "gw", "reply") + flow("f_t", "gw", "timeout")
           + chain("reply", "handle", "end") + flow("f_c", "timeout", "chase", deviation=True) + chain("chase", "end2"))


def test_an_event_based_gateway_takes_the_message_when_it_comes_first(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "ebg", GATEWAY, clock=lambda: T0)
    run = engine.start("ebg", {"ticket": "T-1"}, actor="agent:a")
    engine.complete(run.id, "ask", {}, actor="agent:a")
    assert row(engine, run.id)["due_at"] is not None
    info = engine.message("client_reply", {"ticket": "T-1"}, {"answer": "yes"}, actor="human:carol")
    assert [s.id for s in info.ready_steps] == ["handle"] and info.data["answer"] == "yes"
    assert row(engine, run.id)["due_at"] is None  # the timer went with the other branch
    assert run_pass(engine, now=T0 + timedelta(days=3)) == []
    assert not [e for e in engine.log(run.id) if e["event"] == "escalated"]


def test_an_event_based_gateway_takes_the_timer_when_no_message_came(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "ebg", GATEWAY, clock=lambda: T0)
    run = engine.start("ebg", {"ticket": "T-1"}, actor="agent:a")
    engine.complete(run.id, "ask", {}, actor="agent:a")
    assert run_pass(engine, now=T0 + timedelta(hours=47)) == []
    assert len(run_pass(engine, now=T0 + timedelta(hours=49))) == 1
    status = engine.status(run.id)
    assert [s.id for s in status.ready_steps] == ["chase"]
    escalated = [(e["step"], e["detail"]) for e in engine.log(run.id) if e["event"] == "escalated"]
    assert escalated == [("gw", {"event": "timer", "task": "gw", "timer": "timeout", "by": "timeout",
                                 "instead_of": ["reply"], "flows": ["f_c"], "to": ["chase"], "interrupting": True})]
    with pytest.raises(RefusedError) as err:  # too late: nothing waits for it any more
        engine.message("client_reply", {"ticket": "T-1"}, {}, actor="human:carol")
    assert err.value.reason == "no_waiting_run"
    kinds = engine.metrics(process="ebg")["processes"][0]["deviations"]["by_kind"]
    assert kinds["escalated"]["count"] == 1


def test_a_message_nothing_in_the_run_catches_is_logged_as_sent(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + user("decide")
            + '<bpmn:sendTask id="notify" messageRef="m_reply"/>' + '<bpmn:endEvent id="end"/>'
            + chain("start", "decide", "notify", "end"))
    engine = open_engine(tmp_path, make_engine, "send", body)
    run = engine.start("send", {}, actor="agent:a")
    assert engine.complete(run.id, "decide", {"ok": True}, actor="agent:a").status == "completed"
    sent = [(e["event"], e["detail"]) for e in engine.log(run.id) if e["event"] == "message_sent"]
    assert sent == [("message_sent", {"message": "client_reply"})]


def test_tiergate_message_from_the_command_line(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = home_with(tmp_path, {"ci": WAIT_FOR_CI})
    run = cli("start", "ci", "--data", '{"change_id": "CH-3"}', "--actor", "agent:a", "--json", home=home.root)
    run_id = run.json["data"]["id"]
    assert cli("complete", run_id, "submit", "--evidence", "{}", "--actor", "agent:a", home=home.root).returncode == 0
    missed = cli("message", "ci_passed", "--correlate", "change_id=CH-4", "--json", "--actor", "agent:ci",
                 home=home.root)
    assert missed.returncode != 0 and missed.json["error"]["details"]["reason"] == "no_waiting_run"
    bad = cli("message", "ci_passed", "--correlate", "change_id", "--json", home=home.root)
    assert bad.returncode != 0 and "is not KEY=VALUE" in bad.json["error"]["message"]
    done = cli("message", "ci_passed", "--correlate", "change_id=CH-3", "--data", json.dumps({"build": 7}),
               "--actor", "agent:ci", "--json", home=home.root)
    assert done.returncode == 0, done
    assert done.json["data"]["id"] == run_id and done.json["data"]["ready"] == ["deploy"]


def test_the_guidance_says_what_message_the_run_waits_for(tmp_path: Path,
                                                          make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "ci", WAIT_FOR_CI)
    run = engine.start("ci", {"change_id": "CH-5"}, actor="agent:a")
    engine.complete(run.id, "submit", {}, actor="agent:a")
    text = engine.guide(run.id, actor="agent:a")["text"]
    assert ("The process waits for:\n- message `ci_passed` at `wait_ci` (its sender delivers it with "
            "`tiergate message ci_passed --correlate change_id=CH-5 --data '{...}'`)") in text
    engine.message("ci_passed", {"change_id": "CH-5"}, {}, actor="agent:ci")
    assert "The process waits for" not in engine.guide(run.id, actor="agent:a")["text"]
