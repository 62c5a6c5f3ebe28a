"""Tier 1 call activities: the called process's steps run inside the caller's run, pinned with its version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import states
from tier1_helpers import GATE_NOTE, bpmn, chain, flow, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import RefusedError

CYCLE = bpmn("pay-cycle", '<bpmn:startEvent id="c_start"/>' + user("run_scenarios", gate=GATE_NOTE)
             + user("sign_off", distinct_from="run_scenarios") + '<bpmn:endEvent id="c_end"/>'
             + chain("c_start", "run_scenarios", "sign_off", "c_end"), lanes={"reviewer": ["sign_off"]})
CHANGE = bpmn("change", '<bpmn:startEvent id="start"/>' + user("draft")
              + '<bpmn:callActivity id="test_cycle" calledElement="pay-cycle"/>' + user("go_live")
              + '<bpmn:endEvent id="end"/>' + chain("start", "draft", "test_cycle", "go_live", "end"))


def ready(info: Any) -> list[str]:
    return [s.id for s in info.ready_steps]


def test_the_called_process_runs_in_the_callers_run_with_its_lanes_gates_and_four_eyes(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"change": CHANGE, "pay-cycle": CYCLE})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("change", {"client": "acme"}, actor="agent:a")
    info = engine.complete(run.id, "draft", {"plan": "raise the rate"}, actor="agent:a")
    assert ready(info) == ["run_scenarios"] and info.ready_steps[0].done_when == GATE_NOTE
    info = engine.complete(run.id, "run_scenarios", {"note": "all green"}, actor="human:carol")
    assert ready(info) == ["sign_off"] and info.ready_steps[0].roles == ["reviewer"]
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "sign_off", {}, actor="human:carol")
    assert err.value.reason == "same_actor"
    info = engine.complete(run.id, "sign_off", {"signed": True}, actor="agent:reviewer-bot")
    assert ready(info) == ["go_live"]
    assert info.data == {"client": "acme", "plan": "raise the rate", "note": "all green", "signed": True}
    assert engine.complete(run.id, "go_live", {}, actor="agent:a").status == "completed"
    assert states(engine, run.id) == {"draft": "done", "run_scenarios": "done", "sign_off": "done",
                                      "go_live": "done"}
    assert [e["step"] for e in engine.log(run.id) if e["event"] == "step_completed"] == [
        "draft", "run_scenarios", "sign_off", "go_live"]


def test_a_run_keeps_the_called_process_it_started_with(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"change": CHANGE, "pay-cycle": CYCLE})
    engine = make_engine(home)
    old = engine.start("change", {}, actor="agent:a")
    changed = CYCLE.replace(user("sign_off", distinct_from="run_scenarios"),
                            user("sign_off", distinct_from="run_scenarios") + user("archive"))
    changed = changed.replace(chain("sign_off", "c_end"), chain("sign_off", "archive", "c_end"))
    (home.root / "processes" / "pay-cycle.bpmn").write_text(changed, encoding="utf-8")
    fresh_engine = make_engine(home)
    new = fresh_engine.start("change", {}, actor="agent:a")
    assert new.definition_version != old.definition_version  # the caller's version covers what it calls
    for engine_, run, steps in ((fresh_engine, old, ["go_live"]), (fresh_engine, new, ["archive"])):
        engine_.complete(run.id, "draft", {}, actor="agent:a")
        engine_.complete(run.id, "run_scenarios", {"note": "fine"}, actor="agent:a")
        assert ready(engine_.complete(run.id, "sign_off", {}, actor="agent:reviewer-bot")) == steps


def test_an_error_in_the_called_process_is_caught_on_the_call_activity(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    failing = bpmn("check-it", '<bpmn:startEvent id="k_start"/>' + user("inspect")
                   + '<bpmn:exclusiveGateway id="k_gw" default="k_ok"/><bpmn:endEvent id="k_end"/>'
                   + '<bpmn:endEvent id="k_fail"><bpmn:errorEventDefinition errorRef="err_bad"/></bpmn:endEvent>'
                   + chain("k_start", "inspect", "k_gw") + flow("k_ok", "k_gw", "k_end")
                   + flow("k_bad", "k_gw", "k_fail", "defect")).replace(
        "<bpmn:process ", '<bpmn:error id="err_bad" errorCode="DEFECT"/><bpmn:process ', 1)
    caller = bpmn("caller", '<bpmn:startEvent id="start"/><bpmn:callActivity id="call" calledElement="check-it"/>'
                  + '<bpmn:boundaryEvent id="defect_found" attachedToRef="call"><bpmn:errorEventDefinition '
                    'errorRef="err_bad"/></bpmn:boundaryEvent>' + user("fix") + '<bpmn:endEvent id="end"/>'
                  + chain("start", "call", "end") + flow("f_fix", "defect_found", "fix", deviation=True)
                  + chain("fix", "end")).replace(
        "<bpmn:process ", '<bpmn:error id="err_bad" errorCode="DEFECT"/><bpmn:process ', 1)
    engine = make_engine(tier1_home(tmp_path / "home", {"caller": caller, "check-it": failing}))
    run = engine.start("caller", {}, actor="agent:a")
    info = engine.complete(run.id, "inspect", {"defect": True}, actor="agent:a")
    assert ready(info) == ["fix"]
    escalated = [e["detail"] for e in engine.log(run.id) if e["event"] == "escalated"]
    assert escalated == [{"event": "error", "code": "DEFECT", "by": "defect_found", "task": "call",
                          "flows": ["f_fix"], "to": ["fix"], "interrupting": True}]


@pytest.mark.parametrize("call, files, message", [
    ('<bpmn:callActivity id="c" calledElement="nowhere"/>', {},
     ("c: calls 'nowhere', but processes/nowhere.bpmn does not exist")),
    ('<bpmn:callActivity id="c"/>', {}, "c: the call activity names no process"),
    ('<bpmn:callActivity id="c" calledElement="loop-back"/>',
     {"loop-back": bpmn("loop-back", '<bpmn:startEvent id="l_s"/><bpmn:callActivity id="l_c" calledElement="p"/>'
                        '<bpmn:endEvent id="l_e"/>' + chain("l_s", "l_c", "l_e"))},
     "l_c: calls 'p', which calls back into p -> loop-back: a process cannot call itself. (in processes/loop-back.bpmn"),
    ('<bpmn:callActivity id="c" calledElement="clash"/>',
     {"clash": bpmn("clash", '<bpmn:startEvent id="start"/>' + user("t") + '<bpmn:endEvent id="x_e"/>'
                    + chain("start", "t", "x_e"))},
     ("c: calls 'clash', whose element ids are also used here: userTask 't' (line 4 of processes/clash.bpmn) and "
      "userTask 't' (line 4). A step, task or subprocess id names one thing in the run: rename one of each pair.")),
])
def test_call_activity_problems_name_the_element(tmp_path: Path, make_engine: Callable[..., Engine], call: str,
                                                 files: dict[str, str], message: str) -> None:
    caller = bpmn("p", '<bpmn:startEvent id="start"/>' + user("t") + call + '<bpmn:endEvent id="end"/>'
                  + chain("start", "t", "c", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"p": caller, **files}))
    problems = [p.message for p in engine.check() if p.severity == "error" and p.path.endswith("p.bpmn")]
    assert any(m.startswith(message) for m in problems), problems


def test_a_call_to_a_process_of_the_same_file(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    inner = ('<bpmn:process id="helper" isExecutable="true"><bpmn:startEvent id="h_s"/>' + user("help")
             + '<bpmn:endEvent id="h_e"/>' + chain("h_s", "help", "h_e") + '</bpmn:process>')
    caller = bpmn("main", '<bpmn:startEvent id="start"/><bpmn:callActivity id="c" calledElement="helper"/>'
                  + '<bpmn:endEvent id="end"/>' + chain("start", "c", "end")).replace("<bpmndi:", inner + "<bpmndi:", 1)
    engine = make_engine(tier1_home(tmp_path / "home", {"main": caller}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("main", {}, actor="agent:a")
    assert ready(run) == ["help"]
    assert engine.complete(run.id, "help", {}, actor="agent:a").status == "completed"
