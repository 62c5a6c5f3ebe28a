"""The database's schema version: Alembic's migrations, and the check every start makes against them.

The schema half of ``tiergate.store.db.Database``, which inherits it (``self`` is the Database).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ContextManager

from sqlalchemy import Connection, inspect, text

from tiergate.errors import SchemaOutdatedError
from tiergate.store.revision import HEAD_REVISION  # the newest migration: update it there

MIGRATIONS = Path(__file__).parent / "migrations"


class Schema:
    """Migrating the database and checking its schema is current (a part of ``Database``)."""

    if TYPE_CHECKING:
        from sqlalchemy.engine import URL

        url: URL

        @property
        def is_sqlite(self) -> bool: ...

        def _connect(self) -> ContextManager[Connection]: ...

    def alembic_config(self):  # type: ignore[no-untyped-def]
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.render_as_string(hide_password=False).replace("%", "%%"))
        return config

    head_revision = HEAD_REVISION

    def current_revision(self) -> str | None:
        with self._connect() as conn:
            return self._revision(conn)

    @staticmethod
    def _revision(conn: Connection) -> str | None:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def has_tables(self) -> bool:
        with self._connect() as conn:
            return bool(inspect(conn).get_table_names())

    def upgrade(self) -> tuple[str | None, str]:
        """Apply every pending migration. Returns (revision before, revision after)."""
        from alembic import command

        config = self.alembic_config()
        with self._connect() as conn:
            # One write transaction under a lock (BEGIN IMMEDIATE on SQLite, an advisory lock on
            # PostgreSQL): processes migrating at the same moment queue, the later ones find it done.
            conn = conn.execution_options(tiergate_write=True)
            with conn.begin():
                if not self.is_sqlite:
                    # PostgreSQL has no database-wide write lock: take tiergate's migration lock.
                    conn.execute(text("SELECT pg_advisory_xact_lock(7142026)"))
                before = self._revision(conn)
                if before != self.head_revision:
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
        return before, self.head_revision

    def ensure_ready(self) -> None:
        """Make sure the schema is current. A new SQLite database initialises itself."""
        current = self.current_revision()
        if current == self.head_revision:
            return
        if current is None and self.is_sqlite and not self.has_tables():
            self.upgrade()
            return
        if current is None:
            raise SchemaOutdatedError(
                f"the database {self.url.render_as_string(hide_password=True)} has no tiergate schema. "
                "Run `tiergate db upgrade` to create it.", details={"current": None, "head": self.head_revision})
        from alembic.script import ScriptDirectory

        script = ScriptDirectory.from_config(self.alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        if current not in known:
            raise SchemaOutdatedError(
                f"the database schema is at revision {current}, which this version of tiergate does not know "
                "(it was written by a newer tiergate). Upgrade tiergate.",
                details={"current": current, "head": self.head_revision})
        raise SchemaOutdatedError(
            f"the database schema is at revision {current}, older than this tiergate's {self.head_revision}. "
            "Run `tiergate db upgrade` to migrate it (back up production databases first).",
            details={"current": current, "head": self.head_revision})
