"""Tier 1 runs under real concurrent processes (SQLite file and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any, Callable

from tier1_helpers import LINEAR, tier1_home
from test_tier1_runtime import PARALLEL
from tiergate.engine import Engine
from tiergate.errors import TiergateError

NOTE = {"note": "Change the overtime rate"}


def _complete(home: str, db_url: str, run_id: str, step: str, evidence: dict[str, Any], actor: str,
              barrier: Any, results: Any) -> None:
    engine = Engine(home=home, database_url=db_url)
    engine.status(run_id)  # connect, load and parse before the race
    barrier.wait(timeout=120)
    try:
        engine.complete(run_id, step, evidence, actor=actor)
        results.put((actor, "ok", None))
    except TiergateError as err:
        results.put((actor, err.code, err.details.get("reason")))
    finally:
        engine.close()


def _whole_run(home: str, db_url: str, index: int, barrier: Any, results: Any) -> None:
    engine = Engine(home=home, database_url=db_url)
    engine.check()
    barrier.wait(timeout=120)
    try:
        run = engine.start("linear", {"ticket": f"T-{index}"}, actor=f"agent:w{index}")
        engine.complete(run.id, "draft", NOTE, actor=f"agent:w{index}")
        info = engine.complete(run.id, "approve", {"approved": True}, actor="human:alice" if index % 2 else "human:bob")
        results.put((run.id, info.status))
    except TiergateError as err:  # pragma: no cover - reported by the assertion below
        results.put((None, err.message))
    finally:
        engine.close()


def _spawn(target: Callable[..., None], jobs: list[tuple[Any, ...]]) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(jobs))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*job, barrier, results)) for job in jobs]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    return out


def test_the_same_step_from_four_processes_exactly_one_wins(tmp_path: Path, make_engine: Callable[..., Engine],
                                                             db_url: str) -> None:
    home = tier1_home(tmp_path / "home", {"linear": LINEAR})
    engine = make_engine(home)
    for round_ in range(2):
        run = engine.start("linear", {"ticket": f"T-{round_}"}, actor="agent:a")
        outcomes = _spawn(_complete, [(str(home.root), db_url, run.id, "draft", NOTE, f"agent:w{i}")
                                      for i in range(4)])
        winners = [o for o in outcomes if o[1] == "ok"]
        assert len(winners) == 1, outcomes
        assert all((code, reason) in {("refused", "already_done"), ("conflict", None)}
                   for _, code, reason in outcomes if code != "ok"), outcomes
        completions = [e for e in engine.log(run.id) if e["event"] == "step_completed"]
        assert [(e["step"], e["actor"]) for e in completions] == [("draft", winners[0][0])]
        assert [s.id for s in engine.status(run.id).ready_steps] == ["approve"]
    assert engine.verify_log()["ok"] is True


def test_parallel_branches_completed_at_once_both_count(tmp_path: Path, make_engine: Callable[..., Engine],
                                                        db_url: str) -> None:
    home = tier1_home(tmp_path / "home", {"parallel": PARALLEL})
    engine = make_engine(home)
    run = engine.start("parallel", {}, actor="agent:a")
    outcomes = _spawn(_complete, [(str(home.root), db_url, run.id, "left", {"l": 1}, "agent:l"),
                                  (str(home.root), db_url, run.id, "right", {"r": 2}, "agent:r")])
    assert sorted(o[1] for o in outcomes) == ["ok", "ok"]
    info = engine.status(run.id)
    assert [s.id for s in info.ready_steps] == ["after"] and info.data == {"l": 1, "r": 2}
    assert engine.verify_log()["ok"] is True


def test_many_runs_at_once(tmp_path: Path, make_engine: Callable[..., Engine], db_url: str) -> None:
    home = tier1_home(tmp_path / "home", {"linear": LINEAR})
    engine = make_engine(home)
    assert engine.runs() == []  # the schema exists before the processes start (a fresh SQLite file is migrated by its first user)
    outcomes = _spawn(_whole_run, [(str(home.root), db_url, i) for i in range(6)])
    assert [status for _, status in outcomes] == ["completed"] * 6, outcomes
    assert len(engine.runs(status="completed")) == 6 and engine.verify_log()["ok"] is True
