"""When each waiting Tier 1 run is next due, and finding the due ones without reading the others.

``runs.due_at`` (indexed) holds the earliest due time of a run's waiting timers, written in the
same transaction as the run's state. ``tiergate worker`` asks ``claim_due_run`` for one due run
at a time: on PostgreSQL the row comes back locked ``FOR UPDATE SKIP LOCKED``, so several workers
never take the same run and none waits for another; on SQLite the worker's ``BEGIN IMMEDIATE``
transaction already serialises writers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Collection

from sqlalchemy import Connection, select, update

from tiergate.log import utc
from tiergate.store.tables import Run

_runs = Run.__table__  # type: ignore[attr-defined]


def set_due_at(conn: Connection, run_id: str, due_at: datetime | None) -> None:
    conn.execute(update(_runs).where(_runs.c.id == run_id).values(due_at=utc(due_at) if due_at else None))


def claim_due_run(conn: Connection, now: datetime, skip: Collection[str] = ()) -> str | None:
    """The id of an active run with a timer due by ``now`` (locked on PostgreSQL), or None."""
    query = (select(_runs.c.id).where(_runs.c.status == "active", _runs.c.due_at.is_not(None),
                                      _runs.c.due_at <= utc(now))
             .order_by(_runs.c.due_at).limit(1))
    if skip:
        query = query.where(_runs.c.id.not_in(list(skip)))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return conn.execute(query).scalar()


def count_due(conn: Connection, now: datetime) -> int:
    from sqlalchemy import func

    return int(conn.execute(select(func.count()).select_from(_runs).where(
        _runs.c.status == "active", _runs.c.due_at.is_not(None), _runs.c.due_at <= utc(now))).scalar() or 0)


def due_runs(conn: Connection, now: datetime) -> list[str]:
    """The ids of active runs with a timer due by ``now``, oldest due first (nothing locked)."""
    query = (select(_runs.c.id).where(_runs.c.status == "active", _runs.c.due_at.is_not(None),
                                      _runs.c.due_at <= utc(now))
             .order_by(_runs.c.due_at, _runs.c.id))
    return [row[0] for row in conn.execute(query)]
