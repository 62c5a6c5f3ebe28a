"""Deployments: the home's definition files as deployed, numbered (``tiergate deploy``).

Revision ID: 0011
Revises: 0010

- ``deployments``: one row per deployment: number, when, who, the approval that allowed it,
  the manifest (relative path -> SHA-256), what changed against the one before, and which
  earlier deployment it deploys again (a rollback).
- ``deployment_files``: each file's text once, by its SHA-256.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("approval", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("redeploy_of", sa.Integer(), nullable=True),
    )
    op.create_table(
        "deployment_files",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deployment_files")
    op.drop_table("deployments")
