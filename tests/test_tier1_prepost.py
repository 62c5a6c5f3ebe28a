"""Spiff's pre- and post-scripts on Tier 1 tasks, run in tiergate's sandbox (real SpiffWorkflow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tier1_helpers import GATE_ANY, bpmn, chain, props, tier1_home

from tiergate.engine import Engine
from tiergate.errors import LimitExceededError


def task_with_scripts(task_id: str, pre: str = "", post: str = "", docs: str = "", gate: dict = GATE_ANY) -> str:
    scripts = "".join(f"<spiffworkflow:{kind}>{text}</spiffworkflow:{kind}>"
                      for kind, text in (("preScript", pre), ("postScript", post)) if text)
    extension = props(gate=gate).replace("<bpmn:extensionElements>", "<bpmn:extensionElements>" + scripts)
    documentation = f"<bpmn:documentation>{docs}</bpmn:documentation>" if docs else ""
    return f'<bpmn:userTask id="{task_id}" name="{task_id}">{documentation}{extension}</bpmn:userTask>'


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], body: str) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", {"scripted": bpmn("scripted", body)}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    return engine


GATE_AMOUNT = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}}


def test_a_pre_script_runs_when_the_task_is_ready_and_a_post_script_on_its_evidence(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>'
            + task_with_scripts("enter", pre="limit = 2 * base_limit", post="over = amount &gt; limit",
                                docs="Enter an amount; more than {{ data.limit }} needs a second look.",
                                gate=GATE_AMOUNT)
            + task_with_scripts("review") + '<bpmn:endEvent id="end"/>' + chain("start", "enter", "review", "end"))
    engine = engine_for(tmp_path, make_engine, body)
    run = engine.start("scripted", {"base_limit": 50}, actor="agent:a")
    assert run.data == {"base_limit": 50, "limit": 100}
    [enter] = run.ready_steps
    assert enter.instructions == "Enter an amount; more than 100 needs a second look."
    info = engine.complete(run.id, "enter", {"amount": 150}, actor="agent:a")
    assert info.data == {"base_limit": 50, "limit": 100, "amount": 150, "over": True}
    assert [s.id for s in info.ready_steps] == ["review"]
    assert engine.verify_log()["ok"] is True


def test_a_failing_post_script_fails_the_run_at_its_task_and_a_retry_mends_it(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + task_with_scripts("enter", post="share = amount / parts",
                                                                 gate=GATE_AMOUNT)
            + '<bpmn:endEvent id="end"/>' + chain("start", "enter", "end"))
    engine = engine_for(tmp_path, make_engine, body)
    run = engine.start("scripted", {"parts": 0}, actor="agent:a")
    info = engine.complete(run.id, "enter", {"amount": 10}, actor="agent:a")
    assert info.status == "failed"
    failed = engine.log(run.id)[-1]
    assert (failed["event"], failed["step"]) == ("failed", "enter") and "division by zero" in failed["detail"]["error"]
    assert "share" not in engine.status(run.id).data  # the script set nothing


def test_a_pre_script_over_its_budget_is_refused_and_changes_nothing(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + task_with_scripts("first")
            + task_with_scripts("second", pre="n = 0\nwhile True:\n    n = n + 1")
            + '<bpmn:endEvent id="end"/>' + chain("start", "first", "second", "end"))
    engine = engine_for(tmp_path, make_engine, body)
    run = engine.start("scripted", {}, actor="agent:a")
    with pytest.raises(LimitExceededError) as err:
        engine.complete(run.id, "first", {}, actor="agent:a")
    assert err.value.details["element"] == "second"
    status = engine.status(run.id)
    assert (status.status, [s.id for s in status.ready_steps]) == ("active", ["first"])
    assert engine.log(run.id)[-1]["event"] == "refused"


def test_a_pre_script_cannot_reach_the_host(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    direct = ('<bpmn:startEvent id="start"/>' + task_with_scripts("enter", pre="x = open('/etc/passwd')")
              + '<bpmn:endEvent id="end"/>' + chain("start", "enter", "end"))
    refused = make_engine(tier1_home(tmp_path / "direct", {"scripted": bpmn("scripted", direct)}))
    assert ["'open' cannot be called" in p.message for p in refused.check() if p.severity == "error"] == [True]
    # Reached through a name `check` cannot follow, it still fails when the run gets there.
    body = ('<bpmn:startEvent id="start"/>' + task_with_scripts("enter", pre="opener = open\nx = opener('/etc/passwd')")
            + '<bpmn:endEvent id="end"/>' + chain("start", "enter", "end"))
    engine = engine_for(tmp_path, make_engine, body)
    run = engine.start("scripted", {}, actor="agent:a")
    assert run.status == "failed" and "x" not in run.data
    failed = engine.log(run.id)[-1]
    assert (failed["event"], failed["step"]) == ("failed", "enter") and "open" in failed["detail"]["error"]
