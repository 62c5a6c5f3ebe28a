"""Connecting to the database, transactions, and the schema version check (``tiergate.store.schema``).

SQLite (the embedded default) and PostgreSQL run the same code. On SQLite every write
transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock before reading, so two
processes completing the same step are serialised instead of failing half-way with "database
is locked". On PostgreSQL, writers race optimistically on the run's ``version`` column.

Connections are pooled on both. A SQLite connection is opened and configured once (WAL,
``synchronous=FULL``, busy timeout, foreign keys), not per transaction: opening, configuring and
closing one (which checkpoints the WAL) cost more than a step's SQL. A pooled PostgreSQL
connection is checked without a round trip before use (``tiergate.store.connections``).

The hot path (``tiergate.store.runs``, ``tiergate.log``) runs a few fixed statements on the
DBAPI cursor of the transaction's connection, spelled once per dialect (``DriverSQL``),
through ``driver_cursor`` (both in ``tiergate.store.driver``): SQLAlchemy's statement and result
handling costs more than the statements themselves on a fast database.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, ContextManager, Iterator

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError

from tiergate.errors import ConnectionLostError, DatabaseError, TiergateError, UsageError
from tiergate.store.connections import _enter_wal, _listen_for_goodbye, _server_hung_up
from tiergate.store.direct import default_sqlite_url  # noqa: F401 - the Engine's default, said once
# Re-exported for the store's modules and the CLI: the hot path's statements, what a failure means.
from tiergate.store.driver import DriverSQL, bind_time, driver_cursor, encode_json  # noqa: F401
from tiergate.store.failures import database_failure  # noqa: F401
from tiergate.store.groupcommit import GroupCommit
from tiergate.store.schema import MIGRATIONS, Schema  # noqa: F401 - MIGRATIONS re-exported
from tiergate.timestamps import read_time  # noqa: F401 - re-exported for the store's readers


class Database(Schema):
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

    def dispose(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
