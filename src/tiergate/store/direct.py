"""Reading one run and its pinned definition with the database driver alone (no SQLAlchemy).

    found = read_run("sqlite:////srv/home/.tiergate/tiergate.db", "4f2a...")
    found.run.tier, found.run.state, found.snapshot       # or NotFoundError, or Unanswered
    list_runs(url, process_id="support-triage")          # newest first, as `tiergate runs` lists them

For the read commands of a short-lived CLI process (``tiergate.reading``), where importing
SQLAlchemy costs far more than the reading. It answers only the plain case: a database at the
newest schema revision, the run there, its snapshot there and matching its hash. Anything else
raises ``Unanswered`` having changed nothing, and the caller asks the ``Engine``, which words
each such case (an older schema, a file that is not a database, a server that cannot be
reached, a snapshot edited after it was stored) exactly as it always does. A SQLite file that
does not exist is not created: it holds no run, which is the answer.

URLs: ``sqlite:///PATH`` (read through ``sqlite3``) and ``postgresql+psycopg://...`` (through
psycopg, imported only then); any other spelling is left to the ``Engine``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tiergate.jsonutil import content_hash
from tiergate.runview import run_not_found
from tiergate.store.revision import HEAD_REVISION
from tiergate.timestamps import read_time

_RUN = ("SELECT id, process_id, definition_version, tier, status, CAST(state AS TEXT), started_by, created_at, "
        "ended_at FROM runs WHERE id = {p}")
_SNAPSHOT = "SELECT CAST(body AS TEXT) FROM definitions WHERE version = {p}"
_REVISION = "SELECT version_num FROM alembic_version"
_LIST = ("SELECT id, process_id, definition_version, tier, status, started_by, created_at, ended_at FROM runs{where} "
         "ORDER BY created_at DESC, id LIMIT {p}")


def default_sqlite_url(home: Path) -> str:
    return f"sqlite:///{(home / '.tiergate' / 'tiergate.db').as_posix()}"


class Unanswered(Exception):
    """This reader does not answer the case; the ``Engine`` will (the message says which case)."""


@dataclass
class StoredRun:
    """A run's row as stored, its state parsed and its times as aware UTC datetimes."""

    id: str
    process_id: str
    definition_version: str
    tier: int
    status: str
    state: dict[str, Any]
    started_by: str
    created_at: datetime
    ended_at: datetime | None


@dataclass
class Found:
    run: StoredRun
    snapshot: dict[str, Any]
    """The definition the run is pinned to, as stored (it hashes to ``run.definition_version``)."""


def read_run(url: str, run_id: str) -> Found:
    """The run ``run_id`` and its pinned snapshot; ``NotFoundError`` if there is no such run."""
    with _reading(url) as (cursor, placeholder):
        if cursor is None:
            raise run_not_found(run_id)  # no database yet, so no run; and nothing is created
        return _read(cursor, placeholder, run_id)


def list_runs(url: str, *, process_id: str | None = None, status: str | None = None,
              limit: int = 1000) -> list[StoredRun]:
    """Runs, newest first, as ``store.runs.list_runs`` orders them (their ``state`` left out: empty)."""
    with _reading(url) as (cursor, placeholder):
        if cursor is None:
            return []
        _check_revision(cursor)
        where = [f"{column} = {placeholder}" for column, value in (("process_id", process_id), ("status", status))
                 if value]
        cursor.execute(_LIST.format(where=f" WHERE {' AND '.join(where)}" if where else "", p=placeholder),
                       (*[v for v in (process_id, status) if v], limit))
        return [StoredRun(id=id_, process_id=process, definition_version=version, tier=tier, status=state,
                          state={}, started_by=started_by, created_at=read_time(created_at),
                          ended_at=read_time(ended_at) if ended_at else None)
                for id_, process, version, tier, state, started_by, created_at, ended_at in cursor.fetchall()]


@contextmanager
def _reading(url: str) -> Iterator[tuple[Any, str]]:
    """A cursor in a read transaction and the driver's placeholder; (None, "") for a SQLite file not there."""
    if url.startswith("sqlite:///") and "?" not in url and "%" not in url:
        with _sqlite(url[len("sqlite:///"):]) as found:
            yield found
    elif url.startswith("postgresql+psycopg://"):
        with _postgresql("postgresql://" + url[len("postgresql+psycopg://"):]) as found:
            yield found
    else:
        raise Unanswered(f"a database URL other than sqlite:///PATH or postgresql+psycopg://: {url.split(':', 1)[0]}")


@contextmanager
def _sqlite(path: str) -> Iterator[tuple[Any, str]]:
    import sqlite3

    if path in ("", ":memory:"):
        raise Unanswered("an in-memory database")
    if not os.path.exists(path):
        yield None, ""
        return
    try:
        # mode=rw: never create the file; the busy timeout is the Engine's (a writer may hold the lock).
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=rw", uri=True, timeout=60,
                               isolation_level=None)
    except sqlite3.Error as exc:
        raise Unanswered(f"cannot open the SQLite file: {exc}") from None
    try:
        conn.execute("BEGIN")  # one snapshot for everything read
        yield conn.cursor(), "?"
    except sqlite3.Error as exc:  # not a database, no such table, locked for too long, ...
        raise Unanswered(f"SQLite answered: {exc}") from None
    finally:
        conn.close()


@contextmanager
def _postgresql(conninfo: str) -> Iterator[tuple[Any, str]]:
    try:
        import psycopg
    except ImportError:
        raise Unanswered("psycopg is not installed") from None
    try:
        with psycopg.connect(conninfo, autocommit=False) as conn, conn.cursor() as cursor:
            # The connection's transaction (psycopg opens one) holds one snapshot for everything read.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield cursor, "%s"
            conn.rollback()
    except psycopg.Error as exc:
        raise Unanswered(f"PostgreSQL answered: {exc}") from None


def _check_revision(cursor: Any) -> None:
    cursor.execute(_REVISION)
    revisions = [row[0] for row in cursor.fetchall()]
    if revisions != [HEAD_REVISION]:
        raise Unanswered(f"the schema is at {revisions or 'no revision'}, not {HEAD_REVISION}")


def _read(cursor: Any, placeholder: str, run_id: str) -> Found:
    _check_revision(cursor)
    cursor.execute(_RUN.format(p=placeholder), (run_id,))
    row = cursor.fetchone()
    if row is None:
        raise run_not_found(run_id)
    id_, process_id, version, tier, status, state, started_by, created_at, ended_at = row
    cursor.execute(_SNAPSHOT.format(p=placeholder), (version,))
    body = cursor.fetchone()
    if body is None:
        raise Unanswered(f"the definition {version[:12]} the run is pinned to is missing")
    snapshot = json.loads(body[0])
    if content_hash(snapshot) != version:
        raise Unanswered(f"the definition {version[:12]} does not match its hash")
    run = StoredRun(id=id_, process_id=process_id, definition_version=version, tier=tier, status=status,
                    state=json.loads(state), started_by=started_by, created_at=read_time(created_at),
                    ended_at=read_time(ended_at) if ended_at else None)
    return Found(run=run, snapshot=snapshot)
