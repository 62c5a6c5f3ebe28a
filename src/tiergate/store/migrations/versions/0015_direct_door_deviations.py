"""``direct_door`` deviations in the log summary, and the webhooks' outbox.

Revision ID: 0015
Revises: 0011

- ``summary_steps.direct_door``: entries of each summary row that are ``direct_door`` deviations
  (``tiergate.metrics.deviations``).
- ``webhook_deliveries``: the webhooks' outbox, one row per (hook, log entry), with its retries.
- ``webhook_scan``: how far the log was read for webhooks. It starts at the newest entry, so
  webhooks configured later are not sent for what happened before.

The summary is emptied so the next fold counts them over the whole log again: it holds nothing
that is not recounted from log entries (``tiergate.metrics.summary``). The Merkle tree is kept.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0011"
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
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.UniqueConstraint("hook", "entry_id", name="uq_webhook_deliveries_hook_entry"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_at"])
    scan = op.create_table(
        "webhook_scan",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("high_water", sa.BigInteger(), nullable=False),
        sa.Column("holes", sa.JSON(), nullable=False),
    )
    newest = op.get_bind().execute(sa.text("SELECT coalesce(max(id), 0) FROM log_entries")).scalar() or 0
    op.bulk_insert(scan, [{"id": 1, "high_water": int(newest), "holes": []}])


def downgrade() -> None:
    op.drop_table("webhook_scan")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("summary_steps") as batch:
        batch.drop_column("direct_door")
    _refold()
