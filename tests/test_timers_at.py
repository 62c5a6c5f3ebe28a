"""`tiergate timers --at TIME`: what would fire by then, and nothing changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from support import CLIResult
from test_tier1_timers import APPROVAL
from tier1_helpers import tier1_home
from tiergate.engine import Engine

T0 = datetime(2030, 1, 7, 9, 0, tzinfo=timezone.utc)   # in the future: nothing is due on the real clock


@pytest.fixture
def approval_home(tmp_path: Path) -> Any:
    return tier1_home(tmp_path / "home", {"approval": APPROVAL})


def _snapshot(engine: Engine, run_id: str) -> tuple[Any, ...]:
    info = engine.status(run_id)
    return info.status, [(s.id, s.state) for s in info.steps], len(engine.log(run_id))


def test_timers_at_lists_what_would_fire_and_changes_nothing(approval_home: Any,
                                                              make_engine: Callable[..., Engine],
                                                              cli: Callable[..., CLIResult]) -> None:
    engine = make_engine(approval_home, clock=lambda: T0)
    run = engine.start("approval", {}, actor="agent:a")
    before = _snapshot(engine, run.id)

    soon = cli("timers", "--at", "2030-01-07T12:00:00Z", "--json", home=approval_home)
    assert soon.returncode == 0, soon
    assert soon.json["data"] == {"at": "2030-01-07T12:00:00.000000Z", "runs": [], "schedules": []}

    later = cli("timers", "--at", "2030-01-07T14:00:00Z", "--json", home=approval_home)
    assert later.returncode == 0, later
    [item] = later.json["data"]["runs"]
    assert item["run"] == run.id and item["process"] == "approval" and item["error"] is None
    assert [(t["timer"], t["task"], t["due"]) for t in item["timers"]] == [
        ("remind_approver", "approve", "2030-01-07T13:00:00.000000Z")]
    assert [e["event"] for e in item["would_log"]] == ["timer_fired", "escalated", "step_ready"]
    assert item["would_log"][-1]["step"] == "nudge"

    # Past both timers: the interrupting one takes the approval away.
    both = cli("timers", "--at", "2030-01-09T10:00:00", "--json", home=approval_home)   # no zone: UTC
    [item] = both.json["data"]["runs"]
    assert [t["timer"] for t in item["timers"]] == ["remind_approver", "approval_overdue"]
    assert item["would_log"].count({"event": "timer_fired", "step": "approve"}) == 2

    human = cli("timers", "--at", "2030-01-09T10:00:00Z", home=approval_home)
    assert human.returncode == 0
    assert "remind_approver (on approve), approval_overdue (on approve)" in human.stdout
    assert run.id in human.stdout and "nothing was changed" in human.stdout

    # Nothing moved: not the run, not its log, not its due time (the worker still finds it).
    assert _snapshot(engine, run.id) == before
    from tiergate.worker import run_pass
    assert [f.run for f in run_pass(engine, now=T0 + timedelta(hours=5))] == [run.id]


def test_timers_at_takes_a_duration_from_now(approval_home: Any, make_engine: Callable[..., Engine],
                                             cli: Callable[..., CLIResult]) -> None:
    past = datetime(2020, 1, 6, 9, 0, tzinfo=timezone.utc)
    engine = make_engine(approval_home, clock=lambda: past)
    run = engine.start("approval", {}, actor="agent:a")
    # Relative to the real clock, long after 2020: both timers are due.
    result = cli("timers", "--at", "PT1H", "--json", home=approval_home)
    assert [r["run"] for r in result.json["data"]["runs"]] == [run.id]
    assert len(result.json["data"]["runs"][0]["timers"]) == 2


def test_a_bad_time_is_a_usage_error(approval_home: Any, cli: Callable[..., CLIResult]) -> None:
    result = cli("timers", "--at", "next tuesday", "--json", home=approval_home)
    assert result.returncode != 0
    assert result.json["error"]["code"] == "invalid_time"
    assert result.json["error"]["message"] == ("--at 'next tuesday' is neither an ISO 8601 time "
                                               "(2026-12-08T09:00:00Z) nor a duration from now (PT49H, P2D).")


def test_the_production_worker_takes_no_clock_from_input(approval_home: Any, cli: Callable[..., CLIResult]) -> None:
    help_text = cli("worker", "--help", home=approval_home).stdout
    assert "--at" not in help_text and "--now" not in help_text and "--clock" not in help_text
    for option in ("--at", "--now"):
        refused = cli("worker", "--once", option, "2030-01-01T00:00:00Z", home=approval_home)
        said = refused.stderr + refused.stdout
        assert refused.returncode == 2 and "No such option" in said and option in said
