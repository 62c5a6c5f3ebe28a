"""`tiergate status` on the database directly: the light reader (``tiergate.reading``) says exactly
what the Engine says, for every tier and state, on SQLite and PostgreSQL, and loads no SQLAlchemy.

Each run is moved by an Engine in the test; each status is a real `python -m tiergate` process,
once on the light path and once with ``TIERGATE_DIRECT_READS=0`` (the Engine's path), text and
``--json``. ``-X importtime`` shows which path answered.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from support import BACKEND, HomeBuilder
from test_tier1_platform_files import WALKS, _actor, model
from tiergate.engine import Engine

TRIAGE = {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
          "summary": "Payslips show the wrong overtime rate since the last release"}
TRIAGE_STEPS = [
    ("gather-context", {"duplicate_of": None, "next_pay_date": "2026-12-24",
                        "context_notes": "Overtime element changed in release 24.3; the client ran a pay preview"}),
    ("reproduce", {"reproduced": True, "environment": "client-sandbox", "product_version": "24.3",
                   "steps_to_reproduce": ["Open the client sandbox", "Run a pay preview with overtime"],
                   "expected_result": "Overtime paid at 1.5 times the hourly rate",
                   "actual_result": "Overtime paid at 1.25 times the hourly rate",
                   "evidence_urls": ["https://tickets.example.com/SUP-10234/preview.pdf"]}),
    ("classify", {"issue_category": "pay-calculation", "client_tier": "gold", "severity": "S2",
                  "severity_rationale": "Overtime pay is wrong for every employee with overtime, and a pay run is due",
                  "pay_impact": True}),
]
ENGINE_ONLY = ("sqlalchemy", "sqlmodel", "alembic", "pydantic", "jsonschema", "SpiffWorkflow", "lark", "yaml",
               "tiergate.engine", "tiergate.store.db", "tiergate.runners", "tiergate.definitions", "tiergate.dmn")


def _status(run_id: str, home: Path, db_url: str, *extra: str, direct: bool = True,
            env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`tiergate status RUN` as a process, and the modules it imported."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    full_env.update(TIERGATE_DATABASE_URL=db_url, NO_COLOR="1", COLUMNS="200", **(env or {}))
    if not direct:
        full_env["TIERGATE_DIRECT_READS"] = "0"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tiergate", "status", run_id, *extra],
                          capture_output=True, text=True, cwd=home, env=full_env, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    proc.stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))
    return proc, names


def _loaded(names: set[str], package: str) -> bool:
    return any(n == package or n.startswith(package + ".") for n in names)


def assert_same(run_id: str, home: Path, db_url: str, *, light: bool = True) -> dict[str, Any]:
    """Both paths print the same text and the same JSON; ``light``: the first loaded none of the engine."""
    answers = []
    for extra in ((), ("--json",)):
        fast, fast_names = _status(run_id, home, db_url, *extra)
        full, full_names = _status(run_id, home, db_url, *extra, direct=False)
        assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
        assert _loaded(full_names, "sqlalchemy") and _loaded(full_names, "tiergate.engine")
        heavy = [p for p in ENGINE_ONLY if _loaded(fast_names, p)]
        assert heavy == [] if light else _loaded(fast_names, "tiergate.engine"), heavy
        answers.append(fast)
    assert answers[0].returncode == 0, answers[0].stderr
    return json.loads(answers[1].stdout)["data"]  # type: ignore[no-any-return]


@pytest.fixture
def repo_engine(repo_home: Path, make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(repo_home)


def test_tier2_in_every_state(repo_home: Path, repo_engine: Engine, db_url: str) -> None:
    """Ready steps with roles, rendered instructions and $ref gates; a decide step; completed and cancelled runs."""
    run = repo_engine.start("support-triage", TRIAGE, actor="agent:triage-bot")
    first = assert_same(run.id, repo_home, db_url)
    ready = [s for s in first["steps"] if s["state"] == "ready"]
    assert [s["id"] for s in ready] == ["gather-context"] and "SUP-10234" in ready[0]["instructions"]
    assert ready[0]["who"].startswith("an agent or a person with the role") and ready[0]["gate_words"]
    for step, evidence in TRIAGE_STEPS:
        repo_engine.complete(run.id, step, evidence, actor="agent:triage-bot")
        answer = assert_same(run.id, repo_home, db_url)
    states = {s["id"]: s["state"] for s in answer["steps"]}
    assert states["route"] == "done" and states["classify"] == "done" and answer["ready"] == ["assign", "acknowledge"]
    repo_engine.cancel(run.id, "a duplicate after all", actor="human:alice")
    assert assert_same(run.id, repo_home, db_url)["status"] == "cancelled"


def test_tier2_skipped_sent_back_and_completed(demo_home: HomeBuilder, make_engine: Callable[..., Engine],
                                              db_url: str) -> None:
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-7"}, actor="agent:bot")
    engine.complete(run.id, "gather", {"summary": "All facts are in", "severity": "S2"}, actor="agent:bot")
    engine.skip(run.id, "extra", "not needed here", actor="agent:bot")
    answer = assert_same(run.id, demo_home.root, db_url)
    assert answer["ready"] == ["review"] and "other than whoever completed `gather`" in answer["steps"][2]["who"]
    engine.complete(run.id, "review", {"approved": True}, actor="human:alice")
    assert assert_same(run.id, demo_home.root, db_url)["status"] == "completed"


def test_tier3_open_and_closed(repo_home: Path, repo_engine: Engine, db_url: str) -> None:
    run = repo_engine.start("knowledge-qa", {"question": "How is overtime paid?"}, actor="agent:qa-bot")
    assert run.tier == 3
    assert assert_same(run.id, repo_home, db_url)["ready"] == ["work"]
    repo_engine.complete(run.id, None, {"answer": "At 1.5 times"}, actor="agent:qa-bot")
    assert assert_same(run.id, repo_home, db_url)["status"] == "completed"


def test_tier1_goes_to_the_engine_and_says_the_same(repo_home: Path, repo_engine: Engine, db_url: str) -> None:
    walk = WALKS["knowledge: a trusted how-to is auto-approved and published"]
    m = model(walk.process)
    step, evidence = walk.steps[0]
    run = repo_engine.start(walk.process, {}, actor=_actor(m, step, {}))
    assert run.tier == 1
    assert assert_same(run.id, repo_home, db_url, light=False)["ready"] == [step]
    repo_engine.complete(run.id, step, evidence, actor=_actor(m, step, {}))
    assert assert_same(run.id, repo_home, db_url, light=False)["ready"] == [walk.steps[1][0]]


def test_errors_are_the_engines(demo_home: HomeBuilder, make_engine: Callable[..., Engine], db_url: str) -> None:
    """No such run; a snapshot edited in the database (definition_tampered)."""
    missing = assert_same_failure("nope", demo_home.root, db_url)
    assert missing["error"]["code"] == "not_found"
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-8"}, actor="agent:bot")
    with engine.db.write() as conn:
        conn.exec_driver_sql("UPDATE definitions SET body = CAST(REPLACE(CAST(body AS TEXT), 'Gather the facts', "
                             f"'Gather nothing') AS {'JSON' if BACKEND == 'postgresql' else 'TEXT'})")
    assert assert_same_failure(run.id, demo_home.root, db_url)["error"]["code"] == "definition_tampered"


def assert_same_failure(run_id: str, home: Path, db_url: str) -> dict[str, Any]:
    outputs = []
    for extra in ((), ("--json",)):
        fast, _ = _status(run_id, home, db_url, *extra)
        full, _ = _status(run_id, home, db_url, *extra, direct=False)
        assert fast.returncode == 1 and (fast.returncode, fast.stdout, fast.stderr) == \
            (full.returncode, full.stdout, full.stderr)
        outputs.append(fast)
    return json.loads(outputs[1].stdout)  # type: ignore[no-any-return]


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite files")
def test_sqlite_files_missing_old_or_not_a_database(demo_home: HomeBuilder, make_engine: Callable[..., Engine],
                                                    tmp_path: Path) -> None:
    missing = tmp_path / "none" / "tiergate.db"
    proc, names = _status("abc", demo_home.root, f"sqlite:///{missing.as_posix()}", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["error"]["code"] == "not_found"
    assert not missing.parent.exists() and not _loaded(names, "sqlalchemy")  # nothing created
    proc, names = _runs(demo_home.root, f"sqlite:///{missing.as_posix()}")
    assert (proc.returncode, proc.stdout) == (0, "no runs\n") and not missing.parent.exists()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, it is a text file of some length" * 40)
    proc, _ = _status("abc", demo_home.root, f"sqlite:///{garbage.as_posix()}", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["error"]["code"] == "not_a_database"

    old = tmp_path / "old.db"
    engine = make_engine(demo_home, database_url=f"sqlite:///{old.as_posix()}")
    run = engine.start("demo", {"ticket_id": "T-9"}, actor="agent:bot")
    engine.close()
    conn = sqlite3.connect(old)
    conn.execute("UPDATE alembic_version SET version_num = '0001'")
    conn.commit()
    conn.close()  # the last connection: the WAL goes into the file
    before = old.read_bytes()
    proc, _ = _status(run.id, demo_home.root, f"sqlite:///{old.as_posix()}")
    assert proc.returncode == 1 and "`tiergate db upgrade`" in proc.stderr, proc.stderr
    assert old.read_bytes() == before


def _runs(home: Path, db_url: str, *args: str, direct: bool = True) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    full_env.update(TIERGATE_DATABASE_URL=db_url, NO_COLOR="1", COLUMNS="200")
    if not direct:
        full_env["TIERGATE_DIRECT_READS"] = "0"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tiergate", "runs", *args], capture_output=True,
                          text=True, cwd=home, env=full_env, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    proc.stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))
    return proc, names


def test_runs_lists_the_same_with_every_filter(repo_home: Path, repo_engine: Engine, db_url: str) -> None:
    first = repo_engine.start("support-triage", TRIAGE, actor="agent:triage-bot")
    repo_engine.start("knowledge-qa", {"question": "Why?"}, actor="agent:qa-bot")
    repo_engine.cancel(first.id, "opened twice", actor="human:alice")
    for args in ((), ("--json",), ("--process", "support-triage", "--json"), ("--status", "active"),
                 ("--status", "cancelled", "--process", "support-triage"), ("--status", "sideways", "--json")):
        fast, names = _runs(repo_home, db_url, *args)
        full, _ = _runs(repo_home, db_url, *args, direct=False)
        assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr)
        assert _loaded(names, "sqlalchemy") == ("sideways" in args), args  # an unknown status: the Engine says so
    listed = json.loads(_runs(repo_home, db_url, "--json")[0].stdout)["data"]
    assert [(r["process"], r["status"]) for r in listed] == [("knowledge-qa", "active"), ("support-triage", "cancelled")]
