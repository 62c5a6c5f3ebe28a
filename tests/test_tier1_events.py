"""Tier 1 error, escalation, signal and terminate events and event subprocesses, through the Engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import states
from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import RefusedError

DEFS = ('<bpmn:error id="bad" errorCode="E1"/><bpmn:escalation id="late" escalationCode="late"/>'
        '<bpmn:signal id="sig" name="stop_all"/>')


def process(process_id: str, body: str) -> str:
    return bpmn(process_id, body).replace("<bpmn:process ", DEFS + "<bpmn:process ", 1)


def event(kind: str, element_id: str, definition: str, attrs: str = "") -> str:
    return f'<bpmn:{kind} id="{element_id}" {attrs}>{definition}</bpmn:{kind}>'


ERROR = '<bpmn:errorEventDefinition errorRef="bad"/>'
ESCALATION = '<bpmn:escalationEventDefinition escalationRef="late"/>'
SIGNAL = '<bpmn:signalEventDefinition signalRef="sig"/>'


def open_engine(tmp_path: Path, make_engine: Callable[..., Engine], process_id: str, body: str) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", {process_id: process(process_id, body)}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    return engine


def entries(engine: Engine, run_id: str, *kinds: str) -> list[tuple[Any, str, dict[str, Any]]]:
    return [(e["step"], e["event"], e["detail"]) for e in engine.log(run_id) if e["event"] in kinds]


def ready(info: Any) -> list[str]:
    return sorted(s.id for s in info.ready_steps)


def test_an_escalation_from_a_subprocess_starts_a_path_without_stopping_it(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "esc", (
        '<bpmn:startEvent id="start"/><bpmn:subProcess id="sub"><bpmn:startEvent id="s_s"/>'
        + event("intermediateThrowEvent", "raise", ESCALATION) + user("inside") + '<bpmn:endEvent id="s_end"/>'
        + chain("s_s", "raise", "inside", "s_end", prefix="s") + '</bpmn:subProcess>'
        + event("boundaryEvent", "caught", ESCALATION, 'attachedToRef="sub" cancelActivity="false"')
        + user("notify") + '<bpmn:endEvent id="end"/><bpmn:endEvent id="end2"/>'
        + chain("start", "sub", "end") + flow("f_n", "caught", "notify", deviation=True) + chain("notify", "end2")))
    run = engine.start("esc", {}, actor="agent:a")
    assert ready(run) == ["inside", "notify"]
    assert entries(engine, run.id, "escalated") == [("sub", "escalated", {
        "event": "escalation", "code": "late", "by": "caught", "task": "sub", "flows": ["f_n"], "to": ["notify"],
        "interrupting": False})]
    assert entries(engine, run.id, "step_ready")[0] == ("notify", "step_ready", {"off_path": True, "flow": "f_n"})
    assert engine.complete(run.id, "notify", {}, actor="agent:a").status == "active"
    assert engine.complete(run.id, "inside", {}, actor="agent:a").status == "completed"
    for from_log in (False, True):
        kinds = engine.metrics(process="esc", from_log=from_log)["processes"][0]["deviations"]["by_kind"]
        assert (kinds["escalated"]["count"], kinds["off_path"]["count"]) == (1, 1)


def test_a_signal_interrupts_the_task_it_is_on_and_names_the_cause(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "sig", (
        '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("work") + user("other")
        + event("intermediateThrowEvent", "stop", SIGNAL)
        + event("boundaryEvent", "stopped", SIGNAL, 'attachedToRef="other"') + user("cleanup")
        + '<bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/><bpmn:endEvent id="e3"/>'
        + chain("start", "split") + flow("a", "split", "work") + flow("b", "split", "other")
        + chain("work", "stop", "e1") + chain("other", "e2") + flow("c", "stopped", "cleanup") + chain("cleanup", "e3")))
    run = engine.start("sig", {}, actor="agent:a")
    info = engine.complete(run.id, "work", {}, actor="agent:a")
    assert ready(info) == ["cleanup"]
    assert entries(engine, run.id, "escalated", "step_skipped") == [
        ("other", "escalated", {"event": "signal", "code": "stop_all", "by": "stopped", "task": "other",
                                "flows": ["c"], "to": ["cleanup"], "interrupting": True}),
        ("other", "step_skipped", {"reason": "interrupted by signal 'stop_all' (caught by 'stopped')"})]
    assert engine.complete(run.id, "cleanup", {}, actor="agent:a").status == "completed"
    assert states(engine, run.id) == {"work": "done", "other": "skipped", "cleanup": "done"}


def test_a_signal_waits_in_an_intermediate_catch_event(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "wait", (
        '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("prepare") + user("go")
        + event("intermediateCatchEvent", "released", SIGNAL) + event("intermediateThrowEvent", "release", SIGNAL)
        + user("deploy") + '<bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>'
        + chain("start", "split") + flow("a", "split", "prepare") + flow("b", "split", "go")
        + chain("prepare", "released", "deploy", "e1") + chain("go", "release", "e2")))
    run = engine.start("wait", {}, actor="agent:a")
    assert ready(engine.complete(run.id, "prepare", {}, actor="agent:a")) == ["go"]
    assert ready(engine.complete(run.id, "go", {}, actor="agent:a")) == ["deploy"]
    assert entries(engine, run.id, "escalated") == []  # the expected path: no deviation
    assert engine.complete(run.id, "deploy", {}, actor="agent:a").status == "completed"


HANDLER = ('<bpmn:subProcess id="handler" triggeredByEvent="true">{start}' + user("repair")
           + '<bpmn:endEvent id="h_e"/>' + chain("h_s", "repair", "h_e", prefix="h") + '</bpmn:subProcess>')


#: Two parallel branches; one may end in an error that an interrupting event subprocess catches.
ERROR_SUBPROCESS = (
    '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("work") + user("other")
    + '<bpmn:exclusiveGateway id="gw" default="ok"/>' + event("endEvent", "fail", ERROR)
    + '<bpmn:endEvent id="end"/><bpmn:endEvent id="end2"/>' + chain("start", "split")
    + flow("a", "split", "work") + flow("b", "split", "other") + chain("work", "gw")
    + flow("bad_f", "gw", "fail", "broken") + flow("ok", "gw", "end") + chain("other", "end2")
    + HANDLER.replace("{start}", event("startEvent", "h_s", ERROR)))


def test_an_interrupting_event_subprocess_catches_an_error_and_stops_the_rest(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "evs", ERROR_SUBPROCESS)
    run = engine.start("evs", {}, actor="agent:a")
    assert ready(run) == ["other", "work"]
    info = engine.complete(run.id, "work", {"broken": True}, actor="agent:a")
    assert ready(info) == ["repair"]
    assert entries(engine, run.id, "escalated", "step_skipped") == [
        ("handler", "escalated", {"event": "error", "code": "E1", "by": "h_s", "task": "handler",
                                  "flows": ["h_h_s_repair"], "to": ["repair"], "interrupting": True}),
        ("other", "step_skipped", {"reason": "interrupted by error 'E1' (caught by 'h_s')"})]
    done = engine.complete(run.id, "repair", {}, actor="agent:a")
    assert done.status == "completed" and done.data["broken"] is True


def test_a_non_interrupting_event_subprocess_runs_beside_the_process(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "evn", (
        '<bpmn:startEvent id="start"/>' + user("work") + event("intermediateThrowEvent", "ping", SIGNAL)
        + user("more") + '<bpmn:endEvent id="end"/>' + chain("start", "work", "ping", "more", "end")
        + HANDLER.replace("{start}", event("startEvent", "h_s", SIGNAL, 'isInterrupting="false"'))))
    run = engine.start("evn", {}, actor="agent:a")
    assert ready(run) == ["work"]
    assert ready(engine.complete(run.id, "work", {}, actor="agent:a")) == ["more", "repair"]
    assert entries(engine, run.id, "escalated")[0][2]["interrupting"] is False
    assert engine.complete(run.id, "more", {}, actor="agent:a").status == "active"
    assert engine.complete(run.id, "repair", {}, actor="agent:a").status == "completed"


def test_an_error_nothing_catches_fails_the_run_and_cannot_be_retried(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "unc", (
        '<bpmn:startEvent id="start"/>' + user("work") + event("endEvent", "fail", ERROR)
        + chain("start", "work", "fail")))
    run = engine.start("unc", {}, actor="agent:a")
    info = engine.complete(run.id, "work", {}, actor="agent:a")
    assert info.status == "failed"
    failed = entries(engine, run.id, "failed")
    assert failed[0][0] == "fail" and "error 'E1' was thrown and no boundary event" in failed[0][2]["error"]
    assert "cancel it" in failed[0][2]["retry"]
    with pytest.raises(RefusedError) as err:
        engine.retry(run.id, "fail", {}, actor="human:alice")
    assert err.value.reason == "not_retryable"
    assert engine.cancel(run.id, "the error has no handler", actor="human:alice").status == "cancelled"


def test_an_error_boundary_interrupts_the_subprocess_steps(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = open_engine(tmp_path, make_engine, "errb", (
        '<bpmn:startEvent id="start"/><bpmn:subProcess id="sub"><bpmn:startEvent id="s_s"/>'
        + '<bpmn:parallelGateway id="s_split"/>' + user("check") + user("wait_here")
        + '<bpmn:exclusiveGateway id="s_gw" default="s_ok"/>' + event("endEvent", "s_fail", ERROR)
        + '<bpmn:endEvent id="s_end"/><bpmn:endEvent id="s_end2"/>' + chain("s_s", "s_split", prefix="s")
        + flow("s1", "s_split", "check") + flow("s2", "s_split", "wait_here") + chain("check", "s_gw", prefix="s")
        + flow("s_bad", "s_gw", "s_fail", "not passed") + flow("s_ok", "s_gw", "s_end")
        + chain("wait_here", "s_end2", prefix="s") + '</bpmn:subProcess>'
        + event("boundaryEvent", "failed_check", ERROR, 'attachedToRef="sub"') + user("fix")
        + '<bpmn:endEvent id="end"/>' + chain("start", "sub", "end") + flow("f_fix", "failed_check", "fix", deviation=True)
        + chain("fix", "end")))
    run = engine.start("errb", {}, actor="agent:a")
    assert ready(run) == ["check", "wait_here"]
    info = engine.complete(run.id, "check", {"passed": False}, actor="agent:a")
    assert ready(info) == ["fix"]
    assert entries(engine, run.id, "step_skipped") == [
        ("wait_here", "step_skipped", {"reason": "interrupted by error 'E1' (caught by 'failed_check')"})]
    assert engine.complete(run.id, "fix", {}, actor="agent:a").status == "completed"


def check_errors(body: str) -> list[str]:
    import yaml
    from tier1_helpers import ROLES

    from tiergate.bpmn.definition import load_process
    from tiergate.definitions.models import Roles

    xml = process("p", body)
    _, found = load_process(xml, "processes/p.bpmn", "p", roles=Roles.model_validate(yaml.safe_load(ROLES)),
                            decisions={})
    return [p.message for p in found if p.severity == "error"]


@pytest.mark.parametrize("body, message", [
    (event("startEvent", "go", ERROR), "go: start events must be plain"),
    (event("intermediateCatchEvent", "when", '<bpmn:conditionalEventDefinition><bpmn:condition>x</bpmn:condition>'
                                             '</bpmn:conditionalEventDefinition>'), "when: conditional events"),
    (event("intermediateThrowEvent", "undo", '<bpmn:compensateEventDefinition/>'), "undo: compensation events"),
    ('<bpmn:complexGateway id="cx"/>', "cx: complex gateways are not supported"),
])
def test_what_spiffworkflow_does_not_execute_stays_refused(body: str, message: str) -> None:
    start = "" if 'id="go"' in body else '<bpmn:startEvent id="start"/>'
    first = "go" if 'id="go"' in body else "start"
    element = body.split('id="')[1].split('"')[0]
    inline = first == element or element == "handler"  # the start itself, or an event subprocess: no flow into it
    found = check_errors(start + body + user("t") + '<bpmn:endEvent id="end"/>'
                         + (chain(first, "t", "end") if inline else chain(first, element, "t", "end")))
    assert any(m.startswith(message) for m in found), found


def test_signal_escalation_and_event_subprocess_elements_pass_the_check() -> None:
    assert check_errors(
        '<bpmn:startEvent id="start"/>' + user("t") + event("intermediateThrowEvent", "ping", SIGNAL)
        + event("intermediateThrowEvent", "up", ESCALATION) + '<bpmn:endEvent id="end"/>'
        + chain("start", "t", "ping", "up", "end")
        + HANDLER.replace("{start}", event("startEvent", "h_s", ESCALATION))) == []
