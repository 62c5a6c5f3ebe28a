"""The outbox of signals thrown inside runs: a broadcast survives a crash between the throwing
move's commit and its delivery, `tiergate worker` delivers it, and no run is reached twice by one
broadcast however many deliverers try."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from test_tier1_signals import (
    STARTER,
    THROWER,
    WAITER,
    engine_with,
    event,
    ready,
    received,
)
from tier1_helpers import chain, user

from tiergate import signals
from tiergate.engine import Engine
from tiergate.store.tables import SignalBroadcast, SignalDelivery
from tiergate.worker import run_pass

#: Works at "work" with a non-interrupting signal event subprocess: it still waits for go_live after
#: catching it, so a broadcast delivered twice to it would be caught twice.
REPEATER = ('<bpmn:startEvent id="start"/>' + user("work") + '<bpmn:endEvent id="end"/>'
            + chain("start", "work", "end")
            + '<bpmn:subProcess id="on_go" triggeredByEvent="true">'
            + event("startEvent", "h_s", attrs='isInterrupting="false"') + user("notify")
            + '<bpmn:endEvent id="h_e"/>' + chain("h_s", "notify", "h_e", prefix="h") + '</bpmn:subProcess>')


def _env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    env.update({"TIERGATE_DATABASE_URL": db_url, "NO_COLOR": "1", **extra})
    return env


def _rows(engine: Engine, table: Any) -> list[Any]:
    with engine.db.read() as conn:
        return list(conn.execute(sa.select(table.__table__)).all())


def _undeliver(engine: Engine) -> None:
    """As if the deliverer died after reaching the runs, before marking the broadcast delivered."""
    with engine.db.write() as conn:
        conn.execute(sa.update(SignalBroadcast.__table__).values(delivered_at=None, lease_until=None, outcome=None))


def test_a_broadcast_left_by_a_process_killed_after_the_commit_is_delivered_by_the_worker(
        tmp_path: Path, make_engine: Callable[..., Engine], db_url: str, cli: Callable[..., Any]) -> None:
    engine = engine_with(tmp_path, make_engine, {"waiter": WAITER, "starter": STARTER, "thrower": THROWER,
                                                 "repeater": REPEATER})
    waiting = engine.start("waiter", {}, actor="agent:a")
    engine.complete(waiting.id, "submit", {}, actor="agent:a")
    watching = engine.start("repeater", {}, actor="agent:a")
    throwing = engine.start("thrower", {}, actor="agent:a")
    home = tmp_path / "home"
    hold = tmp_path / "holding"
    # The throwing completion, in its own process, stops after its commit and before the broadcast: kill -9.
    completing = subprocess.Popen(
        [sys.executable, "-m", "tiergate", "complete", throwing.id, "approve", "--evidence", "{}",
         "--actor", "human:alice", "--json"], cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(db_url, TIERGATE_TEST_SIGNAL_HOLD=str(hold), TIERGATE_SIGNAL_LEASE_SECONDS="0"))
    while not hold.exists():
        assert completing.poll() is None, completing.communicate()
        time.sleep(0.05)
    os.kill(completing.pid, signal.SIGKILL)
    completing.wait(timeout=60)

    assert ready(engine, throwing.id) == ["follow_up"]        # the move is committed, its throw logged
    [thrown] = [e["detail"] for e in engine.log(throwing.id) if e["event"] == "signal_thrown"]
    assert ready(engine, waiting.id) == [] and received(engine, waiting.id) == []
    assert engine.runs(process="starter") == [] and _rows(engine, SignalDelivery) == []
    shown = cli("signals", "--json", home=home)
    assert shown.returncode == 0, shown
    [pending] = shown.json["data"]["broadcasts"]
    assert shown.json["data"]["pending"] == 1
    assert (pending["broadcast"], pending["signal"], pending["run"], pending["element"], pending["sender"],
            pending["delivered_at"]) == (thrown["broadcast"], "go_live", throwing.id, "announce", "human:alice", None)
    human = cli("signals", home=home)
    assert human.returncode == 0 and "go_live" in human.stdout and "pending" in human.stdout, human

    worker = subprocess.run([sys.executable, "-m", "tiergate", "worker", "--once", "--json"], cwd=home,
                            env=_env(db_url), capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stderr
    [fired] = json.loads(worker.stdout)["data"]["fired"]
    assert (fired["run"], fired["process"], fired["events"], fired["broadcast"]["broadcast"],
            fired["broadcast"]["reached"]) == (throwing.id, "thrower", ["signal_broadcast"], thrown["broadcast"], 3)
    assert ready(engine, waiting.id) == ["deploy"]
    [detail] = received(engine, waiting.id)
    assert (detail["sender"], detail["thrown_by"]) == ("human:alice", {"run": throwing.id, "element": "announce"})
    assert ready(engine, watching.id) == ["notify", "work"] and len(received(engine, watching.id)) == 1
    [started] = engine.runs(process="starter")
    assert ready(engine, started["id"]) == ["prepare"]
    assert cli("signals", "--json", home=home).json["data"]["pending"] == 0

    again = subprocess.run([sys.executable, "-m", "tiergate", "worker", "--once", "--json"], cwd=home,
                           env=_env(db_url), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["data"]["fired"] == [], again
    assert len(received(engine, watching.id)) == 1 and len(engine.runs(process="starter")) == 1
    assert engine.verify_log()["ok"] is True


def test_a_broadcast_delivered_again_reaches_no_run_twice(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_with(tmp_path, make_engine, {"starter": STARTER, "thrower": THROWER, "repeater": REPEATER})
    watching = [engine.start("repeater", {}, actor="agent:a") for _ in range(3)]
    throwing = engine.start("thrower", {}, actor="agent:a")
    engine.complete(throwing.id, "approve", {}, actor="human:alice")
    for run in watching:
        assert len(received(engine, run.id)) == 1 and ready(engine, run.id) == ["notify", "work"]
    late = engine.start("repeater", {}, actor="agent:a")       # began waiting after the throw
    _undeliver(engine)
    [fired] = run_pass(engine)
    assert fired.broadcast is not None and fired.broadcast["reached"] == 0, fired
    for run in watching:     # still waiting for go_live, yet not reached twice by the one broadcast
        assert len(received(engine, run.id)) == 1
    assert received(engine, late.id) == []                  # it did not exist when the signal was thrown
    assert len(engine.runs(process="starter")) == 1
    [row] = _rows(engine, SignalBroadcast)
    assert row.delivered_at is not None and row.attempts == 1
    assert sorted(r.target for r in _rows(engine, SignalDelivery)) == sorted(
        [r.id for r in watching] + ["process:starter", engine.runs(process="starter")[0]["id"]])


def test_two_deliverers_at_once_reach_each_run_once(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_with(tmp_path, make_engine, {"thrower": THROWER, "repeater": REPEATER})
    watching = [engine.start("repeater", {}, actor="agent:a") for _ in range(6)]
    throwing = engine.start("thrower", {}, actor="agent:a")
    engine.complete(throwing.id, "approve", {}, actor="human:alice")
    [row] = _rows(engine, SignalBroadcast)
    with engine.db.write() as conn:       # reached no one yet: as if its thrower died at once
        conn.execute(sa.delete(SignalDelivery.__table__))
        conn.execute(sa.update(SignalBroadcast.__table__).values(delivered_at=None, lease_until=None))
    for run in watching:                  # the first delivery's receipts stay in the log: count from here
        assert len(received(engine, run.id)) == 1
    deliverers = [make_engine(tmp_path / "home") for _ in range(2)]
    outcomes: list[Any] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(2)

    def deliver(one: Engine) -> None:
        try:
            gate.wait(timeout=60)
            outcomes.append(signals.deliver(one, row.id))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=deliver, args=(one,)) for one in deliverers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    reached = sorted(run for outcome in outcomes if outcome is not None for run in outcome["moved"])
    assert reached == sorted(r.id for r in watching)      # between them, each run once
    for run in watching:
        assert len(received(engine, run.id)) == 2           # the first delivery's, and one more
    assert len(_rows(engine, SignalDelivery)) == len(watching)


def test_the_worker_leaves_a_broadcast_its_thrower_still_holds(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    from datetime import timedelta

    engine = engine_with(tmp_path, make_engine, {"thrower": THROWER, "repeater": REPEATER})
    watching = engine.start("repeater", {}, actor="agent:a")
    throwing = engine.start("thrower", {}, actor="agent:a")
    engine.complete(throwing.id, "approve", {}, actor="human:alice")
    now = engine.clock()
    with engine.db.write() as conn:       # as if its thrower were still delivering it, held for a minute
        conn.execute(sa.delete(SignalDelivery.__table__))
        conn.execute(sa.update(SignalBroadcast.__table__).values(delivered_at=None, lease_until=now
                                                                  + timedelta(seconds=60)))
    assert run_pass(engine, now=now + timedelta(seconds=30)) == []
    assert signals.pending(engine)["pending"] == 1 and len(received(engine, watching.id)) == 1
    [fired] = run_pass(engine, now=now + timedelta(seconds=61))
    assert fired.broadcast is not None and fired.broadcast["moved"] == [watching.id]
    assert signals.pending(engine)["pending"] == 0 and len(received(engine, watching.id)) == 2


def test_the_worker_deletes_a_broadcast_a_week_after_it_was_delivered(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    from datetime import timedelta

    engine = engine_with(tmp_path, make_engine, {"thrower": THROWER, "repeater": REPEATER})
    engine.start("repeater", {}, actor="agent:a")
    throwing = engine.start("thrower", {}, actor="agent:a")
    engine.complete(throwing.id, "approve", {}, actor="human:alice")
    [row] = _rows(engine, SignalBroadcast)
    assert len(_rows(engine, SignalDelivery)) == 1
    assert run_pass(engine, now=engine.clock() + timedelta(days=6)) == [] and len(_rows(engine, SignalBroadcast)) == 1
    assert run_pass(engine, now=engine.clock() + timedelta(days=8)) == []
    assert _rows(engine, SignalBroadcast) == [] and _rows(engine, SignalDelivery) == []
    assert signals.pending(engine, all_=True)["broadcasts"] == []


def _fail_saves_of(engine: Engine, run_id: str) -> None:
    """A trigger of the database itself that fails every save of ``run_id`` (as a broken disk would)."""
    with engine.db.write() as conn:
        if engine.db.is_sqlite:
            conn.exec_driver_sql(f"CREATE TRIGGER fail_save BEFORE UPDATE ON runs WHEN OLD.id = '{run_id}' "
                                 "BEGIN SELECT RAISE(ABORT, 'the disk failed under this run (a test)'); END")
        else:
            conn.exec_driver_sql("CREATE FUNCTION fail_save() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                 "RAISE EXCEPTION 'the disk failed under this run (a test)'; END $$")
            conn.exec_driver_sql(f"CREATE TRIGGER fail_save BEFORE UPDATE ON runs FOR EACH ROW "
                                 f"WHEN (OLD.id = '{run_id}') EXECUTE FUNCTION fail_save()")


def test_a_signal_sent_while_the_database_fails_midway_names_its_broadcast_and_the_worker_finishes_it(
        tmp_path: Path, make_engine: Callable[..., Engine], db_url: str, cli: Callable[..., Any]) -> None:
    """`tiergate signal` reaches the first waiting run, then the database fails on the second: the answer is
    database_error naming the broadcast (never a traceback), `tiergate signals` lists it pending, and once
    the database is back the worker reaches the others, none twice."""
    engine = engine_with(tmp_path, make_engine, {"waiter": WAITER, "starter": STARTER})
    runs = sorted(engine.start("waiter", {}, actor="agent:a").id for _ in range(2))  # reached oldest id first
    for run_id in runs:
        engine.complete(run_id, "submit", {}, actor="agent:a")
    _fail_saves_of(engine, runs[1])
    home = tmp_path / "home"
    sent = subprocess.run([sys.executable, "-m", "tiergate", "signal", "go_live", "--actor", "human:bob", "--json"],
                          cwd=home, env=_env(db_url, TIERGATE_SIGNAL_LEASE_SECONDS="0"), capture_output=True,
                          text=True, timeout=300)
    assert sent.returncode == 1 and "Traceback" not in sent.stderr, sent
    error = json.loads(sent.stdout)["error"]
    [pending] = cli("signals", "--json", home=home).json["data"]["broadcasts"]
    assert error["code"] == "database_error" and error["details"]["broadcast"] == pending["broadcast"], error
    assert error["message"].startswith(f"signal 'go_live' is recorded as broadcast {pending['broadcast']}, but the "
                                       "database failed while it was being delivered")
    assert "being delivered (the disk failed under this run (a test)). Some runs may have been reached. Do not send " \
        "the signal again" in error["message"] and "tiergate signals" in error["message"]
    assert "run the command again" not in error["message"].lower()  # it was recorded: a new one is another broadcast
    assert (pending["sender"], pending["from_outside"], pending["delivered_at"]) == ("human:bob", True, None)
    assert ready(engine, runs[0]) == ["deploy"] and ready(engine, runs[1]) == []  # half delivered
    assert engine.runs(process="starter") == []

    with engine.db.write() as conn:  # the database is back
        conn.exec_driver_sql("DROP TRIGGER fail_save" + ("" if engine.db.is_sqlite else " ON runs"))
    worker = subprocess.run([sys.executable, "-m", "tiergate", "worker", "--once", "--json"], cwd=home,
                            env=_env(db_url), capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stderr
    assert ready(engine, runs[1]) == ["deploy"] and len(engine.runs(process="starter")) == 1
    assert [len(received(engine, run_id)) for run_id in runs] == [1, 1]  # the first one not reached twice
    assert cli("signals", "--json", home=home).json["data"]["pending"] == 0
    assert engine.verify_log()["ok"] is True
