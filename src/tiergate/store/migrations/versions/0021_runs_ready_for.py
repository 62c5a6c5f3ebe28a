"""``runs.ready_for``: who a run's ready steps are for, so the inbox need not read every active run.

Revision ID: 0021
Revises: 0020

Written with the run's state in the same UPDATE (``tiergate.claims.ready_key``). Runs written
before this revision keep NULL, which the inbox reads as "not known: look at the run itself"
until their next change fills it in.
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("ready_for", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("ready_for")
