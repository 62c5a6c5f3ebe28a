"""The metrics queries answered from the log summary (``metrics.summary``) instead of the whole log.

``SummaryQueries`` answers the same questions as ``LogQueries``, with the same types, for a
scope without ``--since`` (a scope of whole processes and tiers, which is what the summary
adds up). A run's rows in the summary carry its process and tier, so ``--process`` and
``--tier`` are plain conditions. Two questions still read the log itself, through the indexes of
migration 0003, because they need each completion's duration: the step times' medians and p90s,
and the order of one completed run's steps.
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.sql import ColumnElement

from tiergate.metrics.queries import LogQueries
from tiergate.metrics.sql import Completions, Ended, GroupKey, Key, StepCounts, StepKey, _log
from tiergate.metrics.summary import FAILURES, GROUPS, RUNS, STEPS


def _step(value: str) -> str | None:
    return value or None


class SummaryQueries(LogQueries):
    """``LogQueries`` over the summary tables; the scope must have no ``since``."""

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
        """Runs are their ``started`` entries, as in the log; the stale ones a range of the runs' index each."""
        query = (select(STEPS.c.process_id, STEPS.c.tier, STEPS.c.actor_kind, func.sum(STEPS.c.entries))
                 .where(STEPS.c.event == "started", *self.filters(STEPS))
                 .group_by(STEPS.c.process_id, STEPS.c.tier, STEPS.c.actor_kind))
        out: dict[Key, dict[str, int]] = {}
        for process, tier, kind, runs in self.conn.execute(query):
            counts = out.setdefault((process, tier), {"runs": 0, "agent_runs": 0, "stale": 0})
            counts["runs"] += int(runs)
            if kind == "agent":
                counts["agent_runs"] += int(runs)
        stale = (select(func.count()).where(RUNS.c.process_id == bindparam("p"), RUNS.c.tier == bindparam("t"),
                                            RUNS.c.at < bindparam("before")))
        for (process, tier), counts in out.items():
            before = self.stale_before.get((process, tier))
            if before is not None:
                counts["stale"] = int(self.conn.execute(stale, {"p": process, "t": tier, "before": before}).scalar_one())
        return out

    def completions(self) -> dict[Key, Completions]:
        query = self.time_to_complete(RUNS.c.completed_ms, RUNS).where(RUNS.c.completed_ms.is_not(None),
                                                                       *self.filters(RUNS))
        return self.completion_stats(query)

    def ended(self) -> list[Ended]:
        """One ``Ended`` per way a run ended: cancelled (by a person, if one did) and failed."""
        query = (select(RUNS.c.run_id, RUNS.c.process_id, RUNS.c.tier, RUNS.c.cancelled, RUNS.c.cancelled_by_human,
                        RUNS.c.failed, RUNS.c.started_by_kind, self.stale(RUNS), RUNS.c.completed_at.is_not(None))
                 .where(RUNS.c.ended == 1, *self._started()))
        out = []
        for run_id, process, tier, cancelled, by_human, failed, starter, stale, completed in self.conn.execute(query):
            if cancelled:
                out.append(Ended(run_id, process, tier, "cancelled", "human" if by_human else "agent", starter,
                                 bool(stale), bool(completed)))
            if failed:
                out.append(Ended(run_id, process, tier, "failed", "system", starter, bool(stale), bool(completed)))
        return out

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

    def failed_gates(self) -> tuple[dict[StepKey, dict[str, int]], list[tuple[str, str, int, str]]]:
        query = (select(FAILURES.c.process_id, FAILURES.c.tier, FAILURES.c.step, func.count(),
                        func.sum(case((FAILURES.c.finisher == "agent", 1), else_=0)))
                 .where(*self.filters(FAILURES)).group_by(FAILURES.c.process_id, FAILURES.c.tier, FAILURES.c.step))
        steps = {(p, t, s): {"failed_first": int(n), "agent_done_after_failure": int(done or 0)}
                 for p, t, s, n, done in self.conn.execute(query)}
        taken = (select(FAILURES.c.run_id, FAILURES.c.process_id, FAILURES.c.tier, FAILURES.c.step)
                 .where(FAILURES.c.finisher == "human", *self.filters(FAILURES)))
        return steps, [(run_id, p, t, s) for run_id, p, t, s in self.conn.execute(taken)]

    def step_order(self) -> dict[Key, list[str]]:
        query = select(GROUPS.c.last_completed_run).where(GROUPS.c.last_completed_run.is_not(None),
                                                          *self.filters(GROUPS))
        return self.steps_done_by([run_id for (run_id,) in self.conn.execute(query)])

    def step_times(self, groups: dict[GroupKey, int]) -> dict[GroupKey, tuple[int, float | None, float | None]]:
        if self.dialect == "postgresql":
            e = _log.alias("e")
            query = (select(e.c.process_id, e.c.tier, e.c.step, e.c.actor_kind, *self.time_columns(e))
                     .where(e.c.event == "step_completed", *self.in_scope(e))
                     .group_by(e.c.process_id, e.c.tier, e.c.step, e.c.actor_kind))
            for process, tier, step, kind, *values in self.conn.execute(query):
                self.keep_times((process, tier, step, kind), values)
        return super().step_times(groups)
