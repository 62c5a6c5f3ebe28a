"""Tier 1 ad-hoc subprocesses (real SpiffWorkflow): activities offered at once, done in any order,
ended by the completion condition or when all are done."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support import CLIResult
from tier1_helpers import bpmn, chain, flow, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import RefusedError
from tiergate.runpage import run_view


def adhoc(inner: str, condition: str | None = "signed == True", attrs: str = "") -> str:
    done = f"<bpmn:completionCondition>{condition}</bpmn:completionCondition>" if condition else ""
    return f'<bpmn:adHocSubProcess id="review" name="Review" {attrs}>{inner}{done}</bpmn:adHocSubProcess>'


def body(inner: str, condition: str | None = "signed == True", attrs: str = "") -> str:
    return ('<bpmn:startEvent id="start"/>' + adhoc(inner, condition, attrs) + user("after")
            + '<bpmn:endEvent id="end"/>' + chain("start", "review", "after", "end"))


THREE = user("read") + user("comment") + user("sign")


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], xml_body: str,
               lanes: dict[str, list[str]] | None = None) -> Engine:
    return make_engine(tier1_home(tmp_path / "home", {"ah": bpmn("ah", xml_body, lanes=lanes)}))


def events(engine: Engine, run_id: str, kind: str) -> list[tuple[str | None, dict]]:
    return [(e["step"], e["detail"]) for e in engine.log(run_id) if e["event"] == kind]


def test_its_activities_are_ready_at_once_and_the_completion_condition_closes_the_rest(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, body(THREE))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("ah", {}, actor="agent:a")  # the condition reads `signed`, not set yet: not met
    assert sorted(s.id for s in run.ready_steps) == ["comment", "read", "sign"]
    assert sorted(item["step"] for item in engine.inbox("agent:a") if item["run"] == run.id) == \
        ["comment", "read", "sign"]
    info = engine.complete(run.id, "comment", {"remark": "fine"}, actor="agent:a")  # any order
    assert sorted(s.id for s in info.ready_steps) == ["read", "sign"]
    elements = run_view(engine, run.id)["diagram"]["elements"]
    assert elements["review"] == "waiting" and elements["read"] == "ready" and elements["comment"] == "finished"
    info = engine.complete(run.id, "sign", {"signed": True}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["after"]
    assert events(engine, run.id, "step_skipped") == [
        ("read", {"reason": "closed: the ad-hoc subprocess 'review' is complete (its completion condition holds)"})]
    assert info.data["remark"] == "fine" and info.data["signed"] is True  # the evidence goes on after it
    assert engine.complete(run.id, "after", {}, actor="agent:a").status == "completed"
    assert run_view(engine, run.id)["diagram"]["elements"]["review"] == "finished"


def test_without_a_condition_it_ends_when_every_activity_is_done_or_skipped(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    inner = user("read") + user("extra", optional="true") + user("prepare") + user("publish") \
        + flow("p1", "prepare", "publish")  # a path inside runs as drawn
    engine = engine_for(tmp_path, make_engine, body(inner, condition=None))
    run = engine.start("ah", {}, actor="agent:a")
    assert sorted(s.id for s in run.ready_steps) == ["extra", "prepare", "read"]
    engine.skip(run.id, "extra", "not needed", actor="agent:a")
    engine.complete(run.id, "prepare", {}, actor="agent:a")
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "after", {}, actor="agent:a")
    assert err.value.reason == "not_ready"
    info = engine.complete(run.id, "publish", {}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["read"]
    info = engine.complete(run.id, "read", {}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["after"]
    assert events(engine, run.id, "step_skipped") == [("extra", {"reason": "not needed"})]


def test_cancel_remaining_false_lets_the_open_activities_finish(tmp_path: Path,
                                                               make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, body(THREE, attrs='cancelRemainingInstances="false"'))
    run = engine.start("ah", {}, actor="agent:a")
    info = engine.complete(run.id, "sign", {"signed": True}, actor="agent:a")
    assert sorted(s.id for s in info.ready_steps) == ["comment", "read"]
    engine.complete(run.id, "read", {}, actor="agent:a")
    info = engine.complete(run.id, "comment", {}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["after"]
    assert events(engine, run.id, "step_skipped") == []


def test_its_lane_is_the_role_of_its_activities_and_a_restored_run_goes_on(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"ah": bpmn("ah", body(THREE), lanes={"lead": ["review"]})})
    engine = make_engine(home)
    run = engine.start("ah", {}, actor="agent:a")
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "read", {}, actor="agent:a")
    assert err.value.reason == "actor_not_allowed"
    engine.complete(run.id, "read", {}, actor="human:alice")
    other = make_engine(home)  # another process: the run is restored from the database
    info = other.complete(run.id, "sign", {"signed": True}, actor="human:bob")
    assert [s.id for s in info.ready_steps] == ["after"]
    assert events(other, run.id, "step_skipped") == [
        ("comment", {"reason": "closed: the ad-hoc subprocess 'review' is complete (its completion condition "
                               "holds)"})]


def test_check_refuses_what_cannot_run_at_the_element_and_line(tmp_path: Path,
                                                               make_engine: Callable[..., Engine]) -> None:
    sequential = engine_for(tmp_path / "a", make_engine, body(THREE, attrs='ordering="Sequential"'))
    [problem] = [p for p in sequential.check() if p.severity == "error"]
    assert problem.path == "processes/ah.bpmn" and problem.line == 4
    assert problem.message.startswith("review: an ad-hoc subprocess with sequential ordering is not run")
    bad = engine_for(tmp_path / "b", make_engine, body(THREE, condition="import os"))
    [problem] = [p for p in bad.check() if p.severity == "error"]
    assert problem.message.startswith("review: completionCondition: syntax error")
    starts = engine_for(tmp_path / "c", make_engine, body('<bpmn:startEvent id="inner_start"/>' + THREE))
    [problem] = [p for p in starts.check() if p.severity == "error"]
    assert "an ad-hoc subprocess holds activities only, without start or end events" in problem.message


def test_the_cli_shows_its_ready_activities(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"ah": bpmn("ah", body(THREE))})
    assert cli("check", home=home).returncode == 0
    started = cli("start", "ah", "--json", "--actor", "agent:a", home=home)
    assert started.returncode == 0, started
    run_id = started.json["data"]["id"]
    done = cli("complete", run_id, "sign", "--evidence", '{"signed": true}', "--actor", "agent:a", "--json", home=home)
    assert done.returncode == 0, done
    assert done.json["data"]["ready"] == ["after"]


def test_a_loop_inside_is_offered_while_its_condition_asks_for_it(tmp_path: Path,
                                                                  make_engine: Callable[..., Engine]) -> None:
    loop = ('<bpmn:standardLoopCharacteristics testBefore="true"><bpmn:loopCondition>open_issues &gt; 0'
            '</bpmn:loopCondition></bpmn:standardLoopCharacteristics>')
    inner = user("write") + user("fix").replace("</bpmn:userTask>", loop + "</bpmn:userTask>") + user("sign")
    engine = engine_for(tmp_path, make_engine, body(inner))
    run = engine.start("ah", {"open_issues": 0}, actor="agent:a")
    assert sorted(s.id for s in run.ready_steps) == ["sign", "write"]  # no open issue: nothing to fix
    info = engine.complete(run.id, "write", {"open_issues": 2}, actor="agent:a")
    assert sorted(s.id for s in info.ready_steps) == ["fix[0]", "sign"]
    info = engine.complete(run.id, "fix[0]", {"open_issues": 1}, actor="agent:a")
    assert sorted(s.id for s in info.ready_steps) == ["fix[1]", "sign"]
    other = make_engine(tmp_path / "home")  # restored from the database in another engine
    info = other.complete(run.id, "fix[1]", {"open_issues": 0}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["sign"]
    info = other.complete(run.id, "sign", {"signed": True}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["after"]
    assert other.complete(run.id, "after", {}, actor="agent:a").status == "completed"


def test_a_conditional_activity_whose_condition_reads_what_the_data_lacks_waits_until_it_can_be_read(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # At the start nothing has set `open_issues` yet: the loop is not offered (SpiffWorkflow would fail
    # the subprocess's start, where no retry could set the name), and is once a step sets it.
    loop = ('<bpmn:standardLoopCharacteristics testBefore="true"><bpmn:loopCondition>open_issues &gt; 0'
            '</bpmn:loopCondition></bpmn:standardLoopCharacteristics>')
    inner = user("write") + user("fix").replace("</bpmn:userTask>", loop + "</bpmn:userTask>") + user("sign")
    engine = engine_for(tmp_path, make_engine, body(inner))
    run = engine.start("ah", {}, actor="agent:a")
    assert (run.status, sorted(s.id for s in run.ready_steps)) == ("active", ["sign", "write"])
    info = engine.complete(run.id, "write", {"open_issues": 1}, actor="agent:a")
    assert sorted(s.id for s in info.ready_steps) == ["fix[0]", "sign"]
    info = engine.complete(run.id, "fix[0]", {"open_issues": 0}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["sign"]
