"""Tier 1 timers: when each waiting run is next due.

Revision ID: 0004
Revises: 0003

- ``runs.due_at``: the earliest due time of the run's waiting timers (NULL when none waits),
  written with the run's state. ``tiergate worker`` reads only due rows, through
  ``ix_runs_due_at``, and never loads a run that is not due.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_runs_due_at", "runs", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_due_at", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("due_at")
