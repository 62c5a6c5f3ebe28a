"""Tier 1 timer start events: the run starts and waits until its start event's timer is due.

SpiffWorkflow 3.2 runs a process whose start event has a timeDate or timeDuration: the workflow
starts and its start event waits until the timer is due, then the flow goes on. Runs here start on
a fixed clock and due timers are fired by `run_pass` at a given time; nothing waits for time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from test_tier1_check import line_of, problems_of, spread
from tier1_helpers import bpmn, chain, tier1_home, user
from tiergate.engine import Engine
from tiergate.errors import LimitExceededError, RefusedError
from tiergate.log import format_time, utc
from tiergate.metrics import measure
from tiergate.store.tables import Run
from tiergate.worker import run_pass

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def timed_start(kind: str, value: str) -> str:
    return (f'<bpmn:startEvent id="start"><bpmn:timerEventDefinition><bpmn:{kind}>{value}</bpmn:{kind}>'
            '</bpmn:timerEventDefinition></bpmn:startEvent>')


def later(kind: str, value: str) -> str:
    return bpmn("later", timed_start(kind, value) + user("work", "Do the work")
                + '<bpmn:endEvent id="end"/>' + chain("start", "work", "end"))


def _due_at(engine: Engine, run_id: str) -> datetime | None:
    runs = Run.__table__
    with engine.db.read() as conn:
        value = conn.execute(sa.select(runs.c.due_at).where(runs.c.id == run_id)).scalar()
    return utc(value) if value is not None else None


def _run_to_the_end(engine: Engine, run_id: str, due: datetime) -> None:
    """Nothing to do before the timer; the worker at its due time starts the flow; the run completes."""
    waiting = engine.status(run_id)
    assert waiting.ready_steps == []
    assert waiting.to_dict()["timers"] == [{"timer": "start", "task": None, "due": format_time(due), "start": True}]
    assert _due_at(engine, run_id) == due
    with pytest.raises(RefusedError) as refused:
        engine.complete(run_id, "work", {}, actor="agent:a")
    assert refused.value.reason == "not_ready"
    assert f"the start event timer start (due {format_time(due)})" in refused.value.message
    text = engine.guide(run_id, actor="agent:a")["text"]
    assert f"the timer of the start event `start`: the process begins when it is due, at {format_time(due)}" in text
    assert run_pass(engine, now=due - timedelta(seconds=1)) == []
    fired = run_pass(engine, now=due)
    assert [(f.run, f.events) for f in fired] == [(run_id, ["timer_fired", "step_ready"])]
    timer = next(e for e in engine.log(run_id) if e["event"] == "timer_fired")
    assert (timer["step"], timer["actor"]) == ("start", "system:tiergate")
    assert timer["detail"] == {"timer": "start", "task": None, "due": format_time(due)}
    assert _due_at(engine, run_id) is None
    assert [s.id for s in engine.status(run_id).ready_steps] == ["work"]
    assert "timers" not in engine.status(run_id).to_dict()
    assert engine.complete(run_id, "work", {}, actor="agent:a").status == "completed"
    assert run_pass(engine, now=due + timedelta(days=30)) == []
    assert engine.verify_log()["ok"] is True


@pytest.mark.parametrize("kind, value, data, due", [
    ("timeDuration", "PT2H", {}, T0 + timedelta(hours=2)),
    ("timeDuration", "wait_for", {"wait_for": "P1D"}, T0 + timedelta(days=1)),
    ("timeDate", "2026-02-01T09:00:00Z", {}, datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)),
    ("timeDate", "begin_at", {"begin_at": "2026-01-06T10:00:00+01:00"}, T0 + timedelta(hours=24)),
])
def test_a_timer_start_event_waits_then_runs_to_completion(tmp_path: Path, make_engine: Callable[..., Engine],
                                                           kind: str, value: str, data: dict[str, Any],
                                                           due: datetime) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"later": later(kind, value)}), clock=lambda: T0)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("later", data, actor="agent:a")
    assert run.status == "active"
    assert measure(engine, process="later")["totals"]["outcomes"]["in_progress"] == 1
    _run_to_the_end(engine, run.id, due)
    totals = measure(engine, process="later")["totals"]
    # The one deviation is the attempt at `work` before the timer was due (refused: not ready).
    kinds = {k: v["count"] for k, v in totals["deviations"]["by_kind"].items() if v["count"]}
    assert (totals["outcomes"]["completed"], totals["deviations"]["total"], kinds) == (1, 1, {"out_of_order": 1})


def test_a_date_already_past_starts_the_flow_at_once(tmp_path: Path,
                                                    make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"later": later("timeDate", "2026-01-01T00:00:00Z")}),
                         clock=lambda: T0)
    run = engine.start("later", {}, actor="agent:a")
    assert [s.id for s in engine.status(run.id).ready_steps] == ["work"]
    assert [e["event"] for e in engine.log(run.id)][-2:] == ["timer_fired", "step_ready"]


@pytest.mark.parametrize("kind, value, message", [
    ("timeDuration", "P2HOURS", "timeDuration 'P2HOURS' is not valid ISO 8601"),
    ("timeDuration", "wait.__class__", "timeDuration expression: attribute '.__class__' is not allowed"),
    ("timeCycle", "R3/PT0S", "timeCycle: 'R3/PT0S': the interval must be longer than zero"),
    ("timeCycle", "cycle_from_data", "timeCycle: 'cycle_from_data' is not an ISO 8601 repeating interval"),
    ("timeCycle", "R3/2026-12-01T09:00:00Z", "needs a duration after it"),
])
def test_check_refuses_a_bad_start_timer_at_its_line(kind: str, value: str, message: str) -> None:
    xml = spread(bpmn("p", timed_start(kind, value) + user("work") + '<bpmn:endEvent id="end"/>'
                      + chain("start", "work", "end")))
    found = [(line, text) for line, severity, text in problems_of(xml) if severity == "error"]
    assert found == [(line_of(xml, f"<bpmn:{kind}>"), found[0][1])], found
    assert found[0][1].startswith("start: ") and message in found[0][1], found


def test_a_timer_start_inside_a_subprocess_stays_refused() -> None:
    xml = bpmn("p", '<bpmn:startEvent id="s"/><bpmn:subProcess id="sub">' + timed_start("timeDuration", "PT1H")
               .replace('id="start"', 'id="inner"') + '<bpmn:endEvent id="se"/>' + chain("inner", "se", prefix="i")
               + '</bpmn:subProcess>' + user("work") + '<bpmn:endEvent id="end"/>' + chain("s", "sub", "work", "end"))
    found = [text for _, severity, text in problems_of(xml) if severity == "error"]
    assert any(t.startswith("inner: start events must be plain") for t in found), found


def test_a_plain_start_beside_a_timer_start_wins_as_in_spiffworkflow(tmp_path: Path,
                                                                     make_engine: Callable[..., Engine]) -> None:
    """SpiffWorkflow 3.2 takes the plain start at once and cancels the timer start: no timer is kept."""
    xml = bpmn("two", '<bpmn:startEvent id="now"/>' + timed_start("timeDuration", "PT2H") + user("a") + user("b")
               + '<bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>' + chain("now", "a", "e1")
               + chain("start", "b", "e2", prefix="g"))
    engine = make_engine(tier1_home(tmp_path / "home", {"two": xml}), clock=lambda: T0)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("two", {}, actor="agent:a")
    assert [s.id for s in engine.status(run.id).ready_steps] == ["a"]
    assert _due_at(engine, run.id) is None
    assert engine.complete(run.id, "a", {}, actor="agent:a").status == "completed"
    assert run_pass(engine, now=T0 + timedelta(days=1)) == []


def test_a_start_timer_value_that_is_not_iso_8601_fails_the_run_and_a_retry_waits(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"later": later("timeDuration", "wait_for")}),
                         clock=lambda: T0)
    run = engine.start("later", {"wait_for": "soon"}, actor="agent:a")
    assert run.status == "failed"
    failed = engine.log(run.id)[-1]
    assert (failed["event"], failed["step"]) == ("failed", "start")
    assert "'soon' is not an ISO 8601 duration" in str(failed["detail"]), failed
    assert engine.retry(run.id, "start", {"wait_for": "PT3H"}, actor="human:alice").status == "active"
    _run_to_the_end(engine, run.id, T0 + timedelta(hours=3))


def test_start_and_status_on_the_command_line_say_what_the_run_waits_for(tmp_path: Path,
                                                                         cli: Callable[..., Any]) -> None:
    home = tier1_home(tmp_path / "home", {"later": later("timeDate", "2999-01-01T09:00:00Z")})
    started = cli("start", "later", "--actor", "agent:a", "--json", home=home)
    assert started.returncode == 0, started.stderr
    answer = started.json["data"]
    assert answer["ready"] == [] and answer["timers"][0]["due"] == "2999-01-01T09:00:00.000000Z"
    shown = cli("status", answer["id"], home=home)
    assert shown.returncode == 0, shown.stderr
    assert "waits for: the start event's timer start, due 2999-01-01T09:00:00.000000Z" in shown.stdout
    assert cli("worker", "--once", home=home).returncode == 0
    assert cli("status", answer["id"], "--json", home=home).json["data"]["ready"] == []


def test_a_start_timer_expression_over_its_budget_refuses_the_start(tmp_path: Path,
                                                                     make_engine: Callable[..., Engine]) -> None:
    home = tier1_home(tmp_path / "home", {"later": later("timeDuration", '"PT" + str(9 ** (9 ** 8) % 7) + "S"')})
    engine = make_engine(home, clock=lambda: T0)
    assert [p for p in engine.check() if p.severity == "error"] == []
    with pytest.raises(LimitExceededError) as over:
        engine.start("later", {}, actor="agent:a")
    assert over.value.details["limit"] == "tier1_int_bits" and over.value.details["element"] == "start"
    assert engine.runs(process="later") == []
