"""Count steps done through the ``direct`` door once a server is in use (``direct_door`` deviations).

Revision ID: 0015
Revises: 0010

- ``summary_steps.direct_door``: entries of each summary row that are ``direct_door`` deviations
  (``tiergate.metrics.deviations``).

The summary is emptied so the next fold counts them over the whole log again: it holds nothing
that is not recounted from log entries (``tiergate.metrics.summary``). The Merkle tree is kept.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0010"
branch_labels = None
depends_on = None

_SUMMARY = ("summary_runs", "summary_groups", "summary_steps", "summary_buckets", "summary_agent_failures")


def _refold() -> None:
    for table in _SUMMARY:
        op.execute(sa.text(f"DELETE FROM {table}"))
    op.execute(sa.text("UPDATE summary_fold SET high_water = 0, holes = '[]', entries = 0 WHERE id = 1"))


def upgrade() -> None:
    with op.batch_alter_table("summary_steps") as batch:
        batch.add_column(sa.Column("direct_door", sa.Integer(), nullable=False, server_default="0"))
    _refold()


def downgrade() -> None:
    with op.batch_alter_table("summary_steps") as batch:
        batch.drop_column("direct_door")
    _refold()
