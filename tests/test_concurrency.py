"""Real concurrent processes racing on the same run (SQLite file and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from support import HomeBuilder
from test_checklist_runtime import PARALLEL

from tiergate.engine import Engine
from tiergate.errors import TiergateError

GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}


def _worker(home: str, db_url: str, run_id: str, step: str, actor: str, barrier: Any, results: Any) -> None:
    engine = Engine(home=home, database_url=db_url)
    engine.status(run_id)  # connect and load definitions before the race
    barrier.wait(timeout=60)
    try:
        engine.complete(run_id, step, GOOD if step == "gather" else {}, actor=actor)
        results.put((actor, "ok", None))
    except TiergateError as err:
        results.put((actor, err.code, err.details.get("reason")))
    finally:
        engine.close()


def _race(home: Path, db_url: str, run_id: str, jobs: list[tuple[str, str]]) -> list[tuple[str, str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(jobs))
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(home), db_url, run_id, step, actor, barrier, results))
             for step, actor in jobs]
    for proc in procs:
        proc.start()
    out = [results.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return out


def test_same_step_exactly_one_wins(demo_home: HomeBuilder, make_engine: Any, db_url: str) -> None:
    engine = make_engine(demo_home)
    for round_ in range(3):
        run = engine.start("demo", {"ticket_id": f"T-{round_}"}, actor="agent:bot")
        outcomes = _race(demo_home.root, db_url, run.id, [("gather", f"agent:w{i}") for i in range(4)])
        winners = [o for o in outcomes if o[1] == "ok"]
        losers = [o for o in outcomes if o[1] != "ok"]
        assert len(winners) == 1, outcomes
        # The losers were re-checked against the winner's state: a clear refusal (or, under
        # extreme contention, a conflict), never a second completion.
        assert all((code, reason) in {("refused", "already_done"), ("conflict", None)} for _, code, reason in losers)
        log = engine.log(run.id)
        completions = [e for e in log if e["event"] == "step_completed" and e["step"] == "gather"]
        assert len(completions) == 1 and completions[0]["actor"] == winners[0][0]
        assert engine.status(run.id).steps[0].actor == winners[0][0]
    assert engine.verify_log()["ok"] is True


def test_different_steps_of_one_run_both_succeed(home: HomeBuilder, make_engine: Any, db_url: str) -> None:
    home.checklist("parallel", PARALLEL)
    engine = make_engine(home)
    run = engine.start("parallel", {}, actor="agent:a")
    engine.complete(run.id, "start", {}, actor="agent:a")
    outcomes = _race(home.root, db_url, run.id, [("left", "agent:l"), ("right", "agent:r")])
    assert sorted(o[1] for o in outcomes) == ["ok", "ok"]
    info = engine.status(run.id)
    assert [s.id for s in info.ready_steps] == ["join"]
    assert engine.verify_log()["ok"] is True
