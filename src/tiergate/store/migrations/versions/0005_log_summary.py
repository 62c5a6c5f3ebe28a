"""The log summary: what the metrics need of the log, folded into a few rows per run and step.

Revision ID: 0005
Revises: 0004

The tables are derived from ``log_entries`` only, by ``tiergate.metrics.summary.fold`` (the one
function that writes them), and can be dropped and refolded at any time
(``tiergate metrics --refold``). A database upgraded to this revision starts with an empty
summary; the first metrics call folds the whole log in.

- ``summary_runs``: a run's start (time, actor kind), completion (time, and time taken), and
  whether it was cancelled (by a person), failed, had a deviation, or needed intervention.
- ``summary_groups``: per process and tier, the runs with a deviation, the completed runs that
  needed intervention, and the newest completed run (whose steps give the funnel's order).
- ``summary_steps``: entries per process, tier, step, event, actor kind and refusal kind, with the
  seconds they recorded and how many were off the expected path.
- ``summary_buckets``: per step (and actor kind) and per process, how many step times and times
  to completion fall into each bucket of a logarithmic scale, so a median or p90 is read with a
  seek instead of a walk (``tiergate.metrics.ranks``).
- ``summary_agent_failures``: the steps of runs where an agent failed the gate, with who completed
  them afterwards.
- ``summary_fold``: how far the log has been read (one row).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "summary_runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("process_id", sa.String(64), nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_by_kind", sa.String(16), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_ms", sa.BigInteger, nullable=True),
        sa.Column("cancelled", sa.Integer, nullable=False),
        sa.Column("cancelled_by_human", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("deviated", sa.Integer, nullable=False),
        sa.Column("flagged", sa.Integer, nullable=False),
        sa.Column("ended", sa.Integer, nullable=False),
    )
    op.create_index("ix_summary_runs_group", "summary_runs", ["process_id", "tier", "at", "completed_ms"])
    op.create_index("ix_summary_runs_completed", "summary_runs", ["process_id", "tier", "completed_ms", "at"])
    op.create_index("ix_summary_runs_ended", "summary_runs", ["ended", "process_id", "tier", "cancelled",
                                                              "cancelled_by_human", "failed", "started_by_kind", "at",
                                                              "completed_at", "run_id"])
    op.create_table(
        "summary_groups",
        sa.Column("process_id", sa.String(64), primary_key=True),
        sa.Column("tier", sa.Integer, primary_key=True),
        sa.Column("runs_with_deviation", sa.Integer, nullable=False),
        sa.Column("intervened", sa.Integer, nullable=False),
        sa.Column("last_completed_run", sa.String(32), nullable=True),
    )
    op.create_table(
        "summary_steps",
        sa.Column("process_id", sa.String(64), primary_key=True),
        sa.Column("tier", sa.Integer, primary_key=True),
        sa.Column("step", sa.String(128), primary_key=True),
        sa.Column("event", sa.String(32), primary_key=True),
        sa.Column("actor_kind", sa.String(16), primary_key=True),
        sa.Column("refusal", sa.String(32), primary_key=True),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("off_path", sa.Integer, nullable=False),
    )
    op.create_table(
        "summary_buckets",
        sa.Column("measure", sa.String(8), primary_key=True),
        sa.Column("process_id", sa.String(64), primary_key=True),
        sa.Column("tier", sa.Integer, primary_key=True),
        sa.Column("step", sa.String(128), primary_key=True),
        sa.Column("actor_kind", sa.String(16), primary_key=True),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
    )
    op.create_table(
        "summary_agent_failures",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("step", sa.String(128), primary_key=True),
        sa.Column("process_id", sa.String(64), nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("finisher", sa.String(16), nullable=True),
    )
    op.create_index("ix_summary_agent_failures_step", "summary_agent_failures",
                    ["process_id", "tier", "step", "finisher"])
    op.create_index("ix_summary_agent_failures_finisher", "summary_agent_failures",
                    ["finisher", "run_id", "process_id", "tier", "step"])
    fold = op.create_table(
        "summary_fold",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("high_water", sa.Integer, nullable=False),
        sa.Column("holes", sa.JSON, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.bulk_insert(fold, [{"id": 1, "high_water": 0, "holes": [], "entries": 0, "updated_at": None}])


def downgrade() -> None:
    op.drop_table("summary_fold")
    for index in ("ix_summary_agent_failures_finisher", "ix_summary_agent_failures_step"):
        op.drop_index(index, table_name="summary_agent_failures")
    op.drop_table("summary_agent_failures")
    op.drop_table("summary_buckets")
    op.drop_table("summary_steps")
    op.drop_table("summary_groups")
    for index in ("ix_summary_runs_ended", "ix_summary_runs_completed", "ix_summary_runs_group"):
        op.drop_index(index, table_name="summary_runs")
    op.drop_table("summary_runs")
