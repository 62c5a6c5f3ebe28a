"""What every metrics query shares: the scope's conditions, lookups within a run, the result types.

``queries.LogQueries`` puts the queries together; ``run_queries`` and ``step_queries`` hold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, case, cast, func, literal, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from tiergate.log import EVENTS
from tiergate.metrics.deviations import DIRECT_DOOR, DIRECT_DOOR_EVENTS
from tiergate.metrics.scope import Scope
from tiergate.store.tables import LogEntry

_log = LogEntry.__table__  # type: ignore[attr-defined]
Key = tuple[str, int]                        # (process, tier)
StepKey = tuple[str, int, str | None]         # (process, tier, step)
GroupKey = tuple[str, int, str | None, str]   # (process, tier, step, actor kind)


def is_event(entry: Any, event: str) -> ColumnElement[bool]:
    """``entry.event = 'EVENT'``, the name written into the SQL rather than bound.

    The log's metrics indexes are partial (``tiergate.store.tables``): a database uses one only
    when it can see that the query's event is among the index's, and SQLite sees it by reading
    the same term in the query. One event per term: an IN list never matches.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown log event '{event}'")
    return entry.c.event == literal_column(f"'{event}'")


@dataclass
class StepCounts:
    """Entries of one event at one step, by actor kind, with the durations they recorded."""

    by_kind: dict[str, int] = field(default_factory=dict)
    seconds_by_kind: dict[str, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.by_kind.values())

    def of(self, kind: str) -> int:
        return self.by_kind.get(kind, 0)


@dataclass
class Completions:
    """Time to completion of one process's completed runs (seconds), and how many are stale."""

    count: int
    total_seconds: float
    median: float | None
    p90: float | None
    over_expected: int
    stale: int


@dataclass
class Ended:
    """A run in scope with a ``cancelled`` or ``failed`` entry."""

    run_id: str
    process: str
    tier: int
    event: str
    actor_kind: str
    started_by_kind: str
    stale: bool
    completed: bool


@dataclass
class Outcomes:
    """How the runs in scope of one (process, tier) ended, besides completing.

    ``failed`` counts failed runs never retried to completion (nor cancelled);
    ``stale_unfinished``, the cancelled and failed runs among those old enough to be abandoned
    that did not complete (they are not abandoned: their end is known).
    """

    cancelled: int = 0
    human_cancels: int = 0   # runs an agent started and a person cancelled
    failed: int = 0
    stale_unfinished: int = 0


class QueryBase:
    """The metrics queries for one scope, on one read transaction.

    ``stale_before`` maps (process, tier) to the time before which a run of it that is still
    open counts as abandoned; ``expected_minutes`` is the catalog's expected time per process.
    """

    def __init__(self, conn: Connection, scope: Scope, stale_before: dict[Key, datetime],
                 expected_minutes: dict[str, int]):
        self.conn = conn
        self.scope = scope
        self.stale_before = stale_before
        self.expected_seconds = {pid: minutes * 60.0 for pid, minutes in expected_minutes.items()}
        self.dialect = conn.dialect.name
        self._times: dict[GroupKey, tuple[int, float | None, float | None]] = {}
        if self.dialect == "sqlite":
            if self.maps_the_file:
                # Map the file instead of copying each page into this connection's small cache:
                # the index scans below take about half the time. ``close`` turns it off again
                # before the pooled connection serves anything else.
                conn.exec_driver_sql("PRAGMA mmap_size=4294967296")
        else:
            # One snapshot for every query of the answer, so a fold or a step committed meanwhile
            # cannot make two numbers disagree; and room to sort and hash tens of thousands of runs
            # in memory. Both for this transaction only.
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")

    #: Whether the queries scan enough of a SQLite file to be worth mapping it.
    maps_the_file = True

    def close(self) -> None:
        if self.dialect == "sqlite" and self.maps_the_file:
            self.conn.exec_driver_sql("PRAGMA mmap_size=0")

    # --- building blocks ---------------------------------------------------------------

    def in_scope(self, entry: Any, *, since_only: bool = False) -> list[ColumnElement[bool]]:
        """Conditions that keep entries of runs in scope (process and tier are on every entry)."""
        conditions: list[ColumnElement[bool]] = []
        if self.scope.process is not None and not since_only:
            conditions.append(entry.c.process_id == self.scope.process)
        if self.scope.tier is not None and not since_only:
            conditions.append(entry.c.tier == self.scope.tier)
        if self.scope.since is not None:
            s = _log.alias("scope_started")
            # A few recent runs: SQLite looks their entries up by run (the log chain's index). Many:
            # it reads the event's entries through its index and keeps those of runs in scope,
            # which the run id written as an expression (no index matches it) makes it do.
            run_id = entry.c.run_id.concat("") if self._broad_scope else entry.c.run_id
            conditions.append(run_id.in_(
                select(s.c.run_id).where(is_event(s, "started"), s.c.at >= self.scope.since)))
        return conditions

    @cached_property
    def _broad_scope(self) -> bool:
        """Whether ``--since`` keeps more than a third of the runs (SQLite, which has no statistics)."""
        if self.dialect != "sqlite" or self.scope.since is None:
            return False
        s = _log.alias("s")
        total, recent = self.conn.execute(select(func.count(), func.count(case((s.c.at >= self.scope.since, 1))))
                                          .where(is_event(s, "started"))).one()
        return bool(total) and 3 * int(recent) > int(total)

    @staticmethod
    def direct_door_terms(entry: Any, since: datetime) -> list[ColumnElement[bool]]:
        """An entry that is a ``direct_door`` deviation (metrics.deviations.is_direct_door) in SQL."""
        return [entry.c.event.in_(DIRECT_DOOR_EVENTS), entry.c.door == DIRECT_DOOR, entry.c.actor_kind != "system",
                entry.c.at >= since]

    def started_in_scope(self, started: Any) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [is_event(started, "started")]
        if self.scope.process is not None:
            conditions.append(started.c.process_id == self.scope.process)
        if self.scope.tier is not None:
            conditions.append(started.c.tier == self.scope.tier)
        if self.scope.since is not None:
            conditions.append(started.c.at >= self.scope.since)
        return conditions

    @staticmethod
    def same_run(other: Any, entry: Any) -> ColumnElement[bool]:
        """``other`` belongs to the run of ``entry`` (spelled so one index lookup answers it)."""
        return and_(other.c.process_id == entry.c.process_id, other.c.tier == entry.c.tier,
                    other.c.run_id == entry.c.run_id)

    def stale(self, started: Any) -> ColumnElement[int]:
        """1 if the run of this ``started`` entry is old enough to be abandoned if still open."""
        by_tier: dict[int, Any] = {}
        for tier in (1, 2, 3):
            cutoffs = {p: at for (p, t), at in self.stale_before.items() if t == tier}
            if cutoffs:
                by_tier[tier] = case(cutoffs, value=started.c.process_id, else_=None)
        if not by_tier:
            return literal(0)
        cutoff = case(by_tier, value=started.c.tier, else_=None)
        return case((started.c.at < cutoff, 1), else_=0)


def whole_ms(dialect: str, done_at: Any, started_at: Any) -> ColumnElement[int]:
    """Whole milliseconds from ``started_at`` to ``done_at`` (truncated), the same on both backends.

    Time to completion is counted in these, from the log or its summary alike.
    """
    if dialect == "sqlite":
        return cast((func.julianday(done_at) - func.julianday(started_at)) * 86400000.0, Integer)
    return cast(func.trunc((func.extract("epoch", done_at) - func.extract("epoch", started_at)) * 1000), BigInteger)


def p90_rank(n: int) -> int:
    """Nearest rank of the 90th percentile: the smallest rank with at least 90% of values at or below it."""
    return -(-9 * n // 10)


def median_and_p90(n: int, at_rank: dict[int, float]) -> tuple[float | None, float | None]:
    """Median (the mean of the two middle values when ``n`` is even) and p90 (nearest rank)."""
    if n <= 0:
        return None, None
    return (at_rank[(n + 1) // 2] + at_rank[(n + 2) // 2]) / 2, at_rank[p90_rank(n)]
