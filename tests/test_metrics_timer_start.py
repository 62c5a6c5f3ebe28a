"""Metrics of Tier 1 runs that wait for their start event's timer: such a run has not been left,
it has not begun. Its age for abandonment counts from when its first step became ready."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from test_tier1_timer_start import later
from tier1_helpers import tier1_home
from tiergate.engine import Engine
from tiergate.metrics import measure
from tiergate.worker import run_pass

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
DUE = T0 + timedelta(days=30)  # expected_minutes is 30: Tier 1 runs are abandoned after 90 minutes


def _outcomes(engine: Engine, **scope: Any) -> tuple[int, int]:
    outcomes = measure(engine, process="later", **scope)["totals"]["outcomes"]
    return outcomes["abandoned"], outcomes["in_progress"]


@pytest.mark.parametrize("scope", [{}, {"from_log": True}, {"since": "2026-01-01"}])
def test_a_run_waiting_for_a_far_off_start_timer_is_in_progress_not_abandoned(
        tmp_path: Path, make_engine: Callable[..., Engine], scope: dict[str, Any]) -> None:
    now = [T0]
    engine = make_engine(tier1_home(tmp_path / "home", {"later": later("timeDate", "2026-02-04T09:00:00Z")}),
                         clock=lambda: now[0])
    waiting = engine.start("later", {}, actor="agent:a").id
    assert engine.status(waiting).ready_steps == []
    now[0] = T0 + timedelta(days=1)
    assert _outcomes(engine, **scope) == (0, 1)  # a day old, still waiting for its start: not left
    now[0] = DUE
    assert [f.run for f in run_pass(engine, now=DUE)] == [waiting]
    now[0] = DUE + timedelta(minutes=60)
    assert _outcomes(engine, **scope) == (0, 1)  # its work began an hour ago
    now[0] = DUE + timedelta(minutes=91)
    assert _outcomes(engine, **scope) == (1, 0)  # and now it is left past 3 x expected_minutes


def test_a_plain_run_left_open_is_still_abandoned(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    now = [T0]
    engine = make_engine(tier1_home(tmp_path / "home", {"later": later("timeDate", "2026-01-01T00:00:00Z")}),
                         clock=lambda: now[0])
    engine.start("later", {}, actor="agent:a")  # a date already past: the flow goes on at the start
    now[0] = T0 + timedelta(minutes=91)
    assert _outcomes(engine) == (1, 0)
    assert _outcomes(engine, from_log=True) == (1, 0)
