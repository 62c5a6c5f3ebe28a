"""BPMN data stores backed by the database: ``data_stores``.

Revision ID: 0024
Revises: 0023

- ``data_stores``: the current value of each data store of a Tier 1 process, keyed by the process
  id and the BPMN ``dataStore`` id, as canonical JSON with its SHA-256 and a version counter that
  every write moves on (``tiergate.datastores``). Each write is also in the execution log
  (``data_store_written``), committed in the same transaction as the move that made it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_stores",
        sa.Column("process_id", sa.String(64), primary_key=True),
        sa.Column("store", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("step", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("data_stores")
