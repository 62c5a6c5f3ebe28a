"""Database commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from tiergate.cli.output import common_options, run_command

if TYPE_CHECKING:
    from tiergate.engine import Engine


@click.group()
def db() -> None:
    """Database schema management (Alembic migrations)."""


@db.command("upgrade")
@common_options
@run_command(lambda out, data: out.print(
    f"database at revision {data['after']}" + (" (already current)" if data["before"] == data["after"]
                                               else f" (was {data['before'] or 'empty'})")))
def upgrade(engine: Engine) -> dict[str, Any]:
    """Apply pending migrations to the configured database (TIERGATE_DATABASE_URL or the home's SQLite)."""
    database = engine.raw_database()
    try:
        before, after = database.upgrade()
    finally:
        database.dispose()
    return {"before": before, "after": after, "url": database.url.render_as_string(hide_password=True)}
