"""A run's state stored in parts: ``run_parts``.

Revision ID: 0023
Revises: 0022

A large Tier 1 task tree is stored a task a row (``tiergate.store.parts``); the run row keeps the
rest of the state and each part's digest. Existing runs are read as they are (a state with no
``stored_parts`` is whole) and are stored in parts from their next change on, which binds the new
state in the log as every change does; nothing is converted here, so every bound state still
hashes as it did.

Downgrading puts each run's parts back into its state (older versions read whole states only).
The log bound such a run's state as it was stored, in parts, so the older ``log verify`` names
those runs ("runs.state was edited") until their next change.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_parts",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("path", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("pos", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )


def _unescape(key: str) -> str:
    return key.replace("~1", "/").replace("~0", "~")


def downgrade() -> None:
    conn = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.String), sa.column("state", sa.JSON))
    ids = [row[0] for row in conn.execute(sa.text("SELECT DISTINCT run_id FROM run_parts"))]
    for run_id in ids:
        text = conn.execute(sa.text("SELECT CAST(state AS TEXT) FROM runs WHERE id = :r"), {"r": run_id}).scalar()
        if text is None:
            continue
        state = json.loads(text)
        listed = state.pop("stored_parts", None) or {}
        rows = conn.execute(sa.text("SELECT path, key, body FROM run_parts WHERE run_id = :r ORDER BY path, pos"),
                            {"r": run_id}).all()
        for path in listed:
            keys = [_unescape(k) for k in path.split("/")[1:]]
            container = state
            for key in keys[:-1]:
                container = container[key]
            container[keys[-1]] = {key: json.loads(body) for p, key, body in rows if p == path}
        conn.execute(runs.update().where(runs.c.id == run_id).values(state=state))
    op.drop_table("run_parts")
