"""Queries about steps: how often each became ready, was done, skipped, refused, and how long it took."""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import and_, func, or_, select, text

from tiergate.metrics.deviations import REFUSAL_GROUPS, off_path_predicate, refused_sql
from tiergate.store.credentials import in_use_since
from tiergate.metrics.sql import (GroupKey, Key, QueryBase, StepCounts, StepKey, _log, is_event, median_and_p90,
                                  p90_rank)


class StepQueries(QueryBase):
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
                ready = (select(e.c.process_id, e.c.tier, e.c.step, func.count()).where(is_event(e, event),
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
            query = (select(*columns).where(is_event(e, event), *self.in_scope(e))
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

    def direct_door(self) -> dict[StepKey, int]:
        """Steps done through the ``direct`` door once a server was in use, per (process, tier, step)."""
        since = in_use_since(self.conn)
        if since is None:
            return {}
        query = (select(_log.c.process_id, _log.c.tier, _log.c.step, func.count())
                 .where(*self.direct_door_terms(_log, since), *self.in_scope(_log))
                 .group_by(_log.c.process_id, _log.c.tier, _log.c.step))
        return {(p, t, s): n for p, t, s, n in self.conn.execute(query)}

    def step_times(self, groups: dict[GroupKey, int]) -> dict[GroupKey, tuple[int, float | None, float | None]]:
        """Per (process, tier, step, actor kind): completions with a duration, their median and p90 seconds.

        ``groups`` maps each group to its completions (from ``step_counts``). On SQLite each
        rank is read straight off ``ix_log_entries_completed_steps``, which holds a group's
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
                  .where(is_event(e, "step_completed"), e.c.duration_s.is_not(None), *self.in_scope(e))
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
        return self.steps_done_by([run_id for (run_id,) in self.conn.execute(
            select(func.max(c.c.run_id)).where(is_event(c, "completed"), *self.in_scope(c))
            .group_by(c.c.process_id, c.c.tier))])

    def steps_done_by(self, chosen: list[str]) -> dict[Key, list[str]]:
        """The steps each of the ``chosen`` runs completed or skipped, in order, per (process, tier)."""
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
