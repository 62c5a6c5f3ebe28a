"""Drop the two log indexes nothing reads.

Revision ID: 0006
Revises: 0005

``ix_log_entries_process_event`` (process_id, event) and ``ix_log_entries_at`` (at) came with
the log (0002), before any query was written. No query of tiergate reads through them: the
metrics read the summary (0005) and, for ``--since`` or ``--from-log``, the covering indexes
of 0003, which lead with the event; the log is listed by run and sequence or by id. Each index
is one more b-tree page that every step completion writes and commits.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_log_entries_process_event", table_name="log_entries")
    op.drop_index("ix_log_entries_at", table_name="log_entries")


def downgrade() -> None:
    op.create_index("ix_log_entries_at", "log_entries", ["at"])
    op.create_index("ix_log_entries_process_event", "log_entries", ["process_id", "event"])
