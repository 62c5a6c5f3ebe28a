"""Connecting to the database, transactions, and the schema version check.

SQLite (the embedded default) and PostgreSQL run the same code. On SQLite every write
transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock before reading, so two
processes completing the same step are serialised instead of failing half-way with "database
is locked". On PostgreSQL, writers race optimistically on the run's ``version`` column.

Connections are pooled on both. A SQLite connection is opened and configured once (WAL,
``synchronous=FULL``, busy timeout, foreign keys), not per transaction: opening, configuring and
closing one (which checkpoints the WAL) cost more than a step's SQL. A pooled PostgreSQL
connection is checked without a round trip before use (see ``_server_hung_up``).

The hot path (``tiergate.store.runs``, ``tiergate.log``) runs a few fixed statements on the
DBAPI cursor of the transaction's connection, spelled once per dialect (``DriverSQL``),
through ``driver_cursor``: SQLAlchemy's statement and result handling costs more than the
statements themselves on a fast database.
"""

from __future__ import annotations

import os
import select
import weakref
from contextlib import ExitStack, contextmanager
from datetime import datetime
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, ContextManager, Iterator

from sqlalchemy import Connection, create_engine, event, inspect, text
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError

from tiergate import jsontext
from tiergate.errors import ConnectionLostError, DatabaseError, SchemaOutdatedError, TiergateError, UsageError
from tiergate.store.direct import default_sqlite_url  # noqa: F401 - the Engine's default, said once
from tiergate.store.groupcommit import GroupCommit
from tiergate.store.revision import HEAD_REVISION  # the newest migration: update it there
from tiergate.timestamps import read_time  # noqa: F401 - re-exported for the store's readers

MIGRATIONS = Path(__file__).parent / "migrations"


#: Pooled PostgreSQL connections whose server said it is closing them (a FATAL or PANIC message
#: while they were idle). The hang-up that follows may reach the socket a moment later.
_TOLD_GOODBYE: weakref.WeakSet[Any] = weakref.WeakSet()


def _enter_wal(cursor: Any, patience: float = 60.0) -> None:
    """Switch a SQLite database to write-ahead logging, waiting for other processes doing the same.

    On a new file, two processes switching at once can each hold a read lock the other must wait
    out; SQLite then answers "database is locked" at once, without calling the busy handler (it
    would wait forever). Only one of them needs to succeed: the other finds WAL already set.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + patience
    pause = 0.002
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _listen_for_goodbye(dbapi_connection: Any) -> None:
    """Note the server's last words on this connection (see ``_server_hung_up``)."""
    connection = weakref.ref(dbapi_connection)

    def on_notice(diagnostic: Any) -> None:
        severity = diagnostic.severity_nonlocalized or diagnostic.severity
        alive = connection()
        if severity in ("FATAL", "PANIC") and alive is not None:
            _TOLD_GOODBYE.add(alive)

    dbapi_connection.add_notice_handler(on_notice)


def _server_hung_up(dbapi_connection: Any) -> bool:
    """Whether the PostgreSQL server closed this idle connection, found without a round trip.

    An idle connection has nothing to read unless the server sent something unasked: mostly
    its goodbye (a FATAL message, then end of file) on shutdown or when its backend was
    terminated. libpq reads what is there (which copes with TLS records too) and parses it: an
    error on an idle connection goes to the notice handlers, where ``_listen_for_goodbye`` notes
    it, so the connection counts as gone even while the end of file is still on its way.
    Reading the end of file fails, which also counts. Anything else (a notice, a parameter
    change) is read and harmless; a connection that keeps sending is treated as gone, which
    costs only a reconnect.
    """
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    from psycopg import OperationalError as DriverOperationalError
    from psycopg.pq import ConnStatus

    pgconn = dbapi_connection.pgconn
    if not _readable(pgconn.socket):  # nothing sent unasked: the usual case, and the cheap one
        return pgconn.status != ConnStatus.OK
    try:
        for _ in range(8):
            pgconn.consume_input()
            if not _readable(pgconn.socket):
                pgconn.is_busy()  # parses what was read; an error goes to the notice handlers
                return dbapi_connection in _TOLD_GOODBYE or pgconn.status != ConnStatus.OK
    except DriverOperationalError:  # end of file: the server hung up
        return True
    return True


def _readable(socket: int) -> bool:
    if hasattr(select, "poll"):  # no limit on descriptor numbers, unlike select()
        poller = select.poll()
        poller.register(socket, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([socket], [], [], 0)[0])  # Windows: select() takes sockets


class DriverSQL:
    """One hot-path statement spelled for each dialect, written once with placeholders:

    ``{p}`` a parameter, ``{json}`` a JSON parameter (JSON text: ``encode_json``, or the log's
    canonical JSON), ``{float}`` a float parameter that may be NULL in every row (PostgreSQL
    cannot infer its type then).
    """

    _SPELLING = {"sqlite": {"p": "?", "json": "?", "float": "?"},
                 "postgresql": {"p": "%s", "json": "CAST(%s AS JSON)", "float": "CAST(%s AS DOUBLE PRECISION)"}}

    def __init__(self, template: str):
        self.template = template
        self._by_dialect = {name: template.format(**spelling) for name, spelling in self._SPELLING.items()}

    def __call__(self, dialect: str) -> str:
        return self._by_dialect[dialect]


def encode_json(value: Any) -> str:
    """A JSON column's text, spelled as SQLAlchemy's JSON type writes it (json.dumps); the text of a
    ``tiergate.jsontext.Encoded`` inside is reused, not made again. Both engines write every JSON
    column with it (``json_serializer``), so a value already encoded is bound as an ``Encoded``."""
    return jsontext.dumps(value)


# A step binds the same moment several times (the run's update, each log entry).
@lru_cache(maxsize=64)
def bind_time(dialect: str, value: datetime) -> Any:
    """A UTC datetime as a DateTime(timezone=True) column takes it: SQLite stores SQLAlchemy's
    text form (naive, UTC), PostgreSQL a timestamptz."""
    if dialect == "sqlite":
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


@contextmanager
def driver_cursor(conn: Connection) -> Iterator[Any]:
    """A DBAPI cursor in ``conn``'s transaction, for statements from ``DriverSQL``.

    Driver errors come out as SQLAlchemy's, and a lost connection is invalidated so that it
    does not go back to the pool, as with ``conn.execute``.
    """
    dbapi_connection = conn.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as err:
        lost = conn.dialect.is_disconnect(err, dbapi_connection, cursor)  # type: ignore[arg-type]
        if lost:
            conn.invalidate(err)
        raise DBAPIError.instance(None, None, err, conn.dialect.loaded_dbapi.Error, connection_invalidated=lost,
                                  dialect=conn.dialect) from err
    finally:
        if not conn.invalidated:  # invalidating closed the connection, and with it the cursor
            cursor.close()


#: What a failing database or disk means, by SQLSTATE (PostgreSQL) or by the words of SQLite's
#: message: (code, what happened, what to do). ``docs/cli.md`` lists the codes.
_PG_STATES = {
    "53100": "disk_full", "53200": "disk_full", "25006": "database_readonly", "55P03": "database_locked",
    "57P01": "database_error", "57P02": "database_error", "57P03": "database_error",
    "08001": "database_error", "08006": "database_error", "3D000": "database_error",
    "28P01": "database_error", "28000": "database_error",
}
_SQLITE_WORDS = (
    ("readonly database", "database_readonly"), ("read-only", "database_readonly"),
    ("database or disk is full", "disk_full"), ("no space left", "disk_full"),
    ("database is locked", "database_locked"), ("database table is locked", "database_locked"),
    ("file is not a database", "not_a_database"), ("file is encrypted", "not_a_database"),
    ("database disk image is malformed", "not_a_database"),
    ("unable to open database", "database_error"), ("disk i/o error", "disk_error"),
)
_ADVICE = {
    "database_readonly": "the database (or its folder) cannot be written. Give this user write access to the "
                         "database file and its folder (SQLite also writes -wal and -shm files next to it), or "
                         "point TIERGATE_DATABASE_URL at a writable database",
    "disk_full": "the disk holding the database is full. Free space (or grow the volume) and run the command again",
    "database_locked": "another process held the database's write lock for too long. Run the command again; if it "
                       "keeps happening, find the process that holds the lock",
    "not_a_database": "the database file is not a SQLite database (or is damaged). Point TIERGATE_DATABASE_URL at the "
                      "right file, or restore it from a backup",
    "database_error": "the database cannot be reached or opened. Check TIERGATE_DATABASE_URL, that the server "
                            "is running and that the file's folder exists and is readable",
    "disk_error": "the disk reported an I/O error. Check the disk and the file system, then run the command again",
}


def database_failure(exc: BaseException, where: str) -> DatabaseError | None:
    """The ``DatabaseError`` a driver or disk failure means (``database_readonly``, ``disk_full``, ...), or None."""
    orig = getattr(exc, "orig", None) or exc
    code = None
    state = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if state in _PG_STATES:
        code = _PG_STATES[state]
    if code is None:
        text = str(orig).lower()
        code = next((found for words, found in _SQLITE_WORDS if words in text), None)
        if code is None and isinstance(orig, OSError):
            import errno

            code = {errno.ENOSPC: "disk_full", errno.EROFS: "database_readonly", errno.EACCES: "database_readonly",
                    errno.EPERM: "database_readonly"}.get(orig.errno or 0)
    if code is None:
        return None
    detail = str(getattr(orig, "strerror", None) or orig).strip().splitlines()[0][:300] if str(orig).strip() else ""
    return DatabaseError(f"{where}: {_ADVICE[code]} ({detail}).", code=code, details={"cause": detail})


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
        # SQLite has one writer at a time; this process's threads take turns for it here rather
        # than in SQLite's busy handler, which sleeps 1 to 100 ms between tries, and writers that
        # wait at once are committed together (tiergate.store.groupcommit). Other processes
        # still wait through the busy timeout.
        self._writers = GroupCommit(self._begin_write, self._write_failure) if self.is_sqlite else None
        #: The SQLite file as first opened (device, inode): a file removed or replaced under this
        #: process is refused (``check_file``) rather than written to where nobody will read it again.
        self._file: tuple[int, int] | None = None
        self._path: Path | None = None
        if self.is_sqlite and self.url.database and self.url.database != ":memory:":
            self._path = Path(self.url.database)
            try:
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise (database_failure(exc, f"cannot create the folder of {self.url.database}")
                       or DatabaseError(f"cannot create the folder of {self.url.database}: {exc.strerror}.")) from None

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @cached_property
    def engine(self) -> SAEngine:
        if self.is_sqlite:
            # SQLAlchemy pools file databases with QueuePool (a pooled connection may serve
            # another thread) and :memory: with SingletonThreadPool; dispose() closes them all.
            engine = create_engine(self.url, connect_args={"timeout": 60}, json_serializer=encode_json)

            @event.listens_for(engine, "connect")
            def _configure(dbapi_connection, _record):  # type: ignore[no-untyped-def]
                # Let SQLAlchemy's "begin" event below issue BEGIN, so writes can be IMMEDIATE.
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                _enter_wal(cursor)
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _begin(connection):  # type: ignore[no-untyped-def]
                mode = connection.get_execution_options().get("tiergate_write", False)
                connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if mode else "BEGIN")

            return engine
        # No pool_pre_ping: it costs a round trip per transaction. A connection the server has
        # closed (restart, pg_terminate_backend, idle timeout) is found without one at checkout;
        # pool_recycle retires connections a middlebox may have dropped silently.
        engine = create_engine(self.url, pool_size=5, max_overflow=5, pool_recycle=1800, json_serializer=encode_json)

        @event.listens_for(engine, "connect")
        def _listen(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            _listen_for_goodbye(dbapi_connection)

        @event.listens_for(engine, "checkout")
        def _check_alive(dbapi_connection, _record, _proxy):  # type: ignore[no-untyped-def]
            if _server_hung_up(dbapi_connection):
                raise DisconnectionError("the server closed this pooled connection")  # the pool reconnects

        return engine

    def write(self, durable: bool = True) -> ContextManager[Connection]:
        """A write transaction: commits on success, rolls back on any exception; it returns (or
        raises) once its commit is done.

        ``durable=False`` is for data derived from what is durable (the log summary): its commit
        does not wait for the disk (SQLite ``synchronous=NORMAL`` for this transaction, PostgreSQL
        ``synchronous_commit=off``). A power cut may then lose the transaction, never half of it,
        and never anything committed durably. On SQLite, the writes of a process's threads take
        turns, and those waiting at once are committed together (``tiergate.store.groupcommit``).
        """
        if self._writers is not None and not self._writers.inside():
            return self._writers.write(durable)
        return self._write_alone(durable)

    def _begin_write(self, durable: bool) -> tuple[ExitStack, Connection, Any]:
        """A SQLite write transaction begun (``BEGIN IMMEDIATE``), for ``GroupCommit``: what to leave
        once it ends (the connection, and a relaxed ``synchronous`` set back), the connection, the transaction."""
        opened = ExitStack()
        try:
            conn = opened.enter_context(self._connect()).execution_options(tiergate_write=True)
            if not durable:
                driver = conn.connection.driver_connection
                driver.execute("PRAGMA synchronous=NORMAL")  # type: ignore[union-attr]
                opened.callback(lambda: conn.invalidated or driver.execute("PRAGMA synchronous=FULL"))  # type: ignore[union-attr]
            return opened, conn, conn.begin()
        except BaseException as exc:
            opened.close()
            if isinstance(exc, DBAPIError):
                raise self._write_failure(exc, False) from None
            raise

    def _write_failure(self, exc: BaseException, committing: bool) -> BaseException:
        """What a failed write says to a writer of a SQLite group (``GroupCommit``), as ``_transaction`` says it."""
        if isinstance(exc, DBAPIError):
            return self._lost(exc, during_commit=committing) if exc.connection_invalidated else self._failure(exc)
        if isinstance(exc, DatabaseError):
            return exc
        return DatabaseError(f"the database {self.url.render_as_string(hide_password=True)}: the write transaction "
                             f"this write shared with others broke ({type(exc).__name__}: {exc}). Nothing was "
                             "recorded; run the command again.", details={"cause": type(exc).__name__})

    @contextmanager
    def _write_alone(self, durable: bool) -> Iterator[Connection]:
        """``write`` in a transaction of its own (PostgreSQL, and a SQLite write inside another one)."""
        with self._connect() as conn:
            conn = conn.execution_options(tiergate_write=True)
            # SQLite takes the setting outside a transaction only: straight on the driver's connection.
            relaxed = not durable and self.is_sqlite
            if relaxed:
                conn.connection.driver_connection.execute("PRAGMA synchronous=NORMAL")  # type: ignore[union-attr]
            try:
                with self._transaction(conn, writes=True):
                    if not durable and not self.is_sqlite:
                        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                    yield conn
            finally:
                if relaxed and not conn.invalidated:
                    conn.connection.driver_connection.execute("PRAGMA synchronous=FULL")  # type: ignore[union-attr]

    @contextmanager
    def statement(self) -> Iterator[Connection]:
        """``read`` for one statement through ``driver_cursor`` (the token lookup of every request).
        On SQLite without BEGIN and COMMIT around it: a connection in autocommit runs a statement
        as its own transaction, which reads the latest commit (half the cost of the lookup).
        Elsewhere ``read``."""
        if not self.is_sqlite:
            with self.read() as conn:
                yield conn
            return
        with self._connect() as conn:
            try:
                yield conn
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise self._failure(exc) from None
                raise self._lost(exc, during_commit=False) from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connect() as conn, self._transaction(conn, writes=False):
            yield conn

    @contextmanager
    def _transaction(self, conn: Connection, *, writes: bool) -> Iterator[None]:
        """``conn.begin()``, with a connection that broke on the way told as ConnectionLostError."""
        committing = False
        try:
            with conn.begin():
                yield
                committing = writes
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise self._failure(exc) from None
            raise self._lost(exc, during_commit=committing) from exc

    def _failure(self, exc: DBAPIError) -> TiergateError:
        """A database error as the error tree says it: a known failure by its code, anything else as
        ``database_error`` with the driver's words (never a traceback)."""
        where = f"the database {self.url.render_as_string(hide_password=True)}"
        found = database_failure(exc, where)
        if found is not None:
            return found
        if "cannot contain NUL" in str(exc.orig):  # PostgreSQL: a value sent (an id, a name) holds a NUL character
            return UsageError("a value sent holds a NUL character (U+0000), which no id or name has and the database "
                              "cannot keep. Nothing was recorded; remove it and try again.", code="invalid_input",
                              details={"problem": "nul_character"})
        words = str(exc.orig).strip().splitlines()[0][:300] if str(exc.orig).strip() else type(exc.orig).__name__
        return DatabaseError(f"{where} answered an error: {words}. Nothing was recorded; run the command again, "
                             "and report it if it persists.", details={"cause": words})

    def _lost(self, exc: DBAPIError, *, during_commit: bool) -> ConnectionLostError:
        where = self.url.render_as_string(hide_password=True)
        if during_commit:
            return ConnectionLostError(
                f"the connection to the database {where} broke while the change was being committed "
                f"({str(exc.orig).strip()}): it may or may not have been recorded. Read the run back "
                "(its status or its log) before you try again.", committed=None)
        return ConnectionLostError(
            f"the connection to the database {where} broke ({str(exc.orig).strip()}); nothing was "
            "recorded. Run the command again once the database is reachable.", committed=False)

    def check_file(self) -> None:
        """Refuse (``database_replaced``) once the SQLite file this process opened was removed or
        replaced: its open connections would go on writing to a file no other process sees, and a
        new connection would make a new, empty database in its place. One stat, no query."""
        if self._file is None or self._path is None:
            return
        try:
            found = os.stat(self._path)
        except FileNotFoundError:
            what = "removed"
        except OSError:
            return  # unreadable: SQLite says what is wrong when it opens it
        else:
            if (found.st_dev, found.st_ino) == self._file:
                return
            what = "replaced by another file"
        raise DatabaseError(
            f"the database file {self._path} was {what} while this process had it open. Nothing was recorded. "
            "Put the right file back (restore it from a backup if it is lost), then restart this process (`tiergate "
            "serve`, `tiergate worker`).", code="database_replaced", details={"path": str(self._path)})

    def _remember_file(self) -> None:
        try:
            found = os.stat(self._path)  # type: ignore[arg-type]
        except OSError:  # a URI filename (file:...?mode=ro) or no file: nothing to compare
            self._path = None
            return
        self._file = (found.st_dev, found.st_ino)

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        if self._path is not None:
            self.check_file()
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            where = f"cannot open the database {self.url.render_as_string(hide_password=True)}"
            found = database_failure(exc, where)
            if found is not None and found.code != "database_error":
                raise found from None
            raise DatabaseError(f"cannot connect to the database {self.url.render_as_string(hide_password=True)}: "
                                f"{str(exc.orig).strip()}. Check TIERGATE_DATABASE_URL and that the server is "
                                "running.") from None
        if self._path is not None and self._file is None:
            self._remember_file()
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
