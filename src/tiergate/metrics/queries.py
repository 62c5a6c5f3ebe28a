"""The SQL behind metrics. Every aggregate over many entries is computed in the database.

The log can hold millions of entries, so nothing here loads every entry into Python. Each
query reads one event (or a few) through an index of migration 0003 and returns aggregates,
a row per process, tier and step, or rows about the few runs that need them (cancelled and
failed runs, steps people took over from agents). docs/performance.md has the figures.

Two indexes carry almost everything:

- ``ix_log_entries_event_step`` (event, process_id, tier, step, actor_kind, duration_s): the
  entries of one event counted per step and actor kind as one index range, with each group's
  durations in order, so a median is read off the index (``LIMIT 1 OFFSET rank``);
- ``ix_log_entries_event_run`` (event, process_id, tier, run_id, step, actor_kind, at): one
  run's entry of an event. Every entry of a run carries the run's process and tier, so going
  from one entry to another of the same run looks up all four leading columns.

Runs are only joined to themselves where a metric needs two entries of one run: a run's
``started`` with its ``completed`` (time to completion) or ``cancelled``, a run's deviations
with its ``completed`` (clean or not), an agent's failed gate with the step's completion.
Times come back as seconds since 1970 (floats), whatever the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, null, or_, select, text, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from tiergate.metrics.deviations import REFUSAL_GROUPS, off_path_predicate, refused_sql
from tiergate.metrics.scope import Scope
from tiergate.store.tables import LogEntry

_log = LogEntry.__table__  # type: ignore[attr-defined]
Key = tuple[str, int]                        # (process, tier)
StepKey = tuple[str, int, str | None]         # (process, tier, step)
GroupKey = tuple[str, int, str | None, str]   # (process, tier, step, actor kind)


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


class LogQueries:
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
            # Map the file instead of copying each page into this connection's small cache: the
            # index scans below take about half the time. Affects this connection only.
            conn.exec_driver_sql("PRAGMA mmap_size=4294967296")
        else:
            # Room to sort and hash tens of thousands of runs in memory; this transaction only.
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")

    # --- building blocks ---------------------------------------------------------------

    def epoch(self, column: Any) -> ColumnElement[float]:
        """A timestamp column as seconds since 1970."""
        if self.dialect == "sqlite":
            return (func.julianday(column) - 2440587.5) * 86400.0
        return cast(func.extract("epoch", column), Float)

    def in_scope(self, entry: Any, *, since_only: bool = False) -> list[ColumnElement[bool]]:
        """Conditions that keep entries of runs in scope (process and tier are on every entry)."""
        conditions: list[ColumnElement[bool]] = []
        if self.scope.process is not None and not since_only:
            conditions.append(entry.c.process_id == self.scope.process)
        if self.scope.tier is not None and not since_only:
            conditions.append(entry.c.tier == self.scope.tier)
        if self.scope.since is not None:
            s = _log.alias("scope_started")
            conditions.append(entry.c.run_id.in_(
                select(s.c.run_id).where(s.c.event == "started", s.c.at >= self.scope.since)))
        return conditions

    def started_in_scope(self, started: Any) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [started.c.event == "started"]
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

    # --- runs ----------------------------------------------------------------------------

    def run_counts(self) -> dict[Key, dict[str, int]]:
        """Per (process, tier): runs, runs started by agents, and runs old enough to be abandoned."""
        s = _log.alias("s")
        out: dict[Key, dict[str, int]] = {}
        by_kind = (select(s.c.process_id, s.c.tier, s.c.actor_kind, func.count())
                   .where(*self.started_in_scope(s)).group_by(s.c.process_id, s.c.tier, s.c.step, s.c.actor_kind))
        for process, tier, kind, runs in self.conn.execute(by_kind):
            counts = out.setdefault((process, tier), {"runs": 0, "agent_runs": 0, "stale": 0})
            counts["runs"] += runs
            if kind == "agent":
                counts["agent_runs"] += runs
        old = (select(s.c.process_id, s.c.tier, func.sum(self.stale(s)))
               .where(*self.started_in_scope(s)).group_by(s.c.process_id, s.c.tier))
        for process, tier, stale in self.conn.execute(old):
            out[(process, tier)]["stale"] = int(stale or 0)
        return out

    def completions(self) -> dict[Key, Completions]:
        """Per (process, tier): time from ``started`` to ``completed`` of the completed runs.

        PostgreSQL computes the median and p90 itself; SQLite, which has no percentile
        function, sends each run's whole milliseconds (a few bytes a run) to be sorted here.
        """
        c, s = _log.alias("c"), _log.alias("s")
        seconds = self.epoch(c.c.at) - self.epoch(s.c.at)
        if self.dialect == "sqlite":
            # Integers: SQLite turns them into text much faster than floats.
            columns: list[Any] = [func.group_concat(cast((func.julianday(c.c.at) - func.julianday(s.c.at))
                                                         * 86400000.0, Integer))]
        else:
            over = case((seconds > case(self.expected_seconds, value=c.c.process_id, else_=None), 1), else_=0)
            columns = [func.count(), func.sum(seconds), func.percentile_cont(0.5).within_group(seconds),
                       func.percentile_disc(0.9).within_group(seconds), func.sum(over)]
        query = (select(c.c.process_id, c.c.tier, func.sum(self.stale(s)), *columns)
                 .select_from(c.join(s, and_(s.c.event == "started", self.same_run(s, c))))
                 .where(c.c.event == "completed", *self.started_in_scope(s))
                 .group_by(c.c.process_id, c.c.tier))
        if self.scope.process is not None:
            query = query.where(c.c.process_id == self.scope.process)
        out: dict[Key, Completions] = {}
        for process, tier, stale, *values in self.conn.execute(query):
            if self.dialect == "sqlite":
                times = sorted(int(v) / 1000 for v in values[0].split(","))
                limit = self.expected_seconds.get(process)
                median, p90 = median_and_p90(len(times), {n + 1: v for n, v in enumerate(times)})
                out[(process, tier)] = Completions(len(times), sum(times), median, p90,
                                                   sum(1 for v in times if limit is not None and v > limit),
                                                   int(stale or 0))
            else:
                count, total, median, p90, over_expected = values
                out[(process, tier)] = Completions(count, float(total), float(median), float(p90),
                                                   int(over_expected or 0), int(stale or 0))
        return out

    def ended(self) -> list[Ended]:
        """Every ``cancelled`` or ``failed`` entry of a run in scope, with facts about its run."""
        x, s, c = _log.alias("x"), _log.alias("s"), _log.alias("c")
        # LEFT JOINs keep SQLite from reading all `started` entries first: the few cancelled and
        # failed entries drive the lookups. Runs whose start is out of scope get no `s` row.
        query = (select(x.c.run_id, x.c.process_id, x.c.tier, x.c.event, x.c.actor_kind, s.c.actor_kind,
                        self.stale(s), c.c.run_id)
                 .select_from(x.outerjoin(s, and_(self.same_run(s, x), *self.started_in_scope(s)))
                              .outerjoin(c, and_(c.c.event == "completed", self.same_run(c, x))))
                 .where(x.c.event.in_(["cancelled", "failed"])))
        return [Ended(run_id, process, tier, event, kind, starter, bool(stale), done is not None)
                for run_id, process, tier, event, kind, starter, stale, done in self.conn.execute(query)
                if starter is not None]

    # --- steps ---------------------------------------------------------------------------

    def step_counts(self, events: Sequence[str]) -> dict[tuple[str, str, int, str | None], StepCounts]:
        """Per (event, process, tier, step): entries by actor kind, and the seconds they recorded.

        On PostgreSQL the step times' median and p90 come out of the same pass (ordered-set
        aggregates); ``step_times`` then has nothing left to read.
        """
        e = _log.alias("e")
        out: dict[tuple[str, str, int, str | None], StepCounts] = {}
        for event in events:
            if event == "step_ready":
                # Only the engine makes steps ready: a plain count, the cheapest pass over the most
                # frequent event of the log.
                ready = (select(e.c.process_id, e.c.tier, e.c.step, func.count()).where(e.c.event == event,
                                                                                   *self.in_scope(e))
                         .group_by(e.c.process_id, e.c.tier, e.c.step))
                for process, tier, step, count in self.conn.execute(ready):
                    out[(event, process, tier, step)] = StepCounts({"system": count}, {"system": 0.0})
                continue
            columns = [e.c.process_id, e.c.tier, e.c.step, e.c.actor_kind, func.count(), func.sum(e.c.duration_s)]
            timed = event == "step_completed" and self.dialect == "postgresql"
            if timed:
                columns += [func.count(e.c.duration_s), func.percentile_cont(0.5).within_group(e.c.duration_s),
                            func.percentile_disc(0.9).within_group(e.c.duration_s)]
            query = (select(*columns).where(e.c.event == event, *self.in_scope(e))
                     .group_by(e.c.process_id, e.c.tier, e.c.step, e.c.actor_kind))
            for row in self.conn.execute(query):
                process, tier, step, kind, count, total = row[:6]
                counts = out.setdefault((event, process, tier, step), StepCounts())
                counts.by_kind[kind] = count
                counts.seconds_by_kind[kind] = float(total or 0.0)
                if timed:
                    self._times[(process, tier, step, kind)] = (
                        int(row[6]), None if row[7] is None else float(row[7]),
                        None if row[8] is None else float(row[8]))
        return out

    def refusals(self) -> dict[tuple[str, str, int, str | None], StepCounts]:
        """Refusals out of order and by the wrong actor, per (kind, process, tier, step), by actor kind.

        Each kind is counted from its partial index (migration 0003), so no entry's detail is
        read; the predicate is written out as the index's, which is how the databases match it.
        Refusals of other reasons are the step's refusals (``step_counts``) less these.
        """
        out: dict[tuple[str, str, int, str | None], StepCounts] = {}
        for kind in REFUSAL_GROUPS:
            query = (select(_log.c.process_id, _log.c.tier, _log.c.step, _log.c.actor_kind, func.count())
                     .where(text(refused_sql(self.dialect, kind)), *self.in_scope(_log))
                     .group_by(_log.c.process_id, _log.c.tier, _log.c.step, _log.c.actor_kind))
            for process, tier, step, actor_kind, count in self.conn.execute(query):
                out.setdefault((kind, process, tier, step), StepCounts()).by_kind[actor_kind] = count
        return out

    def off_path(self) -> dict[StepKey, int]:
        """Entries marked ``detail.off_path`` (the Tier 1 contract) per (process, tier, step)."""
        query = (select(_log.c.process_id, _log.c.tier, _log.c.step, func.count())
                 .where(off_path_predicate(self.dialect), *self.in_scope(_log))
                 .group_by(_log.c.process_id, _log.c.tier, _log.c.step))
        return {(p, t, s): n for p, t, s, n in self.conn.execute(query)}

    def step_times(self, groups: dict[GroupKey, int]) -> dict[GroupKey, tuple[int, float | None, float | None]]:
        """Per (process, tier, step, actor kind): completions with a duration, their median and p90 seconds.

        ``groups`` maps each group to its completions (from ``step_counts``). On SQLite each
        rank is read straight off ``ix_log_entries_event_step``, which holds a group's
        completions in duration order (``LIMIT 1 OFFSET rank``); with ``--since`` the
        completions in scope are ranked instead.
        """
        if self.dialect != "sqlite":
            return {key: self._times.get(key, (0, None, None)) for key in groups}
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        out: dict[GroupKey, tuple[int, float | None, float | None]] = {}
        if self.scope.since is not None:
            return self._ranked_in_scope(groups)
        for key, count in groups.items():
            process, tier, step, kind = key
            where = ("event = 'step_completed' AND process_id = ? AND tier = ? AND step IS ? AND actor_kind = ?")
            params = (process, tier, step, kind)
            untimed = cursor.execute(f"SELECT count(*) FROM log_entries WHERE {where} AND duration_s IS NULL",
                                     params).fetchone()[0]
            n = count - untimed
            if n <= 0:
                out[key] = (0, None, None)
                continue
            # The median's one or two middle values from the bottom, the p90 from the top: the
            # walk covers about 60% of the group instead of 140%.
            middle = [v for (v,) in cursor.execute(
                f"SELECT duration_s FROM log_entries WHERE {where} AND duration_s IS NOT NULL "
                "ORDER BY duration_s LIMIT ? OFFSET ?", (*params, 2 - n % 2, (n + 1) // 2 - 1))]
            (p90,) = cursor.execute(
                f"SELECT duration_s FROM log_entries WHERE {where} AND duration_s IS NOT NULL "
                "ORDER BY duration_s DESC LIMIT 1 OFFSET ?", (*params, n - p90_rank(n))).fetchone()
            out[key] = (n, sum(middle) / len(middle), float(p90))
        cursor.close()
        return out

    def _ranked_in_scope(self, groups: dict[GroupKey, int]) -> dict[GroupKey, tuple[int, float | None, float | None]]:
        e = _log.alias("e")
        part = (e.c.process_id, e.c.tier, e.c.step, e.c.actor_kind)
        ranked = (select(*part, e.c.duration_s,
                         func.row_number().over(partition_by=part, order_by=e.c.duration_s).label("rn"),
                         func.count().over(partition_by=part).label("n"))
                  .where(e.c.event == "step_completed", e.c.duration_s.is_not(None), *self.in_scope(e))
                  .subquery("ranked"))
        rn, n = ranked.c.rn, ranked.c.n
        query = select(ranked).where(or_(and_(2 * rn >= n, 2 * rn <= n + 2),          # the middle one or two
                                         and_(10 * rn >= 9 * n, 10 * (rn - 1) < 9 * n)))  # the p90's rank
        at_rank: dict[GroupKey, dict[int, float]] = {}
        timed: dict[GroupKey, int] = {}
        for process, tier, step, kind, seconds, rank, count in self.conn.execute(query):
            at_rank.setdefault((process, tier, step, kind), {})[rank] = float(seconds)
            timed[(process, tier, step, kind)] = count
        out: dict[GroupKey, tuple[int, float | None, float | None]] = {}
        for key in groups:
            n_ = timed.get(key, 0)
            out[key] = (n_, *median_and_p90(n_, at_rank.get(key, {})))
        return out

    def step_order(self) -> dict[Key, list[str]]:
        """Steps in the order one completed run of each (process, tier) did them (the greatest run id)."""
        c = _log.alias("c")
        chosen = [run_id for (run_id,) in self.conn.execute(
            select(func.max(c.c.run_id)).where(c.c.event == "completed", *self.in_scope(c))
            .group_by(c.c.process_id, c.c.tier))]
        # The run ids as values, so the lookup goes through the (run_id, seq) index whatever the statistics.
        query = (select(_log.c.process_id, _log.c.tier, _log.c.step)
                 .where(_log.c.run_id.in_(chosen), _log.c.event.in_(["step_completed", "step_skipped"]))
                 .order_by(_log.c.run_id, _log.c.seq))
        order: dict[Key, list[str]] = {}
        for process, tier, step in self.conn.execute(query):
            steps = order.setdefault((process, tier), [])
            if step not in steps:
                steps.append(step)
        return order

    # --- deviations and interventions ----------------------------------------------------

    def flagged_runs(self) -> dict[Key, dict[str, int]]:
        """Per (process, tier): runs with a deviation, and completed runs that needed intervention.

        A run is flagged by any deviation entry, or by a ``failed`` entry (a failure retried).
        """
        e1, e2, e4 = _log.alias("e1"), _log.alias("e2"), _log.alias("e4")
        arms = [
            select(e1.c.run_id, e1.c.process_id, e1.c.tier, literal(1).label("deviation"))
            .where(e1.c.event.in_(["refused", "gate_failed", "escalated"]), *self.in_scope(e1)),
            select(e2.c.run_id, e2.c.process_id, e2.c.tier, literal(1).label("deviation"))
            .where(e2.c.event == "step_skipped", e2.c.actor_kind != "system", *self.in_scope(e2)),
            select(_log.c.run_id, _log.c.process_id, _log.c.tier, literal(1).label("deviation"))
            .where(off_path_predicate(self.dialect), *self.in_scope(_log)),
            select(e4.c.run_id, e4.c.process_id, e4.c.tier, literal(0).label("deviation"))
            .where(e4.c.event == "failed", *self.in_scope(e4)),
        ]
        entries = union_all(*arms).subquery("flag_entries")
        flagged = (select(entries.c.run_id, entries.c.process_id, entries.c.tier,
                          func.max(entries.c.deviation).label("deviated"))
                   .group_by(entries.c.run_id, entries.c.process_id, entries.c.tier).subquery("flagged"))
        c = _log.alias("c")
        query = (select(flagged.c.process_id, flagged.c.tier, func.sum(flagged.c.deviated), func.count(c.c.run_id))
                 .select_from(flagged.outerjoin(c, and_(c.c.event == "completed", self.same_run(c, flagged))))
                 .group_by(flagged.c.process_id, flagged.c.tier))
        return {(p, t): {"runs_with_deviation": int(dev or 0), "intervened": int(done or 0)}
                for p, t, dev, done in self.conn.execute(query)}

    def failed_gates(self) -> tuple[dict[StepKey, dict[str, int]], list[tuple[str, str, int, str]]]:
        """Steps where an agent's gate check failed, and who completed them afterwards.

        Per (process, tier, step): ``failed_first`` (runs where an agent failed the step's
        gate) and ``agent_done_after_failure`` (of those, runs an agent then completed it in);
        and the takeovers: (run, process, tier, step) where a person completed the step.
        """
        a = _log.alias("a")
        pairs = (select(a.c.process_id, a.c.tier, a.c.run_id, a.c.step)
                 .where(a.c.event == "gate_failed", a.c.actor_kind == "agent", a.c.step.is_not(None),
                        *self.in_scope(a))
                 .group_by(a.c.process_id, a.c.tier, a.c.run_id, a.c.step).subquery("agent_failed"))
        d = _log.alias("d")
        finished = and_(d.c.event == "step_completed", self.same_run(d, pairs), d.c.step == pairs.c.step)
        if self.dialect == "sqlite":
            # One index lookup per pair; SQLite would sort the pairs again for a join's GROUP BY.
            finisher = select(func.max(d.c.actor_kind)).where(finished).scalar_subquery()
            judged = select(*pairs.c, finisher.label("finisher")).cte("judged")
        else:
            # PostgreSQL hashes the completions instead of looking each pair up.
            judged = (select(*pairs.c, func.max(d.c.actor_kind).label("finisher"))
                      .select_from(pairs.outerjoin(d, finished))
                      .group_by(*pairs.c).cte("judged"))
        per_step = (select(literal("step").label("level"), judged.c.process_id, judged.c.tier, judged.c.step,
                           null().label("run_id"), func.count().label("failed"),
                           func.sum(case((judged.c.finisher == "agent", 1), else_=0)).label("agent_done"))
                    .group_by(judged.c.process_id, judged.c.tier, judged.c.step))
        takeovers = (select(literal("takeover").label("level"), judged.c.process_id, judged.c.tier, judged.c.step,
                            judged.c.run_id, literal(0).label("failed"), literal(0).label("agent_done"))
                     .where(judged.c.finisher == "human"))
        steps: dict[StepKey, dict[str, int]] = {}
        taken: list[tuple[str, str, int, str]] = []
        for level, process, tier, step, run_id, failed, agent_done in self.conn.execute(
                union_all(per_step, takeovers)):
            if level == "step":
                steps[(process, tier, step)] = {"failed_first": int(failed), "agent_done_after_failure":
                                                int(agent_done or 0)}
            else:
                taken.append((run_id, process, tier, step))
        return steps, taken


def p90_rank(n: int) -> int:
    """Nearest rank of the 90th percentile: the smallest rank with at least 90% of values at or below it."""
    return -(-9 * n // 10)


def median_and_p90(n: int, at_rank: dict[int, float]) -> tuple[float | None, float | None]:
    """Median (the mean of the two middle values when ``n`` is even) and p90 (nearest rank)."""
    if n <= 0:
        return None, None
    return (at_rank[(n + 1) // 2] + at_rank[(n + 2) // 2]) / 2, at_rank[p90_rank(n)]
