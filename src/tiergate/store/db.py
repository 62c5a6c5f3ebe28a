"""Connecting to the database, transactions, and the schema version check.

SQLite (the embedded default) and PostgreSQL run the same code. On SQLite every write
transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock before reading, so two
processes completing the same step are serialised instead of failing half-way with "database
is locked". On PostgreSQL, writers race optimistically on the run's ``version`` column.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from tiergate.errors import DatabaseError, SchemaOutdatedError

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration. Checked on every start without importing Alembic (a test keeps it in
#: step with the migrations folder).
HEAD_REVISION = "0004"


def default_sqlite_url(home: Path) -> str:
    return f"sqlite:///{(home / '.tiergate' / 'tiergate.db').as_posix()}"


class Database:
    """One database, SQLite or PostgreSQL, with tiergate's schema."""

    def __init__(self, url: str):
        try:
            self.url = make_url(url)
        except ArgumentError:
            raise DatabaseError(f"TIERGATE_DATABASE_URL '{url}' is not a database URL. Use "
                                "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB.",
                                code="database_url") from None
        if self.url.get_backend_name() not in ("sqlite", "postgresql"):
            raise DatabaseError(f"database '{self.url.get_backend_name()}' is not supported: tiergate runs on "
                                "SQLite and PostgreSQL.", code="database_url")
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @cached_property
    def engine(self) -> SAEngine:
        if self.is_sqlite:
            engine = create_engine(self.url, connect_args={"timeout": 60}, poolclass=NullPool)

            @event.listens_for(engine, "connect")
            def _configure(dbapi_connection, _record):  # type: ignore[no-untyped-def]
                # Let SQLAlchemy's "begin" event below issue BEGIN, so writes can be IMMEDIATE.
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _begin(connection):  # type: ignore[no-untyped-def]
                mode = connection.get_execution_options().get("tiergate_write", False)
                connection.exec_driver_sql("BEGIN IMMEDIATE" if mode else "BEGIN")

            return engine
        return create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=5)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: commits on success, rolls back on any exception."""
        with self._connect() as conn:
            conn = conn.execution_options(tiergate_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connect() as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise DatabaseError(f"cannot connect to the database {self.url.render_as_string(hide_password=True)}: "
                                f"{exc.orig}. Check TIERGATE_DATABASE_URL and that the server is running.") from None
        with conn:
            yield conn

    # --- schema -----------------------------------------------------------------------

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

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
