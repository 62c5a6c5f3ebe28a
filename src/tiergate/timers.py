"""What the timer worker would do by a given time, without doing it (``tiergate timers --at``).

    from tiergate.timers import preview, parse_at
    preview(engine, parse_at("PT49H", engine.clock()))   # {"at", "runs": [...]} and nothing written

Each run with a timer due by then is restored from the database and its timers are fired in
memory on a copy of its state, at that time, exactly as ``tiergate worker`` would fire them;
the result is described and thrown away. The database is only read. Beside them, each schedule
(a deployed process's timer-cycle start event, ``tiergate.schedules``) with its next due time.

The moment comes from the operator here, and only here: ``tiergate worker`` always fires on the
engine's own clock, and no option or input of it can move that clock. Scenario tests move a test
clock of their own engine (``tiergate.scenarios``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tiergate.actors import SYSTEM
from tiergate.bpmn.timers import LITERALS, add_duration, parse_datetime
from tiergate.engine import Engine
from tiergate.errors import TiergateError, UsageError
from tiergate.log import format_time
from tiergate.runners.base import RunContext
from tiergate.store import runs as store
from tiergate.store.timers import due_runs


def parse_at(value: str, now: datetime) -> datetime:
    """An ISO 8601 time (UTC when it names no zone) or a duration from now (``PT49H``, ``P2D``)."""
    text = (value or "").strip()
    try:
        if LITERALS["timeDuration"].match(text):
            return add_duration(now, text)
        return parse_datetime(text)
    except ValueError:
        raise UsageError(f"--at '{value}' is neither an ISO 8601 time (2026-12-08T09:00:00Z) nor a duration "
                         "from now (PT49H, P2D).", code="invalid_time", details={"at": value}) from None


def preview(engine: Engine, at: datetime) -> dict[str, Any]:
    """Every timer due by ``at`` and what firing it would log, per run; changes nothing."""
    out = []
    with engine.db.read() as conn:
        for run_id in due_runs(conn, at):
            run = store.get_run(conn, run_id)
            if run is None:  # finished meanwhile
                continue
            runner = engine.runners[run.tier]
            timers = [t for t in run.state.get("timers", []) if t.get("due") and parse_datetime(t["due"]) <= at]
            item: dict[str, Any] = {"run": run.id, "process": run.process_id, "timers": timers,
                                    "would_log": [], "status": run.status.value, "error": None}
            fire = getattr(runner, "fire_timers", None)
            try:
                if fire is None:
                    raise UsageError(f"tier {run.tier} has no timers")
                transition = fire(engine._pinned(conn, run), run.state,
                                  RunContext(run_id=run.id, actor=SYSTEM, now=at, roles=None,
                                             stores=engine._stores(run.process_id, run.id)))  # writes: thrown away
            except TiergateError as err:
                item["error"] = err.message
            else:
                item["status"] = transition.status.value
                item["would_log"] = [{"event": e.event, "step": e.step} for e in transition.events]
            out.append(item)
    return {"at": format_time(at), "runs": out, "schedules": scheduled(engine, at)}


def scheduled(engine: Engine, at: datetime) -> list[dict[str, Any]]:
    """Each schedule (timer-cycle start event) of the deployed processes, with its next due time
    from now and whether the worker would start a run of it by ``at`` (``tiergate.schedules``)."""
    from tiergate.schedules import listing

    items = listing(engine)
    for item in items:
        item["starts_by_then"] = item["next_due"] is not None and parse_datetime(item["next_due"]) <= at
    return items
