"""Queries about runs: how many, how they ended, how long they took, which needed intervention."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, null, select, union_all

from tiergate.metrics.deviations import off_path_predicate
from tiergate.store.credentials import in_use_since
from tiergate.metrics.sql import (Completions, Ended, Key, Outcomes, QueryBase, StepKey, _log, is_event,
                                  median_and_p90, whole_ms)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000


class RunQueries(QueryBase):
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
        """Per (process, tier): time from ``started`` to ``completed`` of the completed runs, in
        whole milliseconds (``sql.whole_ms``, as the log summary keeps them).

        PostgreSQL computes the median and p90 itself; SQLite, which has no percentile
        function, sends each run's whole milliseconds (a few bytes a run) to be sorted here.
        """
        c, s = _log.alias("c"), _log.alias("s")
        ms = whole_ms(self.dialect, c.c.at, s.c.at)
        if self.dialect == "sqlite":
            columns: list[Any] = [func.group_concat(ms)]
        else:
            limit_ms = case({p: sec * 1000 for p, sec in self.expected_seconds.items()}, value=c.c.process_id,
                            else_=None)
            columns = [func.count(), func.sum(ms), func.percentile_cont(0.5).within_group(cast(ms, Float)),
                       func.percentile_disc(0.9).within_group(ms), func.sum(case((ms > limit_ms, 1), else_=0))]
        query = (select(c.c.process_id, c.c.tier, func.sum(self.stale(s)), *columns)
                 .select_from(c.join(s, and_(is_event(s, "started"), self.same_run(s, c))))
                 .where(is_event(c, "completed"), *self.started_in_scope(s))
                 .group_by(c.c.process_id, c.c.tier))
        if self.scope.process is not None:
            query = query.where(c.c.process_id == self.scope.process)
        out: dict[Key, Completions] = {}
        for process, tier, stale, *values in self.conn.execute(query):
            if self.dialect == "sqlite":
                # Whole milliseconds, sorted here; seconds only for the answer's few numbers.
                times = sorted(map(int, values[0].split(",")))
                limit = self.expected_seconds.get(process)
                median, p90 = median_and_p90(len(times), {n + 1: v for n, v in enumerate(times)})
                over = 0 if limit is None else len(times) - bisect.bisect_right(times, limit * 1000)
                out[(process, tier)] = Completions(len(times), sum(times) / 1000, _seconds(median), _seconds(p90),
                                                   over, int(stale or 0))
            else:
                count, total_ms, median, p90, over_expected = values
                out[(process, tier)] = Completions(count, int(total_ms) / 1000, _seconds(float(median)),
                                                   _seconds(float(p90)), int(over_expected or 0), int(stale or 0))
        return out

    def ended(self) -> list[Ended]:
        """Every ``cancelled`` or ``failed`` entry of a run in scope, with facts about its run."""
        x, s, c = _log.alias("x"), _log.alias("s"), _log.alias("c")
        # LEFT JOINs keep SQLite from reading all `started` entries first: the few cancelled and
        # failed entries drive the lookups. Runs whose start is out of scope get no `s` row.
        # One arm per event, so that each is read through the partial index of run events.
        query = union_all(*(select(x.c.run_id, x.c.process_id, x.c.tier, x.c.event, x.c.actor_kind, s.c.actor_kind,
                                   self.stale(s), c.c.run_id)
                            .select_from(x.outerjoin(s, and_(self.same_run(s, x), *self.started_in_scope(s)))
                                         .outerjoin(c, and_(is_event(c, "completed"), self.same_run(c, x))))
                            .where(is_event(x, event)) for event in ("cancelled", "failed")))
        return [Ended(run_id, process, tier, event, kind, starter, bool(stale), done is not None)
                for run_id, process, tier, event, kind, starter, stale, done in self.conn.execute(query)
                if starter is not None]

    def outcomes(self) -> dict[Key, Outcomes]:
        """Per (process, tier): cancelled and failed runs, from ``ended``; remembers which runs a
        person cancelled, for ``human_intervened_runs``."""
        runs: dict[str, list[Ended]] = defaultdict(list)
        for entry in self.ended():
            runs[entry.run_id].append(entry)
        out: dict[Key, Outcomes] = defaultdict(Outcomes)
        self._human_cancels: dict[Key, set[str]] = defaultdict(set)
        for run_id, entries in runs.items():
            first = entries[0]
            key = (first.process, first.tier)
            events = {e.event for e in entries}
            if "cancelled" in events:
                out[key].cancelled += 1
                if any(e.event == "cancelled" and e.actor_kind == "human" for e in entries) \
                        and first.started_by_kind == "agent":
                    out[key].human_cancels += 1
                    self._human_cancels[key].add(run_id)
            elif first.completed:
                continue  # failed, then retried to completion: counted as completed
            else:
                out[key].failed += 1
            if first.stale and not first.completed:
                out[key].stale_unfinished += 1
        return out

    def human_intervened_runs(self) -> dict[Key, int]:
        """Per (process, tier): runs with a takeover or a person's cancel of an agent's run.

        Reads what ``outcomes`` and ``failed_gates`` found, so it is asked after them.
        """
        keys = set(self._human_cancels) | set(self._takeover_runs)
        return {key: len(self._human_cancels.get(key, set()) | self._takeover_runs.get(key, set())) for key in keys}

    # --- deviations and interventions ----------------------------------------------------

    def flagged_runs(self) -> dict[Key, dict[str, int]]:
        """Per (process, tier): runs with a deviation, and completed runs that needed intervention.

        A run is flagged by any deviation entry, or by a ``failed`` entry (a failure retried).
        """
        e1, e2, e4 = _log.alias("e1"), _log.alias("e2"), _log.alias("e4")
        arms = [
            *(select(e1.c.run_id, e1.c.process_id, e1.c.tier, literal(1).label("deviation"))
              .where(is_event(e1, event), *self.in_scope(e1)) for event in ("refused", "gate_failed", "escalated")),
            select(e2.c.run_id, e2.c.process_id, e2.c.tier, literal(1).label("deviation"))
            .where(is_event(e2, "step_skipped"), e2.c.actor_kind != "system", *self.in_scope(e2)),
            select(_log.c.run_id, _log.c.process_id, _log.c.tier, literal(1).label("deviation"))
            .where(off_path_predicate(self.dialect), *self.in_scope(_log)),
            select(e4.c.run_id, e4.c.process_id, e4.c.tier, literal(0).label("deviation"))
            .where(is_event(e4, "failed"), *self.in_scope(e4)),
        ]
        since = in_use_since(self.conn)
        if since is not None:
            e5 = _log.alias("e5")
            arms.append(select(e5.c.run_id, e5.c.process_id, e5.c.tier, literal(1).label("deviation"))
                        .where(*self.direct_door_terms(e5, since), *self.in_scope(e5)))
        entries = union_all(*arms).subquery("flag_entries")
        flagged = (select(entries.c.run_id, entries.c.process_id, entries.c.tier,
                          func.max(entries.c.deviation).label("deviated"))
                   .group_by(entries.c.run_id, entries.c.process_id, entries.c.tier).subquery("flagged"))
        c = _log.alias("c")
        query = (select(flagged.c.process_id, flagged.c.tier, func.sum(flagged.c.deviated), func.count(c.c.run_id))
                 .select_from(flagged.outerjoin(c, and_(is_event(c, "completed"), self.same_run(c, flagged))))
                 .group_by(flagged.c.process_id, flagged.c.tier))
        return {(p, t): {"runs_with_deviation": int(dev or 0), "intervened": int(done or 0)}
                for p, t, dev, done in self.conn.execute(query)}

    def failed_gates(self) -> dict[StepKey, dict[str, int]]:
        """Steps where an agent's gate check failed, and who completed them afterwards.

        Per (process, tier, step): ``failed_first`` (runs where an agent failed the step's
        gate), ``agent_done_after_failure`` (of those, runs an agent then completed it in) and
        ``takeovers`` (runs a person then completed it in; remembered for ``human_intervened_runs``).
        """
        a = _log.alias("a")
        pairs = (select(a.c.process_id, a.c.tier, a.c.run_id, a.c.step)
                 .where(is_event(a, "gate_failed"), a.c.actor_kind == "agent", a.c.step.is_not(None),
                        *self.in_scope(a))
                 .group_by(a.c.process_id, a.c.tier, a.c.run_id, a.c.step).subquery("agent_failed"))
        d = _log.alias("d")
        # By run id alone: the run's entries (its log chain's index), not the step's completions in
        # every run (the completions index, which the process and tier would select).
        finished = and_(is_event(d, "step_completed"), d.c.run_id == pairs.c.run_id, d.c.step == pairs.c.step)
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
                                                int(agent_done or 0), "takeovers": 0}
            else:
                taken.append((run_id, process, tier, step))
        self._takeover_runs: dict[Key, set[str]] = defaultdict(set)
        for run_id, process, tier, step in taken:
            steps[(process, tier, step)]["takeovers"] += 1
            self._takeover_runs[(process, tier)].add(run_id)
        return steps
