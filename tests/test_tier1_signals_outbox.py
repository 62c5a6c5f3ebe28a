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
