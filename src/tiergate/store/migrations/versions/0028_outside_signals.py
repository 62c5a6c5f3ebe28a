"""Signals sent from outside go through the outbox too: ``signal_broadcasts.run_id`` may be empty
and the broadcast keeps the data it brings.

Revision ID: 0028
Revises: 0027

- ``signal_broadcasts.run_id``: NULL for a signal sent from outside (``tiergate signal``,
  ``POST /api/signals``, MCP ``send_signal``); the throwing run for a signal thrown inside one.
- ``signal_broadcasts.data``: the fields a signal sent from outside brings into each catch (NULL
  for a thrown signal, which brings none), so that a worker delivering it after a crash delivers
  the same signal.
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signal_broadcasts") as batch:
        batch.alter_column("run_id", existing_type=sa.String(32), nullable=True)
        batch.add_column(sa.Column("data", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM signal_deliveries WHERE broadcast_id IN "
               "(SELECT id FROM signal_broadcasts WHERE run_id IS NULL)")
    op.execute("DELETE FROM signal_broadcasts WHERE run_id IS NULL")
    with op.batch_alter_table("signal_broadcasts") as batch:
        batch.drop_column("data")
        batch.alter_column("run_id", existing_type=sa.String(32), nullable=False)
