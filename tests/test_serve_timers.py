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
