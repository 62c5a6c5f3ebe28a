"""The database: first use, migrations, and the message for an old schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from support import BACKEND, HomeBuilder
from tiergate.errors import SchemaOutdatedError
from tiergate.store.db import Database
from tiergate.store.tables import SQLModel


def test_sqlite_home_initialises_itself_in_wal_mode(demo_home: HomeBuilder, make_engine: Any) -> None:
    db_file = demo_home.root / ".tiergate" / "tiergate.db"
    engine = make_engine(demo_home, database_url=f"sqlite:///{db_file}")
    engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot")
    assert db_file.is_file()
    with engine.db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert engine.db.current_revision() == engine.db.head_revision


def test_default_database_is_a_sqlite_file_in_the_home(demo_home: HomeBuilder, monkeypatch: Any) -> None:
    from tiergate.engine import Engine

    monkeypatch.delenv("TIERGATE_DATABASE_URL", raising=False)
    engine = Engine(home=demo_home.root)
    assert engine.database_url == f"sqlite:///{(demo_home.root.resolve() / '.tiergate' / 'tiergate.db').as_posix()}"


def test_older_schema_asks_for_db_upgrade(empty_db_url: str) -> None:
    database = Database(empty_db_url)
    config = database.alembic_config()
    with database.engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.commit()
    with pytest.raises(SchemaOutdatedError) as err:
        Database(empty_db_url).ensure_ready()
    assert "Run `tiergate db upgrade`" in err.value.message
    assert err.value.details == {"current": "0001", "head": database.head_revision}
    before, after = database.upgrade()
    assert (before, after) == ("0001", database.head_revision)
    Database(empty_db_url).ensure_ready()
    database.dispose()


def test_empty_database(empty_db_url: str) -> None:
    """An empty SQLite file initialises itself; an empty PostgreSQL database asks for `db upgrade`."""
    database = Database(empty_db_url)
    if BACKEND == "sqlite":
        database.ensure_ready()
        assert database.current_revision() == database.head_revision
    else:
        with pytest.raises(SchemaOutdatedError, match="has no tiergate schema. Run `tiergate db upgrade`"):
            database.ensure_ready()
        assert database.current_revision() is None
    database.dispose()


def test_migrations_match_the_tables(empty_db_url: str) -> None:
    database = Database(empty_db_url)
    database.upgrade()
    with database.engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in SQLModel.metadata.sorted_tables:
            columns = {c["name"]: c for c in inspector.get_columns(table.name)}
            assert set(columns) == {c.name for c in table.columns}, table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable, f"{table.name}.{column.name}"
            indexed = {tuple(i["column_names"]) for i in inspector.get_indexes(table.name)}
            for index in table.indexes:
                assert tuple(c.name for c in index.columns) in indexed, f"{table.name}: {index.name}"
    database.dispose()


def test_unsupported_database_url_is_explained(tmp_path: Path) -> None:
    from tiergate.errors import DatabaseError

    with pytest.raises(DatabaseError, match="runs on SQLite and PostgreSQL"):
        Database("mysql://localhost/x")
    with pytest.raises(DatabaseError, match="is not a database URL"):
        Database("not a url")


def test_head_revision_constant_matches_the_migrations(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert ScriptDirectory.from_config(database.alembic_config()).get_current_head() == database.head_revision


def _upgrade_after(url: str, barrier: Any, results: Any) -> None:
    database = Database(url)
    try:
        barrier.wait(timeout=600)  # spawned interpreters start slowly on a loaded machine
        results.put(database.upgrade()[1])
    except Exception as err:  # noqa: BLE001 - the test reports what went wrong
        results.put(repr(err))
    finally:
        database.dispose()


def test_processes_migrating_a_new_database_at_once_queue(empty_db_url: str, tmp_path: Path) -> None:
    import multiprocessing

    # On SQLite the race is in creating the file (two processes switching it to WAL at once), so
    # several new files are tried: one round caught the old bug about one time in five.
    urls = [empty_db_url] if not empty_db_url.startswith("sqlite") else [
        f"sqlite:///{(tmp_path / f'new{n}' / 'tiergate.db').as_posix()}" for n in range(4)]
    ctx = multiprocessing.get_context("spawn")
    for url in urls:
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_upgrade_after, args=(url, barrier, results)) for _ in range(3)]
        for proc in procs:
            proc.start()
        answers = [results.get(timeout=900) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        database = Database(url)
        assert answers == [database.head_revision] * 3, url
        assert database.current_revision() == database.head_revision
        database.dispose()
