"""The SQL behind metrics. Every aggregate over many entries is computed in the database.

The log can hold millions of entries, so nothing here loads every entry into Python. Each
query reads one event (or a few) through an index of migrations 0003 and 0007 and returns aggregates,
a row per process, tier and step, or rows about the few runs that need them (cancelled and
failed runs, steps people took over from agents). docs/performance.md has the figures.

Two partial indexes (migration 0007) carry almost everything:

- ``ix_log_entries_completed_steps`` (event, process_id, tier, step, actor_kind, duration_s), of
  the ``step_completed`` entries: counted per step and actor kind as one index range, with each
  group's durations in order, so a median is read off the index (``LIMIT 1 OFFSET rank``);
- ``ix_log_entries_run_events`` (event, process_id, tier, run_id, step, actor_kind, at), of a
  run's routing, start, end, deviations and decisions (``tables.RUN_EVENTS``): one run's entry
  of an event. Every entry of a run carries the run's process and tier, so going from one entry
  to another of the same run looks up all four leading columns.

Each query names one event per term, written into the SQL (``sql.is_event``): that is how the
databases see that a partial index holds it. ``step_ready`` entries, half the log, are in
neither index (a step's commit writes fewer pages): they are counted through the runs in scope
(``--since``) or by a pass over the log (``--from-log``); the log summary counts them as it folds.

Runs are only joined to themselves where a metric needs two entries of one run: a run's
``started`` with its ``completed`` (time to completion) or ``cancelled``, a run's deviations
with its ``completed`` (clean or not), an agent's failed gate with the step's completion.
Times come back as seconds since 1970 (floats), whatever the backend.
"""

from __future__ import annotations

from tiergate.metrics.run_queries import RunQueries
from tiergate.metrics.sql import (Completions, Ended, GroupKey, Key, StepCounts, StepKey, median_and_p90,
                                  p90_rank)
from tiergate.metrics.step_queries import StepQueries


class LogQueries(RunQueries, StepQueries):
    """Every metrics query, for one scope on one read transaction (see ``sql.QueryBase``)."""


__all__ = ["LogQueries", "Completions", "Ended", "GroupKey", "Key", "StepCounts", "StepKey", "median_and_p90",
           "p90_rank"]
