"""Runs started on schedule by timer-cycle start events: ``scheduled_starts``.

Revision ID: 0026
Revises: 0024

- ``scheduled_starts``: one row per run that ``tiergate worker`` started for a due time of a
  process's timer-cycle start event (``tiergate.schedules``). Its key (process, start event, due
  time) makes each due time start one run only, with several workers or after a crash.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_starts",
        sa.Column("process_id", sa.String(64), primary_key=True),
        sa.Column("start_event", sa.String(255), primary_key=True),
        sa.Column("due_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("cycle", sa.String(255), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scheduled_starts")
