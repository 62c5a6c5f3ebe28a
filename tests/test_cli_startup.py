"""Each command imports only what it uses (the times are bench/cli_startup.py's; here, the modules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import HomeBuilder

HEAVY = ("sqlalchemy", "sqlmodel", "pydantic", "jinja2", "jsonschema", "rich", "lark", "SpiffWorkflow", "mcp",
         "tiergate.engine", "tiergate.dmn", "tiergate.metrics")


def _imported(args: list[str], cwd: Path, db_url: str | None = None) -> set[str]:
    """The top modules a `python -m tiergate ARGS` process imported (from -X importtime)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    if db_url:
        env["TIERGATE_DATABASE_URL"] = db_url
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tiergate", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "tiergate.cli" in names
    return names


def _loaded(names: set[str], package: str) -> bool:
    return any(n == package or n.startswith(package + ".") for n in names)


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    names = _imported(args, tmp_path)
    assert [p for p in HEAVY if _loaded(names, p)] == []


def test_status_of_a_tier2_run_loads_no_sqlalchemy_pydantic_dmn_or_bpmn(cli, demo_home: HomeBuilder, db_url: str) -> None:  # type: ignore[no-untyped-def]
    started = cli("start", "demo", "--data", json.dumps({"ticket_id": "T-1"}), "--actor", "agent:bot", "--quiet",
                  home=demo_home)
    run_id = started.stdout.strip()
    names = _imported(["status", run_id], demo_home.root, db_url)
    # It reads the database with the driver alone (tiergate.reading): no SQLAlchemy, no Engine, no pydantic.
    assert _loaded(names, "tiergate.store.direct")
    assert _loaded(names, "psycopg" if db_url.startswith("postgresql") else "sqlite3")
    assert [p for p in ("sqlalchemy", "sqlmodel", "alembic", "pydantic", "jsonschema", "yaml", "SpiffWorkflow", "lark",
                        "mcp", "tiergate.engine", "tiergate.store.db", "tiergate.dmn", "tiergate.metrics",
                        "tiergate.bpmn", "tiergate.runners") if _loaded(names, p)] == []
