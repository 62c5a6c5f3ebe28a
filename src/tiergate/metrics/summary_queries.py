"""The metrics queries answered from the log summary (``metrics.summary``) instead of the whole log.

``SummaryQueries`` answers the same questions as ``LogQueries``, with the same types, for a
scope without ``--since`` (a scope of whole processes and tiers, which is what the summary
adds up). A run's rows in the summary carry its process and tier, so ``--process`` and
``--tier`` are plain conditions. Two questions still touch the log, through its indexes: the
value of each step-time rank (a seek into ``ix_log_entries_completed_steps``, where the summary's
buckets say to start; ``tiergate.metrics.ranks``), and the order of one completed run's steps.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

from sqlalchemy import case, func, select, union
from sqlalchemy.sql import ColumnElement

from tiergate.metrics import ranks
from tiergate.metrics.queries import LogQueries
from tiergate.metrics.sql import Completions, GroupKey, Key, Outcomes, StepCounts, StepKey, median_and_p90
from tiergate.metrics.summary import BUCKETS, FAILURES, GROUPS, RUNS, STEPS
from tiergate.store.db import bind_time


def _step(value: str) -> str | None:
    return value or None


def _ms_at_least(bound: float) -> int:
    """The smallest whole millisecond at or above ``bound``: an integer, so PostgreSQL compares it
    with the bigint column through the index instead of turning every value into a float."""
    return -(2 ** 62) if bound == float("-inf") else 2 ** 62 if bound == float("inf") else math.ceil(bound)


#: One seek: the value at an offset from a bucket's lower bound, in the index holding the group in order.
_STEP_SEEK = ("SELECT duration_s FROM log_entries WHERE event = 'step_completed' AND process_id = ? AND tier = ? "
              "AND step = ? AND actor_kind = ? AND duration_s >= ? ORDER BY duration_s LIMIT 1 OFFSET ?")
_RUN_SEEK = ("SELECT completed_ms FROM summary_runs WHERE process_id = ? AND tier = ? AND completed_ms >= ? "
             "ORDER BY completed_ms LIMIT 1 OFFSET ?")
_ARMS_PER_STATEMENT = 100


class SummaryQueries(LogQueries):
    """``LogQueries`` over the summary tables; the scope must have no ``since``."""

    maps_the_file = False  # a few thousand small rows and index seeks

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.scope.since is not None:
            raise ValueError("the summary adds up whole processes and tiers; count the log for a --since scope")

    def filters(self, table: Any) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.scope.process is not None:
            conditions.append(table.c.process_id == self.scope.process)
        if self.scope.tier is not None:
            conditions.append(table.c.tier == self.scope.tier)
        return conditions

    def _started(self) -> list[ColumnElement[bool]]:
        return [RUNS.c.at.is_not(None), *self.filters(RUNS)]

    # --- runs ----------------------------------------------------------------------------

    def run_counts(self) -> dict[Key, dict[str, int]]:
        """Runs are their ``started`` entries, as in the log."""
        query = (select(STEPS.c.process_id, STEPS.c.tier, STEPS.c.actor_kind, func.sum(STEPS.c.entries))
                 .where(STEPS.c.event == "started", *self.filters(STEPS))
                 .group_by(STEPS.c.process_id, STEPS.c.tier, STEPS.c.actor_kind))
        out: dict[Key, dict[str, int]] = {}
        for process, tier, kind, runs in self.conn.execute(query):
            counts = out.setdefault((process, tier), {"runs": 0, "agent_runs": 0, "stale": 0})
            counts["runs"] += int(runs)
            if kind == "agent":
                counts["agent_runs"] += int(runs)
        recent = self._recent(list(out))
        for key, counts in out.items():
            counts["stale"] = counts["runs"] - recent.get(key, (0, 0))[0]
        return out

    def _recent(self, keys: list[Key]) -> dict[Key, tuple[int, int]]:
        """Per (process, tier): (runs, completed runs) started at or after its abandonment cutoff.

        The recent runs are the few at the end of each group's range of ``ix_summary_runs_group``
        (start order), so counting them and taking them off the totals reads little. Groups with
        no cutoff (not in the catalog) are never abandoned: all their runs count as recent.
        """
        arms: list[tuple[str, tuple[Any, ...]]] = []
        for process, tier in keys:
            before = self.stale_before.get((process, tier))
            recent_only = "" if before is None else " AND at >= ?"
            arms.append(("SELECT ?, ?, count(*), count(completed_ms) FROM summary_runs WHERE process_id = ? AND "
                         f"tier = ? AND at IS NOT NULL{recent_only}",
                         (process, tier, process, tier) + (() if before is None else (bind_time(self.dialect, before),))))
        return {(process, int(tier)): (int(runs), int(completed))
                for process, tier, runs, completed in self._union_all(arms)}

    def completions(self) -> dict[Key, Completions]:
        """Times to completion from the run buckets: counts and sums added up, ranks read by seeking."""
        out: dict[Key, Completions] = {}
        groups = self._located("run")
        recent = self._recent([(process, tier) for process, tier, _s, _k in groups])
        values = self._seek(_RUN_SEEK, [(process, tier, _ms_at_least(ranks.lower_bound(bucket, ranks.BOUNDS_MS)), skip)
                                        for (process, tier, _s, _k), (_n, _t, located, _c) in groups.items()
                                        for bucket, skip in located.values()])
        for (process, tier, _step, _kind), (n, total_ms, located, counts) in groups.items():
            at_rank = {r: next(values) for r in located}
            median, p90 = median_and_p90(n, at_rank)
            limit = self.expected_seconds.get(process)
            over = 0 if limit is None else self._over(process, tier, counts, limit * 1000)
            completed_recent = recent.get((process, tier), (0, 0))[1]
            out[(process, tier)] = Completions(n, round(total_ms) / 1000, median / 1000 if median is not None else None,
                                               p90 / 1000 if p90 is not None else None, over, n - completed_recent)
        return out

    def outcomes(self) -> dict[Key, Outcomes]:
        """Counted over the few cancelled and failed runs (``ix_summary_runs_ended`` covers them)."""
        unfinished = RUNS.c.completed_at.is_(None)
        query = (select(RUNS.c.process_id, RUNS.c.tier, func.sum(RUNS.c.cancelled),
                        func.sum(case((RUNS.c.cancelled_by_human == 1, case((RUNS.c.started_by_kind == "agent", 1),
                                                                           else_=0)), else_=0)),
                        func.sum(case(((RUNS.c.cancelled == 0) & unfinished, 1), else_=0)),
                        func.sum(case((unfinished, self.stale(RUNS)), else_=0)))
                 .where(RUNS.c.ended == 1, *self._started()).group_by(RUNS.c.process_id, RUNS.c.tier))
        return {(p, t): Outcomes(int(cancelled), int(human), int(failed), int(stale))
                for p, t, cancelled, human, failed, stale in self.conn.execute(query)}

    def human_intervened_runs(self) -> dict[Key, int]:
        """Runs with a takeover, or an agent's run a person cancelled, counted once each."""
        taken = select(FAILURES.c.run_id, FAILURES.c.process_id, FAILURES.c.tier).where(
            FAILURES.c.finisher == "human", *self.filters(FAILURES))
        cancels = select(RUNS.c.run_id, RUNS.c.process_id, RUNS.c.tier).where(
            RUNS.c.ended == 1, RUNS.c.cancelled_by_human == 1, RUNS.c.started_by_kind == "agent", *self._started())
        both = union(taken, cancels).subquery("intervened")
        query = select(both.c.process_id, both.c.tier, func.count()).group_by(both.c.process_id, both.c.tier)
        return {(p, t): int(n) for p, t, n in self.conn.execute(query)}

    def flagged_runs(self) -> dict[Key, dict[str, int]]:
        query = select(GROUPS.c.process_id, GROUPS.c.tier, GROUPS.c.runs_with_deviation, GROUPS.c.intervened).where(
            (GROUPS.c.runs_with_deviation > 0) | (GROUPS.c.intervened > 0), *self.filters(GROUPS))
        return {(p, t): {"runs_with_deviation": dev, "intervened": done} for p, t, dev, done in self.conn.execute(query)}

    # --- steps ---------------------------------------------------------------------------

    def step_counts(self, events: Sequence[str]) -> dict[tuple[str, str, int, str | None], StepCounts]:
        query = (select(STEPS.c.event, STEPS.c.process_id, STEPS.c.tier, STEPS.c.step, STEPS.c.actor_kind,
                        func.sum(STEPS.c.entries), func.sum(STEPS.c.seconds))
                 .where(STEPS.c.event.in_(list(events)), *self.filters(STEPS))
                 .group_by(STEPS.c.event, STEPS.c.process_id, STEPS.c.tier, STEPS.c.step, STEPS.c.actor_kind))
        out: dict[tuple[str, str, int, str | None], StepCounts] = {}
        for event, process, tier, step, kind, count, seconds in self.conn.execute(query):
            counts = out.setdefault((event, process, tier, _step(step)), StepCounts())
            if event == "step_ready":
                kind, seconds = "system", 0.0   # only the engine makes steps ready (as LogQueries counts them)
            counts.by_kind[kind] = counts.by_kind.get(kind, 0) + int(count)
            counts.seconds_by_kind[kind] = counts.seconds_by_kind.get(kind, 0.0) + float(seconds or 0.0)
        return out

    def refusals(self) -> dict[tuple[str, str, int, str | None], StepCounts]:
        query = (select(STEPS.c.refusal, STEPS.c.process_id, STEPS.c.tier, STEPS.c.step, STEPS.c.actor_kind,
                        func.sum(STEPS.c.entries))
                 .where(STEPS.c.refusal != "", *self.filters(STEPS))
                 .group_by(STEPS.c.refusal, STEPS.c.process_id, STEPS.c.tier, STEPS.c.step, STEPS.c.actor_kind))
        out: dict[tuple[str, str, int, str | None], StepCounts] = {}
        for kind, process, tier, step, actor_kind, count in self.conn.execute(query):
            out.setdefault((kind, process, tier, _step(step)), StepCounts()).by_kind[actor_kind] = int(count)
        return out

    def off_path(self) -> dict[StepKey, int]:
        query = (select(STEPS.c.process_id, STEPS.c.tier, STEPS.c.step, func.sum(STEPS.c.off_path))
                 .where(STEPS.c.off_path > 0, *self.filters(STEPS))
                 .group_by(STEPS.c.process_id, STEPS.c.tier, STEPS.c.step))
        return {(p, t, _step(s)): int(n) for p, t, s, n in self.conn.execute(query)}

    def direct_door(self) -> dict[StepKey, int]:
        query = (select(STEPS.c.process_id, STEPS.c.tier, STEPS.c.step, func.sum(STEPS.c.direct_door))
                 .where(STEPS.c.direct_door > 0, *self.filters(STEPS))
                 .group_by(STEPS.c.process_id, STEPS.c.tier, STEPS.c.step))
        return {(p, t, _step(s)): int(n) for p, t, s, n in self.conn.execute(query)}

    def failed_gates(self) -> dict[StepKey, dict[str, int]]:
        query = (select(FAILURES.c.process_id, FAILURES.c.tier, FAILURES.c.step, func.count(),
                        func.sum(case((FAILURES.c.finisher == "agent", 1), else_=0)),
                        func.sum(case((FAILURES.c.finisher == "human", 1), else_=0)))
                 .where(*self.filters(FAILURES)).group_by(FAILURES.c.process_id, FAILURES.c.tier, FAILURES.c.step))
        return {(p, t, s): {"failed_first": int(n), "agent_done_after_failure": int(done or 0),
                            "takeovers": int(taken or 0)}
                for p, t, s, n, done, taken in self.conn.execute(query)}

    def step_order(self) -> dict[Key, list[str]]:
        query = select(GROUPS.c.last_completed_run).where(GROUPS.c.last_completed_run.is_not(None),
                                                          *self.filters(GROUPS))
        return self.steps_done_by([run_id for (run_id,) in self.conn.execute(query)])

    def step_times(self, groups: dict[GroupKey, int]) -> dict[GroupKey, tuple[int, float | None, float | None]]:
        """Median and p90 of each group's step times: the step buckets say where, a seek reads the value."""
        located = self._located("step")
        found = {key: located[key] for key in groups if key in located}  # type: ignore[index]
        values = self._seek(_STEP_SEEK, [(process, tier, step, kind, ranks.lower_bound(bucket), skip)
                                         for (process, tier, step, kind), (_n, _t, where, _c) in found.items()
                                         for bucket, skip in where.values()])
        out: dict[GroupKey, tuple[int, float | None, float | None]] = {}
        for key in groups:
            if key not in found:
                out[key] = (0, None, None)
                continue
            n, _total, where, _counts = found[key]
            out[key] = (n, *median_and_p90(n, {r: next(values) for r in where}))
        return out

    # --- reading ranks -------------------------------------------------------------------

    def _located(self, measure: str) -> dict[tuple[str, int, str, str], tuple[int, float, dict[int, tuple[int, int]],
                                                                         list[list[int]]]]:
        """Per group of ``measure``: its count, its sum, where each rank ``median_and_p90`` reads
        lies (bucket, values of the bucket before it), and the counts per bucket."""
        query = (select(BUCKETS.c.process_id, BUCKETS.c.tier, BUCKETS.c.step, BUCKETS.c.actor_kind, BUCKETS.c.entries,
                        BUCKETS.c.total, BUCKETS.c.counts)
                 .where(BUCKETS.c.measure == measure, BUCKETS.c.entries > 0, *self.filters(BUCKETS)))
        return {(process, tier, step, kind): (n, total, ranks.locate(counts, ranks.needed_ranks(n)), counts)
                for process, tier, step, kind, n, total, counts in self.conn.execute(query)}

    def _driver_rows(self, sql: str, params: tuple[Any, ...]) -> Any:
        """A statement run on the DBAPI cursor (``?`` placeholders; its rows): hundreds of tiny
        seeks, or thousands of tiny rows, cost less there than through SQLAlchemy's statement
        and result handling."""
        if self._cursor is None:
            self._cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if self.dialect != "sqlite":
            sql = sql.replace("?", "%s")
        self._cursor.execute(sql, params)
        return self._cursor

    def _driver(self, sql: str, params: tuple[Any, ...]) -> Any:
        """The first row of ``_driver_rows``."""
        return self._driver_rows(sql, params).fetchone()

    _cursor: Any = None

    def _union_all(self, arms: list[tuple[str, tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
        """The rows of many small statements (``(sql, params)``), asked a hundred to a statement
        joined by UNION ALL, so a server is asked once per hundred, not once per statement."""
        for i in range(0, len(arms), _ARMS_PER_STATEMENT):
            chunk = arms[i:i + _ARMS_PER_STATEMENT]
            sql = " UNION ALL ".join(arm for arm, _params in chunk)
            yield from self._driver_rows(sql, tuple(p for _arm, params in chunk for p in params)).fetchall()

    def _seek(self, arm: str, requests: list[tuple[Any, ...]]) -> Iterator[float]:
        """The value each seek of ``requests`` reads (``arm`` filled with its parameters), in order."""
        numbered = sorted(self._union_all([(f"SELECT {n} AS n, ({arm}) AS v", params)
                                           for n, params in enumerate(requests)]))
        return (float(value) for _n, value in numbered)

    def _over(self, process: str, tier: int, counts: list[list[int]], limit_ms: float) -> int:
        """Completed runs that took longer than ``limit_ms``: the buckets above it added up, and a
        count of the part of its own bucket above it."""
        edge = ranks.bucket_of(limit_ms, ranks.BOUNDS_MS)
        (inside,) = self._driver(
            "SELECT count(*) FROM summary_runs WHERE process_id = ? AND tier = ? AND completed_ms > ? "
            "AND completed_ms < ?",
            (process, tier, math.floor(limit_ms), _ms_at_least(ranks.upper_bound(edge, ranks.BOUNDS_MS))))
        return sum(n for bucket, n in counts if bucket > edge) + int(inside)

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
        super().close()
