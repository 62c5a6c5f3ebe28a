"""More shapes found by running SpiffWorkflow's own BPMN test processes through Tier 1 (docs/tier1.md,
*Outside processes*): each process here is our own minimal drawing of one, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import row
from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate.engine import Engine
from tiergate.worker import run_pass

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], processes: dict[str, str]) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", processes), clock=lambda: T0)
    assert [p.message for p in engine.check() if p.severity == "error"] == []
    return engine


def failures(engine: Engine, run_id: str) -> list[tuple[str | None, str]]:
    return [(e["step"], e["detail"]["error"]) for e in engine.log(run_id) if e["event"] == "failed"]


def test_a_retried_intermediate_timer_waits_again_or_fails_again_and_never_stalls(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    # An intermediate timer whose value is computed from data the run lacks (in SpiffWorkflow's corpus a
    # timer of `timedelta(milliseconds=10)`, a name its own engine does not know either).
    wait = ('<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>'
            '"PT" + str(hours) + "H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>')
    body = '<bpmn:startEvent id="start"/>' + wait + user("after") + '<bpmn:endEvent id="end"/>' + chain(
        "start", "wait", "after", "end")
    engine = engine_for(tmp_path, make_engine, {"waiting": bpmn("waiting", body)})
    run = engine.start("waiting", {}, actor="human:alice")
    assert run.status == "failed"
    assert failures(engine, run.id)[-1][0] == "wait" and "'hours' is not defined" in failures(engine, run.id)[-1][1]

    # A fix that still gives no duration: the run fails again at once, with the new error.
    again = engine.retry(run.id, "wait", {"hours": "soon"}, actor="human:alice")
    assert again.status == "failed"
    assert len(failures(engine, run.id)) == 2 and "ISO 8601" in failures(engine, run.id)[-1][1]

    # A good fix: the timer waits for its due time, which the run shows, and the worker fires it then.
    waits = engine.retry(run.id, "wait", {"hours": 2}, actor="human:alice")
    assert (waits.status, waits.ready_steps) == ("active", [])
    assert row(engine, run.id)["due_at"] is not None   # the worker will visit it
    assert run_pass(engine, now=T0 + timedelta(hours=1)) == []
    assert [f.events[0] for f in run_pass(engine, now=T0 + timedelta(hours=2))] == ["timer_fired"]
    assert [s.id for s in engine.status(run.id).ready_steps] == ["after"]
