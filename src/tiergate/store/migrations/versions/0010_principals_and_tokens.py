"""Principals, their tokens, the record of credential changes, claims, and the door of each log entry.

Revision ID: 0010
Revises: 0008

- ``principals``: who may come through the server's doors (``human:alice``, ``agent:bot``).
- ``tokens``: bearer tokens; only the SHA-256 of each secret is stored (``secret_hash``).
- ``credential_events``: append-only, who added or disabled a principal and issued or revoked a
  token, through which door.
- ``claims``: who has claimed (or was assigned) a ready step; deleted when the step is done.
- ``log_entries.door``: the door an entry came through (``direct``, ``token:<id>``,
  ``session:<id>``); NULL for entries written before this revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", sa.String(160), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("principal_id", sa.String(160), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(160), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(160), nullable=True),
        sa.UniqueConstraint("secret_hash", name="uq_tokens_secret_hash"),
    )
    op.create_index("ix_tokens_principal", "tokens", ["principal_id"])
    op.create_table(
        "credential_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("principal_id", sa.String(160), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(160), nullable=False),
        sa.Column("door", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_table(
        "claims",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("step", sa.String(128), primary_key=True),
        sa.Column("claimed_by", sa.String(160), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(160), nullable=True),
    )
    with op.batch_alter_table("log_entries") as batch:
        batch.add_column(sa.Column("door", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log_entries") as batch:
        batch.drop_column("door")
    op.drop_table("claims")
    op.drop_table("credential_events")
    op.drop_index("ix_tokens_principal", table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("principals")
