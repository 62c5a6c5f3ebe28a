"""Keep the two per-step entries out of the log's wide metrics indexes.

Revision ID: 0007
Revises: 0006

Nearly every log entry is a step's ``step_completed`` or the next step's ``step_ready``. Both
went into ``ix_log_entries_event_step`` and ``ix_log_entries_event_run`` (0003), in four
different places of the two b-trees, so a step's commit wrote four index pages for metrics
alone. The indexes become partial, each holding what its queries read:

- ``ix_log_entries_completed_steps`` (same columns as ``event_step``): ``step_completed``
  entries only, counted per step and actor kind and seeked for step-time ranks;
- ``ix_log_entries_run_events`` (same columns as ``event_run``): a run's routing, start, end,
  deviations and decisions, looked up per run.

The two partial indexes of refusals (0003) get ``event = 'refused'`` first in their predicates
(``+event`` on SQLite, so that the term chooses no index): a database tests every partial
index's predicate on every entry written, and the event alone now answers it for the entries
of a step, without parsing their detail's JSON.

``step_ready`` entries are counted only by ``metrics --since`` and ``--from-log``, through the
runs in scope or a pass over the log; the log summary counts them as it folds. The predicates
are spelled as ``COMPLETED_STEPS_SQL`` and ``RUN_EVENTS_SQL`` in ``tiergate.store.tables`` and
``refused_sql()`` in ``tiergate.metrics.deviations`` (a test checks): SQLite matches them by their
text.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COMPLETED_STEPS_SQL = "event = 'step_completed'"
_REASONS = {"order": "('not_ready', 'already_done', 'unknown_step', 'run_not_active')",
            "actor": "('actor_not_allowed', 'same_actor')"}
REFUSED_SQL = {
    group: {"sqlite": f"+event = 'refused' AND json_type(detail, '$.attempt') = 'text' AND "
                      f"json_extract(detail, '$.reason') IN {reasons}",
            "postgresql": f"event = 'refused' AND (detail ->> 'attempt') IS NOT NULL AND "
                          f"(detail ->> 'reason') IN {reasons}"}
    for group, reasons in _REASONS.items()}
#: As in 0003, to go back to.
OLD_REFUSED_SQL = {
    group: {"sqlite": f"json_type(detail, '$.attempt') = 'text' AND json_extract(detail, '$.reason') IN {reasons}",
            "postgresql": f"(detail ->> 'attempt') IS NOT NULL AND (detail ->> 'reason') IN {reasons}"}
    for group, reasons in _REASONS.items()}
RUN_EVENTS_SQL = ("event = 'routed' OR event = 'started' OR event = 'completed' OR event = 'cancelled' OR "
                  "event = 'failed' OR event = 'refused' OR event = 'gate_failed' OR event = 'escalated' OR "
                  "event = 'step_skipped' OR event = 'decision_evaluated'")


def upgrade() -> None:
    op.drop_index("ix_log_entries_event_step", table_name="log_entries")
    op.drop_index("ix_log_entries_event_run", table_name="log_entries")
    op.create_index("ix_log_entries_completed_steps", "log_entries",
                    ["event", "process_id", "tier", "step", "actor_kind", "duration_s"],
                    sqlite_where=sa.text(COMPLETED_STEPS_SQL), postgresql_where=sa.text(COMPLETED_STEPS_SQL))
    op.create_index("ix_log_entries_run_events", "log_entries",
                    ["event", "process_id", "tier", "run_id", "step", "actor_kind", "at"],
                    sqlite_where=sa.text(RUN_EVENTS_SQL), postgresql_where=sa.text(RUN_EVENTS_SQL))
    _refusal_indexes(REFUSED_SQL)


def _refusal_indexes(predicates: dict[str, dict[str, str]]) -> None:
    for group, predicate in predicates.items():
        op.drop_index(f"ix_log_entries_refused_{group}", table_name="log_entries")
        op.create_index(f"ix_log_entries_refused_{group}", "log_entries", ["process_id", "tier", "step", "actor_kind"],
                        sqlite_where=sa.text(predicate["sqlite"]), postgresql_where=sa.text(predicate["postgresql"]))


def downgrade() -> None:
    _refusal_indexes(OLD_REFUSED_SQL)
    op.drop_index("ix_log_entries_run_events", table_name="log_entries")
    op.drop_index("ix_log_entries_completed_steps", table_name="log_entries")
    op.create_index("ix_log_entries_event_run", "log_entries",
                    ["event", "process_id", "tier", "run_id", "step", "actor_kind", "at"])
    op.create_index("ix_log_entries_event_step", "log_entries",
                    ["event", "process_id", "tier", "step", "actor_kind", "duration_s"])
