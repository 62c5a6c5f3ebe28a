"""The outbox of signals thrown inside runs: ``signal_broadcasts`` and ``signal_deliveries``.

Revision ID: 0027
Revises: 0026

- ``signal_broadcasts``: one row per signal a move threw, written in the move's transaction and
  marked delivered once the other runs waiting for it were reached (``tiergate.signals``); a
  worker delivers the rows a crash left pending.
- ``signal_deliveries``: one row per run a broadcast reached (or process it started), written with
  that run's move; its key (broadcast, target) makes each broadcast reach each run once.
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_broadcasts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("signal", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("element", sa.String(255), nullable=True),
        sa.Column("sender", sa.String(160), nullable=False),
        sa.Column("door", sa.String(80), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("thrown_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
    )
    op.create_index("ix_signal_broadcasts_pending", "signal_broadcasts", ["delivered_at", "lease_until"])
    op.create_table(
        "signal_deliveries",
        sa.Column("broadcast_id", sa.String(32), primary_key=True),
        sa.Column("target", sa.String(100), primary_key=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signal_deliveries")
    op.drop_index("ix_signal_broadcasts_pending", table_name="signal_broadcasts")
    op.drop_table("signal_broadcasts")
