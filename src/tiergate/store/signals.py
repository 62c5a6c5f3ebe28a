"""The signal outbox: ``signal_broadcasts`` (one row per signal thrown inside a run) and
``signal_deliveries`` (one row per run each one reached). Only ``tiergate.signals`` uses it.

A broadcast is inserted in the transaction of the move that threw it (``enqueue``), so it is
committed or rolled back with that move; a signal sent from outside is inserted (and committed)
alone, before it reaches any run. Delivering it moves each waiting run in that run's own
transaction, which also inserts the (broadcast, run) key (``take_target``): a second deliverer
(a worker taking over after a crash, or two workers at once) finds the key taken and leaves that
run alone. On PostgreSQL the second insert waits for the first one's commit; on SQLite writers
take the database's write lock (``BEGIN IMMEDIATE``) one at a time.

Taking a pending broadcast over (``take``) is a conditional ``UPDATE`` of its lease: of two workers,
one updates the row and the other finds the lease already moved on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tiergate.store.tables import SignalBroadcast, SignalDelivery
from tiergate.timestamps import utc

_table = SignalBroadcast.__table__  # type: ignore[attr-defined]
_deliveries = SignalDelivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Broadcast:
    id: str
    signal: str
    run_id: str | None  # None: a signal sent from outside (tiergate signal, the API, MCP)
    element: str | None
    sender: str
    door: str | None
    depth: int
    thrown_at: datetime
    lease_until: datetime | None
    attempts: int
    delivered_at: datetime | None
    outcome: dict[str, Any] | None
    data: dict[str, Any] | None = None


def _row(row: Any) -> Broadcast:
    return Broadcast(row.id, row.signal, row.run_id, row.element, row.sender, row.door, int(row.depth),
                     utc(row.thrown_at), utc(row.lease_until) if row.lease_until else None, int(row.attempts),
                     utc(row.delivered_at) if row.delivered_at else None, row.outcome,
                     row.data)


def new_id() -> str:
    return secrets.token_hex(8)


def enqueue(conn: Connection, *, broadcast_id: str, signal: str, run_id: str | None, element: str | None,
            sender: str, door: str | None, depth: int, now: datetime, lease: timedelta,
            data: dict[str, Any] | None = None) -> None:
    """A signal the move being saved threw (owed to the other runs once the move commits), or one sent
    from outside (``run_id`` None, with its ``data``)."""
    conn.execute(insert(_table).values(id=broadcast_id, signal=signal[:200], run_id=run_id,
                                       element=element[:255] if element else None, sender=sender[:160],
                                       door=door[:80] if door else None, depth=depth, thrown_at=utc(now),
                                       lease_until=utc(now + lease), attempts=0, delivered_at=None, outcome=None,
                                       data=data))


def get(conn: Connection, broadcast_id: str) -> Broadcast | None:
    row = conn.execute(select(_table).where(_table.c.id == broadcast_id)).first()
    return None if row is None else _row(row)


def due(conn: Connection, now: datetime, limit: int = 100) -> list[str]:
    """The pending broadcasts no one holds (their lease is over), oldest first."""
    return list(conn.execute(select(_table.c.id).where(
        _table.c.delivered_at.is_(None), or_(_table.c.lease_until.is_(None), _table.c.lease_until <= utc(now)))
        .order_by(_table.c.thrown_at, _table.c.id).limit(limit)).scalars())


def take(conn: Connection, broadcast_id: str, now: datetime, lease: timedelta) -> bool:
    """Hold a pending broadcast whose lease is over, for ``lease``; False if another took it or it was delivered."""
    done = conn.execute(update(_table).where(
        _table.c.id == broadcast_id, _table.c.delivered_at.is_(None),
        or_(_table.c.lease_until.is_(None), _table.c.lease_until <= utc(now)))
        .values(lease_until=utc(now + lease), attempts=_table.c.attempts + 1))
    return done.rowcount == 1


def delivered(conn: Connection, broadcast_id: str, now: datetime, outcome: dict[str, Any]) -> None:
    conn.execute(update(_table).where(and_(_table.c.id == broadcast_id, _table.c.delivered_at.is_(None)))
                 .values(delivered_at=utc(now), lease_until=None, outcome=outcome))


def take_target(conn: Connection, broadcast_id: str, target: str, run_id: str, now: datetime) -> bool:
    """Record that the broadcast reaches ``target`` in the caller's transaction; False if it was reached before."""
    insert_ = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    result = conn.execute(insert_(_deliveries).values(broadcast_id=broadcast_id, target=target, run_id=run_id,
                                                      at=utc(now))
                          .on_conflict_do_nothing().returning(_deliveries.c.run_id))
    return result.first() is not None


def reached(conn: Connection, broadcast_id: str) -> dict[str, str]:
    """Each target the broadcast reached before: its run."""
    return {row.target: row.run_id for row in conn.execute(
        select(_deliveries.c.target, _deliveries.c.run_id).where(_deliveries.c.broadcast_id == broadcast_id))}


def listing(conn: Connection, *, pending_only: bool = True, limit: int = 100) -> list[Broadcast]:
    query = select(_table).order_by(_table.c.thrown_at.desc(), _table.c.id).limit(limit)
    if pending_only:
        query = query.where(_table.c.delivered_at.is_(None))
    return [_row(row) for row in conn.execute(query)]


def pending_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(_table)
                            .where(_table.c.delivered_at.is_(None))).scalar() or 0)


def created(conn: Connection, run_ids: list[str]) -> dict[str, datetime]:
    """When each of ``run_ids`` was created."""
    from tiergate.store.tables import Run

    runs = Run.__table__  # type: ignore[attr-defined]
    found: dict[str, datetime] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start:start + 500]
        found.update({row.id: utc(row.created_at) for row in conn.execute(
            select(runs.c.id, runs.c.created_at).where(runs.c.id.in_(chunk)))})
    return found


def delivered_before(conn: Connection, cutoff: datetime, limit: int = 500) -> list[str]:
    """Broadcasts delivered before ``cutoff`` (oldest first): no deliverer can still be at work on them."""
    return list(conn.execute(select(_table.c.id).where(_table.c.delivered_at.is_not(None),
                                                       _table.c.delivered_at < utc(cutoff))
                             .order_by(_table.c.delivered_at).limit(limit)).scalars())


def forget(conn: Connection, broadcast_ids: list[str]) -> None:
    """Delete these broadcasts and their delivery keys."""
    conn.execute(_deliveries.delete().where(_deliveries.c.broadcast_id.in_(broadcast_ids)))
    conn.execute(_table.delete().where(_table.c.id.in_(broadcast_ids)))


def process_of(conn: Connection, run_id: str) -> str | None:
    from tiergate.store.tables import Run

    runs = Run.__table__  # type: ignore[attr-defined]
    return conn.execute(select(runs.c.process_id).where(runs.c.id == run_id)).scalar()
