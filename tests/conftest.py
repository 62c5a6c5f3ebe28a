"""Shared fixtures: real databases, real homes, real subprocesses.

The suite runs on SQLite by default. With ``TIERGATE_TEST_DATABASE_URL`` set to a PostgreSQL
URL (``postgresql+psycopg://USER@HOST:PORT/postgres``) every test that uses ``db_url`` gets a
fresh PostgreSQL database instead, cloned from a migrated template.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from support import BACKEND, PG_ADMIN_URL, REPO, TEMPLATE_DB, CLIResult, HomeBuilder, DEMO  # noqa: F401
from tiergate.engine import Engine
from tiergate.store.db import Database

def pytest_report_header(config: pytest.Config) -> str:
    return f"tiergate test database backend: {BACKEND}"


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_url(name: str) -> str:
    return sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    if BACKEND != "postgresql":
        yield None
        return
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        conn.exec_driver_sql(f"CREATE DATABASE {TEMPLATE_DB}")
    database = Database(_pg_url(TEMPLATE_DB))
    database.upgrade()
    database.dispose()
    yield TEMPLATE_DB
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
    admin.dispose()


@contextmanager
def _postgres_database(template: str | None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of ``template``, or empty), dropped afterwards."""
    name = f"tg_{secrets.token_hex(5)}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()


@pytest.fixture
def db_url(tmp_path: Path, pg_template: str | None) -> Iterator[str]:
    """A fresh, migrated database for this test: a SQLite file, or a new PostgreSQL database."""
    if pg_template is None:
        yield f"sqlite:///{(tmp_path / 'db' / 'tiergate.db').as_posix()}"
        return
    with _postgres_database(pg_template) as url:
        yield url


@pytest.fixture
def empty_db_url(tmp_path: Path, pg_template: str | None) -> Iterator[str]:
    """A database with no schema at all."""
    if pg_template is None:
        yield f"sqlite:///{(tmp_path / 'empty' / 'tiergate.db').as_posix()}"
        return
    with _postgres_database(None) as url:
        yield url


@pytest.fixture
def home(tmp_path: Path) -> HomeBuilder:
    return HomeBuilder(tmp_path / "home")


@pytest.fixture
def demo_home(home: HomeBuilder) -> HomeBuilder:
    home.checklist("demo", DEMO)
    return home


@pytest.fixture
def make_engine(db_url: str) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(root: Path | HomeBuilder, **kwargs: Any) -> Engine:
        path = root.root if isinstance(root, HomeBuilder) else root
        engine = Engine(home=path, database_url=kwargs.pop("database_url", db_url), **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


@pytest.fixture
def engine(demo_home: HomeBuilder, make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(demo_home)


@pytest.fixture
def cli(db_url: str) -> Callable[..., CLIResult]:
    """Run `python -m tiergate` in a real subprocess against the test database."""

    def run(*args: str, home: Path | HomeBuilder | None = None, env: dict[str, str] | None = None,
            input: str | None = None, timeout: float = 120) -> CLIResult:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
        full_env["TIERGATE_DATABASE_URL"] = db_url
        full_env["NO_COLOR"] = "1"
        full_env["COLUMNS"] = "200"
        if env:
            full_env.update(env)
        cmd = [sys.executable, "-m", "tiergate"]
        cwd = REPO
        if home is not None:
            cwd = home.root if isinstance(home, HomeBuilder) else home
        proc = subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env, cwd=cwd,
                              input=input, timeout=timeout)
        return CLIResult(proc)

    return run


@pytest.fixture
def repo_home(tmp_path: Path) -> Path:
    """A copy of this repository's definitions, safe to edit."""
    target = tmp_path / "repo-home"
    for folder in ("tiers", "checklists", "processes", "decisions"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, target / folder)
    return target
