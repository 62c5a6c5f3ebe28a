"""Tier 1 at run time, through the Engine: steps, lanes, gates, refusals, decisions, paths, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from support import CLIResult, events, row, states
from tier1_helpers import (GATE_NOTE, LINEAR, bpmn, chain, dmn_table, flow, props, tier1_home, user)
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, InvalidDataError, RefusedError, UsageError



def refused(engine: Engine, run_id: str, call: Callable[[], Any], reason: str) -> RefusedError:
    before = row(engine, run_id)
    count = len(engine.log(run_id))
    with pytest.raises(RefusedError) as err:
        call()
    assert err.value.reason == reason
    after = row(engine, run_id)
    for column in ("state", "status", "version", "updated_at"):
        assert after[column] == before[column], column
    log = engine.log(run_id)
    assert len(log) == count + 1 and log[-1]["event"] == "refused" and log[-1]["detail"]["reason"] == reason
    return err.value


@pytest.fixture
def linear(tmp_path: Path, make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(tier1_home(tmp_path / "home", {"linear": LINEAR}))


def test_a_linear_run_with_lanes_four_eyes_and_refusals(linear: Engine) -> None:
    engine = linear
    run = engine.start("linear", {"ticket": "T-7"}, actor="agent:drafter")
    assert (run.tier, run.status) == (1, "active")
    assert states(engine, run.id) == {"draft": "ready", "approve": "locked"}
    draft = run.ready_steps[0]
    assert draft.instructions == "Draft T-7." and draft.title == "Draft the change"
    assert draft.done_when == GATE_NOTE and draft.actors == ["agent"]

    err = refused(engine, run.id, lambda: engine.complete(run.id, "approve", {"approved": True}, actor="human:alice"),
                  "not_ready")
    assert "it waits for draft" in err.message
    refused(engine, run.id, lambda: engine.complete(run.id, "nope", {}, actor="agent:drafter"), "unknown_step")
    err = refused(engine, run.id, lambda: engine.complete(run.id, "draft", {"note": "x y z"}, actor="human:alice"),
                  "actor_not_allowed")
    assert err.message == ("step 'draft' can only be done by agents; human:alice is a human. Hand the step to "
                           "someone allowed.")
    with pytest.raises(GateFailedError) as gate:
        engine.complete(run.id, "draft", {"note": "x"}, actor="agent:drafter")
    assert [e["pointer"] for e in gate.value.details["errors"]] == ["/note"]
    assert engine.log(run.id)[-1]["event"] == "gate_failed"

    engine.complete(run.id, "draft", {"note": "Change the overtime rate"}, actor="agent:drafter")
    err = refused(engine, run.id, lambda: engine.complete(run.id, "draft", {"note": "again"}, actor="agent:drafter"),
                  "already_done")
    assert "already completed by agent:drafter" in err.message
    # The lane is the role: an agent, then a human outside the role, are refused; so is an agent in the role.
    err = refused(engine, run.id, lambda: engine.complete(run.id, "approve", {"approved": True}, actor="agent:x"),
                  "actor_not_allowed")
    assert "can only be done by humans" in err.message
    err = refused(engine, run.id, lambda: engine.complete(run.id, "approve", {"approved": True},
                                                          actor="human:mallory"), "actor_not_allowed")
    assert "needs a member of lead" in err.message
    done = engine.complete(run.id, "approve", {"approved": True}, actor="human:alice")
    assert done.status == "completed" and done.ended_at is not None
    assert done.data == {"ticket": "T-7", "note": "Change the overtime rate", "approved": True}
    refused(engine, run.id, lambda: engine.complete(run.id, "approve", {"approved": True}, actor="human:bob"),
            "run_not_active")
    assert [e for e in events(engine, run.id) if e[1] != "refused" and e[1] != "gate_failed"] == [
        (None, "routed", "system:tiergate"), (None, "started", "agent:drafter"),
        ("draft", "step_ready", "system:tiergate"), ("draft", "step_completed", "agent:drafter"),
        ("approve", "step_ready", "system:tiergate"), ("approve", "step_completed", "human:alice"),
        (None, "completed", "system:tiergate")]
    completed = [e for e in engine.log(run.id) if e["event"] == "step_completed"]
    assert completed[0]["detail"] == {"evidence": {"note": "Change the overtime rate"}}
    assert completed[0]["duration_s"] is not None
    assert engine.verify_log()["ok"] is True


def test_four_eyes_between_tasks(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("pair", '<bpmn:startEvent id="s"/>' + user("write") + user("check", distinct_from="write")
               + '<bpmn:endEvent id="e"/>' + chain("s", "write", "check", "e"))
    engine = make_engine(tier1_home(tmp_path / "home", {"pair": xml}))
    run = engine.start("pair", {}, actor="human:carol")
    engine.complete(run.id, "write", {}, actor="human:carol")
    err = refused(engine, run.id, lambda: engine.complete(run.id, "check", {}, actor="human:carol"), "same_actor")
    assert "someone other than who did 'write' (human:carol)" in err.message
    assert engine.complete(run.id, "check", {}, actor="agent:reviewer-bot").status == "completed"


def test_actors_property_narrows_a_role_lane_and_checks_happen_in_order(tmp_path: Path,
                                                                         make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("narrow", '<bpmn:startEvent id="s"/>' + user("review", gate=GATE_NOTE, actors="human")
               + '<bpmn:endEvent id="e"/>' + chain("s", "review", "e"), lanes={"reviewer": ["review"]})
    engine = make_engine(tier1_home(tmp_path / "home", {"narrow": xml}))
    run = engine.start("narrow", {}, actor="human:carol")
    # reviewer-bot is in the role, but the task is for humans; wrong actor beats bad evidence.
    err = refused(engine, run.id, lambda: engine.complete(run.id, "review", {"note": 1}, actor="agent:reviewer-bot"),
                  "actor_not_allowed")
    assert "can only be done by humans" in err.message
    assert engine.complete(run.id, "review", {"note": "looks right"}, actor="human:carol").status == "completed"


def test_optional_steps_can_be_skipped_with_a_reason(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("opt", '<bpmn:startEvent id="s"/>' + user("extra", optional="true") + user("main")
               + '<bpmn:endEvent id="e"/>' + chain("s", "main", "extra", "e"))
    engine = make_engine(tier1_home(tmp_path / "home", {"opt": xml}))
    run = engine.start("opt", {}, actor="agent:a")
    refused(engine, run.id, lambda: engine.skip(run.id, "main", "lazy", actor="agent:a"), "not_optional")
    engine.complete(run.id, "main", {}, actor="agent:a")
    with pytest.raises(UsageError, match="needs a reason"):
        engine.skip(run.id, "extra", "  ", actor="agent:a")
    done = engine.skip(run.id, "extra", "covered by main", actor="agent:a")
    assert done.status == "completed"
    step = next(s for s in done.steps if s.id == "extra")
    assert (step.state, step.reason, step.actor) == ("skipped", "covered by main", "agent:a")
    assert engine.log(run.id)[-2]["event"] == "step_skipped"


def test_start_data_must_pass_the_process_inputs(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    schema = {"type": "object", "required": ["client_id"], "properties": {"client_id": {"type": "string"}}}
    xml = bpmn("inp", '<bpmn:startEvent id="s"/>' + user("t") + '<bpmn:endEvent id="e"/>' + chain("s", "t", "e"),
               process_props=props(inputs=schema))
    engine = make_engine(tier1_home(tmp_path / "home", {"inp": xml}))
    with pytest.raises(InvalidDataError) as err:
        engine.start("inp", {"client": "x"}, actor="agent:a")
    assert err.value.code == "invalid_data" and err.value.details["errors"][0]["pointer"] == "/client_id"
    assert engine.runs() == []
    assert next(p for p in engine.processes() if p["id"] == "inp")["inputs"] == schema


# --- paths: loops, deviations, parallel branches, subprocesses ------------------------------

REVIEW_LOOP = bpmn("review-loop", (
    '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="merge"/>'
    + user("prepare", gate=GATE_NOTE)
    + user("review", gate={"type": "object", "required": ["decision"],
                           "properties": {"decision": {"enum": ["approve", "reject"]}}}, distinct_from="prepare")
    + '<bpmn:exclusiveGateway id="outcome" default="f_approve"/><bpmn:endEvent id="end"/>'
    + chain("start", "merge", "prepare", "review", "outcome")
    + flow("f_reject", "outcome", "merge", 'decision == "reject"', deviation=True)
    + flow("f_approve", "outcome", "end")))


def test_a_loop_back_is_off_path_and_data_moves_on(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"review-loop": REVIEW_LOOP}))
    run = engine.start("review-loop", {}, actor="agent:a")
    engine.complete(run.id, "prepare", {"note": "first try"}, actor="agent:a")
    after_reject = engine.complete(run.id, "review", {"decision": "reject"}, actor="human:carol")
    assert states(engine, run.id) == {"prepare": "ready", "review": "done"}
    assert after_reject.data["decision"] == "reject"
    ready = [e for e in engine.log(run.id) if e["event"] == "step_ready"]
    assert [(e["step"], e["detail"]) for e in ready] == [
        ("prepare", {}), ("review", {}), ("prepare", {"off_path": True, "flow": "f_reject"})]
    engine.complete(run.id, "prepare", {"note": "second try"}, actor="agent:a")
    # The new review is on the expected path again, and overwrites the old decision.
    assert engine.log(run.id)[-1]["detail"] == {}
    done = engine.complete(run.id, "review", {"decision": "approve"}, actor="human:carol")
    assert done.status == "completed" and done.data["note"] == "second try"
    overwrote = [e for e in engine.log(run.id) if e["event"] == "step_completed"][-1]["detail"]["overwrote"]
    assert overwrote == {"decision": {"was": "reject", "by": "review"}}


PARALLEL = bpmn("parallel", (
    '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/><bpmn:parallelGateway id="join"/>'
    + user("left") + user("right") + user("after") + '<bpmn:endEvent id="end"/>'
    + chain("start", "split") + flow("f_l", "split", "left") + flow("f_r", "split", "right")
    + flow("f_lj", "left", "join") + flow("f_rj", "right", "join") + chain("join", "after", "end")))


def test_parallel_branches_are_ready_together_and_join(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"parallel": PARALLEL}))
    run = engine.start("parallel", {}, actor="agent:a")
    assert sorted(s.id for s in run.ready_steps) == ["left", "right"]
    engine.complete(run.id, "right", {"r": 1}, actor="agent:a")
    assert states(engine, run.id)["after"] == "locked"
    info = engine.complete(run.id, "left", {"l": 2}, actor="agent:b")
    assert [s.id for s in info.ready_steps] == ["after"]
    assert info.data == {"l": 2, "r": 1}  # both branches' data merged at the join
    assert engine.complete(run.id, "after", {}, actor="agent:a").status == "completed"


SUBPROCESS = bpmn("sub", (
    '<bpmn:startEvent id="start"/>'
    '<bpmn:subProcess id="inner"><bpmn:startEvent id="inner_start"/>' + user("inner_task", gate=GATE_NOTE)
    + '<bpmn:endEvent id="inner_end"/>' + chain("inner_start", "inner_task", "inner_end", prefix="i")
    + '</bpmn:subProcess>' + user("outer") + '<bpmn:endEvent id="end"/>'
    + chain("start", "inner", "outer", "end")), lanes={"reviewer": ["inner"]})


def test_steps_inside_a_subprocess(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"sub": SUBPROCESS}))
    run = engine.start("sub", {"x": 1}, actor="agent:a")
    assert [s.id for s in run.ready_steps] == ["inner_task"]
    # The subprocess sits in the reviewer lane, so its tasks are the reviewers' too.
    refused(engine, run.id, lambda: engine.complete(run.id, "inner_task", {"note": "done"}, actor="agent:a"),
            "actor_not_allowed")
    info = engine.complete(run.id, "inner_task", {"note": "done inside"}, actor="agent:reviewer-bot")
    assert [s.id for s in info.ready_steps] == ["outer"] and info.data == {"x": 1, "note": "done inside"}
    assert engine.complete(run.id, "outer", {}, actor="agent:a").status == "completed"


# --- business rule tasks --------------------------------------------------------------------

RISK = dmn_table("risk_level", [("score", "number")], ["level", "route"],
                 [(["< 0.5"], ['"low"', '"fast"']), (["-"], ['"high"', '"careful"'])])


def _decision_process(attribute: str, inside: str = "") -> str:
    return bpmn("decide", '<bpmn:startEvent id="start"/>' + user("assess", gate={
        "type": "object", "required": ["score"], "properties": {"score": {"type": "number"}}})
        + f'<bpmn:businessRuleTask id="rate" {attribute}>{inside}</bpmn:businessRuleTask>' + '<bpmn:exclusiveGateway id="gw" default="f_fast"/>'
        + user("fast") + user("careful") + '<bpmn:endEvent id="end"/>'
        + chain("start", "assess", "rate", "gw") + flow("f_fast", "gw", "fast")
        + flow("f_careful", "gw", "careful", 'route == "careful"' if "resultVariable" not in attribute
               else 'rating["route"] == "careful"', deviation=True)
        + chain("fast", "end", prefix="a") + chain("careful", "end", prefix="b"))


@pytest.mark.parametrize("attribute, inside", [
    ('camunda:decisionRef="risk_level"', ""),
    ("", "<bpmn:extensionElements><spiffworkflow:calledDecisionId>risk_level</spiffworkflow:calledDecisionId>"
         "</bpmn:extensionElements>"),
    ('camunda:decisionRef="risk_level" camunda:resultVariable="rating"', ""),
], ids=["camunda-decisionRef", "spiffworkflow-calledDecisionId", "resultVariable"])
def test_business_rule_tasks_use_tiergate_dmn(tmp_path: Path, make_engine: Callable[..., Engine],
                                              attribute: str, inside: str) -> None:
    xml = _decision_process(attribute, inside)
    home = tier1_home(tmp_path / "home", {"decide": xml},
                      decisions={"risk_level": (RISK, "decision: risk_level\ncases: []\n")})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("decide", {}, actor="agent:a")
    info = engine.complete(run.id, "assess", {"score": 0.9}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["careful"]
    decided = [e for e in engine.log(run.id) if e["event"] == "decision_evaluated"]
    assert len(decided) == 1 and decided[0]["step"] == "rate" and decided[0]["actor"] == "system:tiergate"
    assert decided[0]["detail"] == {"decision": "risk_level", "inputs": {"score": 0.9},
                                    "outputs": {"level": "high", "route": "careful"}, "matched_rules": ["rule_2"]}
    if "resultVariable" in attribute:
        assert info.data["rating"] == {"level": "high", "route": "careful"} and "route" not in info.data
    else:
        assert info.data["route"] == "careful"
    ready = [e for e in engine.log(run.id) if e["event"] == "step_ready"]
    assert ready[-1]["detail"] == {"off_path": True, "flow": "f_careful"}


def test_a_run_keeps_the_decision_it_started_with(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"decide": _decision_process('camunda:decisionRef="risk_level"')},
                      decisions={"risk_level": (RISK, "decision: risk_level\ncases: []\n")})
    engine = make_engine(home)
    pinned = engine.start("decide", {}, actor="agent:a")
    changed = RISK.replace("&lt; 0.5", "&lt; 0.95")
    (home.root / "decisions" / "risk_level.dmn").write_text(changed)
    (home.root / "processes" / "decide.bpmn").write_text(_decision_process('camunda:decisionRef="risk_level"')
                                                         .replace('name="fast"', 'name="Fast lane"'))
    engine.reload()
    fresh = engine.start("decide", {}, actor="agent:a")
    assert fresh.definition_version != pinned.definition_version
    assert [s.id for s in engine.complete(pinned.id, "assess", {"score": 0.9}, actor="agent:a").ready_steps] == \
        ["careful"]
    assert [s.id for s in engine.complete(fresh.id, "assess", {"score": 0.9}, actor="agent:a").ready_steps] == \
        ["fast"]
    assert next(s for s in engine.status(fresh.id).steps if s.id == "fast").title == "Fast lane"


def test_a_decision_that_fails_fails_the_run_at_its_task(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    strict = dmn_table("risk_level", [("score", "number")], ["level", "route"], [(["< 0.5"], ['"low"', '"fast"'])])
    home = tier1_home(tmp_path / "home", {"decide": _decision_process('camunda:decisionRef="risk_level"')},
                      decisions={"risk_level": (strict, "decision: risk_level\ncases: []\n")})
    engine = make_engine(home)
    run = engine.start("decide", {}, actor="agent:a")
    info = engine.complete(run.id, "assess", {"score": 0.9}, actor="agent:a")
    assert info.status == "failed"
    failed = engine.log(run.id)[-1]
    assert failed["event"] == "failed" and failed["step"] == "rate"
    assert "matched no rule" in failed["detail"]["error"]
    # The score is the gated evidence of 'assess': a retry may not replace it (issue 12).
    refused(engine, run.id, lambda: engine.retry(run.id, "rate", {"score": 0.2}, actor="human:alice"),
            "data_conflict")
    assert engine.status(run.id).status == "failed" and engine.status(run.id).data["score"] == 0.9


# --- errors and retry -----------------------------------------------------------------------

SCRIPTED = bpmn("scripted", (
    '<bpmn:startEvent id="start"/>' + user("enter", gate={"type": "object"})
    + '<bpmn:scriptTask id="compute"><bpmn:script>ratio = passed / total\nsummary = f"{passed} of {total}"'
    '</bpmn:script></bpmn:scriptTask>'
    + '<bpmn:exclusiveGateway id="route"/>' + user("good") + user("bad") + '<bpmn:endEvent id="end"/>'
    + chain("start", "enter", "compute", "route")
    + flow("f_good", "route", "good", "ratio >= 0.95") + flow("f_bad", "route", "bad", "ratio < 0.5")
    + chain("good", "end", prefix="a") + chain("bad", "end", prefix="b")))


def test_a_failing_script_fails_the_run_and_retry_keeps_the_data(tmp_path: Path,
                                                                   make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"scripted": SCRIPTED}))
    run = engine.start("scripted", {"client": "CL-1", "total": 0}, actor="agent:a")
    info = engine.complete(run.id, "enter", {"passed": 5}, actor="agent:a")
    assert info.status == "failed"
    failed = engine.log(run.id)[-1]
    assert (failed["event"], failed["step"], failed["detail"]["element"]) == ("failed", "compute", "compute")
    assert "ZeroDivisionError" in failed["detail"]["error"] and "line 1" in failed["detail"]["error"]
    assert info.data == {"client": "CL-1", "passed": 5, "total": 0}  # nothing set before the error is lost
    # A failed run refuses steps, and retry names the element.
    refused(engine, run.id, lambda: engine.complete(run.id, "good", {}, actor="agent:a"), "run_not_active")
    refused(engine, run.id, lambda: engine.retry(run.id, "route", {}, actor="human:alice"), "unknown_step")
    # Only the owner's role retries; only what the script reads; never a step's evidence.
    refused(engine, run.id, lambda: engine.retry(run.id, "compute", {"total": 5}, actor="agent:a"),
            "actor_not_allowed")
    refused(engine, run.id, lambda: engine.retry(run.id, "compute", {"client": "X"}, actor="human:alice"),
            "data_not_read")
    refused(engine, run.id, lambda: engine.retry(run.id, "compute", {"passed": 0}, actor="human:alice"),
            "data_conflict")
    again = engine.retry(run.id, "compute", {"total": 5}, actor="human:alice")
    assert again.status == "active" and [s.id for s in again.ready_steps] == ["good"]
    assert again.data == {"client": "CL-1", "passed": 5, "total": 5, "ratio": 1.0, "summary": "5 of 5"}
    retried = [e for e in engine.log(run.id) if e["event"] == "step_ready" and e["step"] == "compute"]
    assert retried[0]["actor"] == "human:alice" and retried[0]["detail"]["retry"] is True
    assert retried[0]["detail"]["data"] == {"total": 5}
    refused(engine, run.id, lambda: engine.retry(run.id, "compute", {}, actor="human:alice"), "not_failed")
    assert engine.complete(run.id, "good", {}, actor="agent:a").status == "completed"
    assert engine.verify_log()["ok"] is True


def test_a_gateway_with_no_matching_branch_fails_and_can_be_retried(tmp_path: Path,
                                                                   make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"scripted": SCRIPTED}))
    run = engine.start("scripted", {}, actor="agent:a")
    info = engine.complete(run.id, "enter", {"passed": 7, "total": 10}, actor="agent:a")
    assert info.status == "failed"
    failed = engine.log(run.id)[-1]
    assert failed["step"] == "route" and "No conditions satisfied" in failed["detail"]["error"]
    assert engine.retry(run.id, "route", {"ratio": 0.2}, actor="human:alice").ready_steps[0].id == "bad"


def test_a_failed_run_can_be_cancelled(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"scripted": SCRIPTED}))
    run = engine.start("scripted", {}, actor="agent:a")
    engine.complete(run.id, "enter", {"passed": 1, "total": 0}, actor="agent:a")
    assert engine.cancel(run.id, "bad test data", actor="human:alice").status == "cancelled"
    refused(engine, run.id, lambda: engine.retry(run.id, "compute", {"total": 1}, actor="human:alice"), "not_failed")


# --- across processes -----------------------------------------------------------------------

def test_a_run_resumes_in_fresh_processes(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"review-loop": REVIEW_LOOP})
    started = cli("start", "review-loop", "--actor", "agent:a", "--json", home=home)
    assert started.returncode == 0, started
    run_id = started.json["data"]["id"]
    for step, evidence, actor in [("prepare", '{"note": "one"}', "agent:a"),
                                  ("review", '{"decision": "reject"}', "human:carol"),
                                  ("prepare", '{"note": "two"}', "agent:a")]:
        result = cli("complete", run_id, step, "--evidence", evidence, "--actor", actor, "--json", home=home)
        assert result.returncode == 0, result
    wrong = cli("complete", run_id, "review", "--evidence", '{"decision": "approve"}', "--actor", "agent:a",
                "--json", home=home)
    assert wrong.returncode == 1 and wrong.json["error"]["details"]["reason"] == "same_actor"
    status = cli("status", run_id, "--json", home=home)
    assert status.json["data"]["ready"] == ["review"] and status.json["data"]["tier"] == 1
    done = cli("complete", run_id, "review", "--evidence", '{"decision": "approve"}', "--actor", "human:carol",
               home=home)
    assert done.returncode == 0 and "status: completed" in done.stdout
    assert cli("log", "verify", home=home).returncode == 0


def test_a_process_that_fails_its_check_cannot_start(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """Through the whole stack: the file passes no check, so a home with it refuses to start it."""
    marker = tmp_path / "pwned"
    xml = bpmn("attack", '<bpmn:startEvent id="start"/><bpmn:scriptTask id="evil"><bpmn:script>'
               f"y = __import__('os').system('touch {marker}')</bpmn:script></bpmn:scriptTask>"
               '<bpmn:endEvent id="end"/>' + chain("start", "evil", "end"))
    home = tier1_home(tmp_path / "home", {"attack": xml})
    engine = make_engine(home)
    errors = [p for p in engine.check() if p.severity == "error"]
    assert errors and errors[0].path == "processes/attack.bpmn" and errors[0].message.startswith("evil: script:")
    with pytest.raises(Exception, match="cannot be used until its problems are fixed"):
        engine.start("attack", {}, actor="agent:a")
    assert not marker.exists()


def test_a_timer_value_that_fails_is_retried_and_its_step_announced(tmp_path: Path,
                                                                   make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("late", '<bpmn:startEvent id="start"/>' + user("intake") + user("review")
               + '<bpmn:boundaryEvent id="deadline" attachedToRef="review"><bpmn:timerEventDefinition>'
                 '<bpmn:timeDuration>review_period</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
               + user("chase") + '<bpmn:endEvent id="end"/>' + chain("start", "intake", "review", "end")
               + flow("f_chase", "deadline", "chase") + flow("f_chase_end", "chase", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"late": xml}))
    run = engine.start("late", {"review_period": 3}, actor="agent:a")  # not ISO text
    info = engine.complete(run.id, "intake", {}, actor="agent:a")
    assert info.status == "failed"
    failed = engine.log(run.id)[-1]
    assert (failed["event"], failed["step"]) == ("failed", "deadline")
    assert "must be ISO 8601 text" in failed["detail"]["error"]
    again = engine.retry(run.id, "deadline", {"review_period": "P3D"}, actor="human:alice")
    assert again.status == "active" and [s.id for s in again.ready_steps] == ["review"]
    assert [(e["step"], e["event"]) for e in engine.log(run.id)][-2:] == [("deadline", "step_ready"),
                                                                           ("review", "step_ready")]
    assert again.data["review_period"] == "P3D"
    assert engine.complete(run.id, "review", {}, actor="agent:a").status == "completed"


def test_a_terminate_end_closes_the_other_ready_steps(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("term", '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("x") + user("y")
               + '<bpmn:endEvent id="stop"><bpmn:terminateEventDefinition/></bpmn:endEvent>'
               + chain("start", "split") + flow("f1", "split", "x") + flow("f2", "split", "y")
               + flow("f3", "x", "stop") + flow("f4", "y", "stop"))
    engine = make_engine(tier1_home(tmp_path / "home", {"term": xml}))
    run = engine.start("term", {}, actor="agent:a")
    assert engine.complete(run.id, "x", {}, actor="agent:a").status == "completed"
    assert [(e["step"], e["event"], e["detail"]) for e in engine.log(run.id)][-2:] == [
        ("y", "step_skipped", {"reason": "cancelled: the process moved on without it"}), (None, "completed", {})]
    assert states(engine, run.id) == {"x": "done", "y": "skipped"}


def test_an_error_thrown_in_a_subprocess_is_caught_by_its_boundary(tmp_path: Path,
                                                                   make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("err", '<bpmn:startEvent id="start"/><bpmn:subProcess id="sub"><bpmn:startEvent id="s_s"/>'
               + user("inside") + '<bpmn:exclusiveGateway id="ok" default="s_fine"/><bpmn:endEvent id="s_end"/>'
               + '<bpmn:endEvent id="s_err"><bpmn:errorEventDefinition errorRef="bad"/></bpmn:endEvent>'
               + chain("s_s", "inside", "ok", prefix="s") + flow("s_fail", "ok", "s_err", "broken")
               + flow("s_fine", "ok", "s_end") + '</bpmn:subProcess>'
               + '<bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="bad"/>'
               + '</bpmn:boundaryEvent>' + user("handle") + user("normal") + '<bpmn:endEvent id="end"/>'
               + chain("start", "sub", "normal", "end") + flow("f_h", "caught", "handle", deviation=True)
               + flow("f_he", "handle", "end")).replace("<bpmn:process ", '<bpmn:error id="bad" errorCode="E1"/>'
                                                                            "<bpmn:process ")
    engine = make_engine(tier1_home(tmp_path / "home", {"err": xml}))
    run = engine.start("err", {}, actor="agent:a")
    info = engine.complete(run.id, "inside", {"broken": True}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["handle"]
    assert engine.log(run.id)[-1]["detail"] == {"off_path": True, "flow": "f_h"}
