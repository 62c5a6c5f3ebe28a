"""Attempts refused at a door before they reached a run.

Revision ID: 0020
Revises: 0015

- ``door_refusals``: one bounded row per attempt refused before it reached a run (a message that
  cannot be read, start data refused for its shape, a run that does not exist): the door, the
  credential and actor when known, the attempt, the error code and problem, and the content's
  sha256 and size, never the content (``tiergate.doorlog``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "door_refusals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("door", sa.String(16), nullable=False),
        sa.Column("credential", sa.String(80), nullable=True),
        sa.Column("actor", sa.String(128), nullable=True),
        sa.Column("attempt", sa.String(32), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("problem", sa.String(32), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_door_refusals_at", "door_refusals", ["at"])


def downgrade() -> None:
    op.drop_index("ix_door_refusals_at", table_name="door_refusals")
    op.drop_table("door_refusals")
