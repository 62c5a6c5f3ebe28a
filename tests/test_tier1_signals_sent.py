"""A signal sent from outside (`tiergate signal`, the API, MCP) goes through the outbox: recorded and
committed before it reaches any run, so a process killed midway leaves it pending, and the worker
reaches the runs not reached yet, none twice, with the data it was sent with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from test_tier1_signals import STARTER, engine_with, received
from test_tier1_signals_outbox import REPEATER, _env, _rows

from tiergate.engine import Engine
from tiergate.store.tables import SignalBroadcast, SignalDelivery


def test_a_signal_sent_by_a_process_killed_midway_is_finished_by_the_worker(
        tmp_path: Path, make_engine: Callable[..., Engine], db_url: str, cli: Callable[..., Any]) -> None:
    engine = engine_with(tmp_path, make_engine, {"starter": STARTER, "repeater": REPEATER})
    watching = [engine.start("repeater", {}, actor="agent:a").id for _ in range(3)]
    home = tmp_path / "home"
    hold = tmp_path / "midway"
    # `tiergate signal`, in its own process, stops once it has reached its first run: kill -9.
    sending = subprocess.Popen(
        [sys.executable, "-m", "tiergate", "signal", "go_live", "--data", '{"release": "R-9"}',
         "--actor", "human:bob", "--json"], cwd=home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(db_url, TIERGATE_TEST_SIGNAL_MIDWAY=str(hold), TIERGATE_SIGNAL_LEASE_SECONDS="0"))
    while not hold.exists():
        assert sending.poll() is None, sending.communicate()
        time.sleep(0.05)
    os.kill(sending.pid, signal.SIGKILL)
    sending.wait(timeout=60)

    reached_first = [run for run in watching if received(engine, run)]
    assert len(reached_first) == 1                         # killed midway: one run reached, the others not
    assert engine.runs(process="starter") == []
    [key] = _rows(engine, SignalDelivery)
    assert key.run_id == reached_first[0]
    shown = cli("signals", "--json", home=home)
    assert shown.returncode == 0, shown
    [pending] = shown.json["data"]["broadcasts"]
    assert shown.json["data"]["pending"] == 1
    assert (pending["broadcast"], pending["signal"], pending["run"], pending["from_outside"], pending["sender"],
            pending["delivered_at"]) == (key.broadcast_id, "go_live", None, True, "human:bob", None)
    human = cli("signals", home=home)
    assert human.returncode == 0 and "sent by human:bob" in human.stdout and "pending" in human.stdout, human

    worker = subprocess.run([sys.executable, "-m", "tiergate", "worker", "--once", "--json"], cwd=home,
                            env=_env(db_url), capture_output=True, text=True, timeout=300, check=False)
    assert worker.returncode == 0, worker.stderr
    [fired] = json.loads(worker.stdout)["data"]["fired"]
    assert (fired["run"], fired["events"], fired["broadcast"]["broadcast"], fired["broadcast"]["reached"]) == (
        "", ["signal_broadcast"], key.broadcast_id, 3)         # the two runs left and the starter's new run
    assert sorted(fired["broadcast"]["moved"]) == sorted(set(watching) - set(reached_first))
    for run in watching:                                    # each reached once, with the data sent
        [detail] = received(engine, run)
        assert (detail["signal"], detail["sender"], detail["data"]) == ("go_live", "human:bob", {"release": "R-9"})
    [started] = engine.runs(process="starter")
    assert engine.status(started["id"]).data["release"] == "R-9"
    [row] = _rows(engine, SignalBroadcast)
    assert row.delivered_at is not None and row.run_id is None and row.outcome["reached"] == 3

    again = subprocess.run([sys.executable, "-m", "tiergate", "worker", "--once", "--json"], cwd=home,
                           env=_env(db_url), capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0 and json.loads(again.stdout)["data"]["fired"] == [], again
    assert all(len(received(engine, run)) == 1 for run in watching) and len(engine.runs(process="starter")) == 1
    assert engine.verify_log()["ok"] is True


def test_a_signal_sent_answers_as_before_with_its_broadcast_delivered(
        tmp_path: Path, make_engine: Callable[..., Engine], cli: Callable[..., Any]) -> None:
    engine = engine_with(tmp_path, make_engine, {"starter": STARTER, "repeater": REPEATER})
    watching = engine.start("repeater", {}, actor="agent:a").id
    done = cli("signal", "go_live", "--actor", "agent:ci", "--json", home=tmp_path / "home")
    assert done.returncode == 0, done
    answer = done.json["data"]
    assert (answer["reached"], answer["moved"], len(answer["started"])) == (2, [watching], 1)
    [row] = _rows(engine, SignalBroadcast)
    assert (row.id, row.run_id, row.sender, row.data, row.outcome["reached"]) == (
        answer["broadcast"], None, "agent:ci", {}, 2)
    assert row.delivered_at is not None
    assert cli("signals", "--json", home=tmp_path / "home").json["data"]["pending"] == 0
    human = cli("signal", "go_live", "--actor", "agent:ci", home=tmp_path / "home")
    assert human.returncode == 0 and "broadcast " in human.stdout, human
    with engine.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(SignalBroadcast.__table__)).scalar() == 2
