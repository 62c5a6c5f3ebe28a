"""`tiergate serve` alone fires Tier 1 timers in its housekeeping: no `tiergate worker` runs."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from test_server import running_server
from test_tier1_timers import APPROVAL
from tier1_helpers import tier1_home
from tiergate.engine import Engine

LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def test_a_timer_escalation_fires_with_only_the_server_running(tmp_path: Path, db_url: str,
                                                               make_engine: Callable[..., Engine]) -> None:
    home: Any = tier1_home(tmp_path / "home", {"approval": APPROVAL})
    run = make_engine(home, clock=lambda: LONG_AGO).start("approval", {}, actor="agent:a").id  # both timers due
    engine = make_engine(home)
    assert "escalated" not in [e["event"] for e in engine.log(run)]
    with running_server(home.root, db_url, tmp_path / "server.log", {"TIERGATE_HOUSEKEEPING_SECONDS": "0.2"}):
        deadline = time.monotonic() + 120  # a bound against hanging, not a timing
        while "escalated" not in [e["event"] for e in engine.log(run)] and time.monotonic() < deadline:
            time.sleep(0.2)
    events = [(e["event"], e["actor"]) for e in engine.log(run)]
    assert ("timer_fired", "system:tiergate") in events and ("escalated", "system:tiergate") in events, events
    assert sorted(s.id for s in engine.status(run).ready_steps) == ["escalate", "nudge"]
    assert [e["event"] for e in engine.log(run)].count("timer_fired") == 2  # each timer once
    assert engine.verify_log()["ok"]


def test_a_run_whose_timers_fail_unforeseen_is_an_incident_and_the_other_runs_timers_fire(
        tmp_path: Path, db_url: str, make_engine: Callable[..., Engine]) -> None:
    """A run whose stored state was damaged in the database (a real state, no mock) fails where no
    check foresaw, every pass: reported once with its traceback, and the other due runs still fire."""
    from sqlalchemy import update

    from tiergate.store.tables import Run

    home: Any = tier1_home(tmp_path / "home", {"approval": APPROVAL})
    early = make_engine(home, clock=lambda: LONG_AGO)
    damaged, healthy = (early.start("approval", {}, actor="agent:a").id for _ in range(2))  # both due
    engine = make_engine(home)
    table = Run.__table__  # type: ignore[attr-defined]
    with engine.db.write() as conn:
        conn.execute(update(table).where(table.c.id == damaged).values(state={"workflow": 5, "data": {}},
                                                                        version=table.c.version + 1))
    log = tmp_path / "server.log"
    with running_server(home.root, db_url, log, {"TIERGATE_HOUSEKEEPING_SECONDS": "0.2"}):
        deadline = time.monotonic() + 120  # a bound against hanging, not a timing
        while "escalated" not in [e["event"] for e in engine.log(healthy)] and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # a few more passes, each meeting the damaged run again
    assert "escalated" in [e["event"] for e in engine.log(healthy)]
    assert [e["event"] for e in engine.log(damaged)] == ["routed", "started", "step_ready"]
    text = log.read_text()
    assert text.count(f"worker timers of run {damaged}: unforeseen AttributeError") == 1, text
    assert text.count("Traceback (most recent call last)") == 1 and "housekeeping" not in text, text
