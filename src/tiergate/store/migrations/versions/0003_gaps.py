"""Gaps found in the log, and the indexes metrics read the log through.

Revision ID: 0003
Revises: 0002

- ``gaps``: one row per pattern worth a process change, with when it was first and last seen,
  so `tiergate gaps` reports a gap once and then keeps it up to date.
- ``ix_log_entries_event_step`` (event, process_id, tier, step, actor_kind, duration_s): the
  entries of one event counted per step and actor kind as one index range, and a step's
  completions in duration order, so medians are read off the index.
- ``ix_log_entries_event_run`` (event, process_id, tier, run_id, step, actor_kind, at): one run's
  entry of an event (``started``, ``completed``, a step's completion) without reading the table.
  Entries of one run share its process and tier, so a lookup gives all four leading columns.
- ``ix_log_entries_off_path``: a partial index of the entries whose detail marks them off the
  expected path (a handful), so counting them reads no entry's detail.
- ``ix_log_entries_refused_order`` and ``ix_log_entries_refused_actor``: partial indexes of the
  ``refused`` entries whose reason (in the detail) is out of order, or the wrong actor, so
  refusals are counted by kind without reading each entry's detail.
The predicates must stay spelled as ``OFF_PATH_SQL`` and ``refused_sql()`` in
``tiergate.metrics.deviations`` (a test checks): the databases match them by their text.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OFF_PATH_SQL = {
    "sqlite": "json_type(detail, '$.off_path') = 'true'",
    "postgresql": "((detail -> 'off_path')::text) = 'true'",
}
REFUSED_SQL = {
    "order": {
        "sqlite": "json_type(detail, '$.attempt') = 'text' AND json_extract(detail, '$.reason') IN "
                  "('not_ready', 'already_done', 'unknown_step', 'run_not_active')",
        "postgresql": "(detail ->> 'attempt') IS NOT NULL AND (detail ->> 'reason') IN "
                      "('not_ready', 'already_done', 'unknown_step', 'run_not_active')",
    },
    "actor": {
        "sqlite": "json_type(detail, '$.attempt') = 'text' AND json_extract(detail, '$.reason') IN "
                  "('actor_not_allowed', 'same_actor')",
        "postgresql": "(detail ->> 'attempt') IS NOT NULL AND (detail ->> 'reason') IN "
                      "('actor_not_allowed', 'same_actor')",
    },
}


def upgrade() -> None:
    op.create_table(
        "gaps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("process_id", sa.String(64), nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("step", sa.String(128), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("matched_rule", sa.String(128), nullable=True),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("measure", sa.Float, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_seen", sa.Integer, nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key", name="uq_gaps_key"),
    )
    op.create_index("ix_log_entries_event_step", "log_entries",
                    ["event", "process_id", "tier", "step", "actor_kind", "duration_s"])
    op.create_index("ix_log_entries_event_run", "log_entries",
                    ["event", "process_id", "tier", "run_id", "step", "actor_kind", "at"])
    op.create_index("ix_log_entries_off_path", "log_entries", ["process_id", "tier", "step", "run_id"],
                    sqlite_where=sa.text(OFF_PATH_SQL["sqlite"]),
                    postgresql_where=sa.text(OFF_PATH_SQL["postgresql"]))
    for name, predicate in REFUSED_SQL.items():
        op.create_index(f"ix_log_entries_refused_{name}", "log_entries", ["process_id", "tier", "step", "actor_kind"],
                        sqlite_where=sa.text(predicate["sqlite"]), postgresql_where=sa.text(predicate["postgresql"]))

def downgrade() -> None:
    op.drop_index("ix_log_entries_refused_actor", table_name="log_entries")
    op.drop_index("ix_log_entries_refused_order", table_name="log_entries")
    op.drop_index("ix_log_entries_off_path", table_name="log_entries")
    op.drop_index("ix_log_entries_event_run", table_name="log_entries")
    op.drop_index("ix_log_entries_event_step", table_name="log_entries")
    op.drop_table("gaps")
