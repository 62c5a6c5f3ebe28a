"""Open Tier 1 runs whose work has not begun, or began only lately: not abandoned.

A run whose start event waits for a timer (``tiergate start`` made it at once; the process begins
when the timer is due) has no ready step until then, and may wait weeks. Abandonment is "left open
past N x expected_minutes", and such a run has not been left: its age for abandonment counts from
its first ``step_ready`` entry, when work could begin. For every other run that entry is written
with ``started``, so nothing else changes.

    waiting = begun_late(conn, scope, stale_before)   # {(process, 1): runs}, subtracted from abandoned
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.engine import Connection

from tiergate.metrics.scope import Scope
from tiergate.metrics.sql import Key, _log, is_event
from tiergate.store.tables import Run

_runs = Run.__table__  # type: ignore[attr-defined]


def begun_late(conn: Connection, scope: Scope, stale_before: dict[Key, datetime]) -> dict[Key, int]:
    """Per (process, 1): open Tier 1 runs old enough to be abandoned by their start, that either
    wait for a timer with no step ever ready, or whose first step became ready after the cutoff.

    Driven by the active runs (``runs.status``), so it reads only those, and per run only its own
    entries (the log's run index), however long the log.
    """
    cutoffs = {process: at for (process, tier), at in stale_before.items() if tier == 1}
    if not cutoffs or scope.tier not in (None, 1):
        return {}
    started, ready, ended = _log.alias("started"), _log.alias("ready"), _log.alias("ended")
    cutoff = case(cutoffs, value=_runs.c.process_id, else_=None)
    first_ready = (select(func.min(ready.c.at)).where(ready.c.run_id == _runs.c.id, is_event(ready, "step_ready"))
                   .scalar_subquery())
    finished = exists().where(ended.c.run_id == _runs.c.id,
                              ended.c.event.in_(("completed", "cancelled", "failed")))
    query = (select(_runs.c.process_id, func.count())
             .select_from(_runs.join(started, and_(started.c.run_id == _runs.c.id, is_event(started, "started"))))
             .where(_runs.c.status == "active", _runs.c.tier == 1, _runs.c.process_id.in_(list(cutoffs)),
                    started.c.at < cutoff, ~finished,
                    or_(and_(first_ready.is_(None), _runs.c.due_at.is_not(None)), first_ready >= cutoff))
             .group_by(_runs.c.process_id))
    if scope.process is not None:
        query = query.where(_runs.c.process_id == scope.process)
    if scope.since is not None:
        query = query.where(started.c.at >= scope.since)
    return {(process, 1): int(count) for process, count in conn.execute(query)}
