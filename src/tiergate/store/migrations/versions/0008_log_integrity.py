"""State in the log chain, and the Merkle tree over the whole log.

Revision ID: 0008
Revises: 0007

- ``log_entries.state_hash``: the sha256 of the run's state after the change an entry belongs
  to, hashed into the entry (``tiergate.log.entry_hash``), so ``log verify`` finds an edited
  ``runs.state``. Entries written before this revision have none and hash as they did.
- ``log_tree``: the compact range of the Merkle tree over every entry's hash in id order
  (``tiergate.logtree``). It starts empty; the next fold of the log summary builds it from the
  whole log, in batches.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("log_entries", sa.Column("state_hash", sa.String(64), nullable=True))
    tree = op.create_table(
        "log_tree",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.bulk_insert(tree, [{"id": 1, "size": 0, "last_id": 0, "frontier": [],
                           "root": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                           "updated_at": None}])


def downgrade() -> None:
    op.drop_table("log_tree")
    with op.batch_alter_table("log_entries") as batch:
        batch.drop_column("state_hash")
