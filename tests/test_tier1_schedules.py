"""Timer-cycle start events: `tiergate worker` starts a run of the deployed process at each due time.

The engine's clock is a fixed moment moved by the test and passes run at given moments
(`run_pass(engine, now=...)`), as the other timer tests do; nothing waits for time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from support import BACKEND
from test_tier1_check import line_of, problems_of, spread
from tier1_helpers import bpmn, chain, props, tier1_home, user
from tiergate import doorlog
from tiergate.engine import Engine
from tiergate.log import format_time
from tiergate.schedules import HOLD_ENV, listing
from tiergate.store.tables import Run, ScheduledStart
from tiergate.worker import run_pass

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def scheduled(cycle: str, title: str = "Do the work", start: str = "start", process: str = "nightly") -> str:
    timer = (f'<bpmn:timerEventDefinition><bpmn:timeCycle>{cycle}</bpmn:timeCycle></bpmn:timerEventDefinition>'
             if cycle else "")
    return bpmn(process, f'<bpmn:startEvent id="{start}">{timer}</bpmn:startEvent>' + user("work", title)
                + '<bpmn:endEvent id="end"/>' + chain(start, "work", "end"))


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def _deployed(tmp_path: Path, make_engine: Callable[..., Engine], cycle: str,
              clock: Clock) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", {"nightly": scheduled(cycle)}), clock=clock)
    assert [p for p in engine.check() if p.severity == "error"] == []
    engine.deploy(actor="human:alice")
    return engine


def _runs(engine: Engine) -> list[str]:
    with engine.db.read() as conn:
        return list(conn.execute(sa.select(Run.__table__.c.id)).scalars())


def _started(engine: Engine, now: datetime) -> list[tuple[str, str | None]]:
    return [(f.process, f.scheduled) for f in run_pass(engine, now=now)]


def test_check_accepts_a_top_level_time_cycle_start() -> None:
    for cycle in ("R/PT1H", "R3/2026-12-01T09:00:00Z/P1D", "R2/P1D"):
        found = [(line, text) for line, severity, text in problems_of(scheduled(cycle, process="p")) if severity == "error"]
        assert found == [], (cycle, found)


def test_check_refuses_an_overlong_cycle_at_its_line() -> None:
    xml = spread(scheduled("R/PT" + "1" * 130 + "S", process="p"))
    found = [(line, text) for line, severity, text in problems_of(xml) if severity == "error"]
    assert [line for line, _ in found] == [line_of(xml, "<bpmn:timeCycle>")], found
    assert "a schedule has at most 120" in found[0][1]


def test_a_finite_cycle_starts_one_run_per_due_time_then_stops(tmp_path: Path,
                                                               make_engine: Callable[..., Engine]) -> None:
    clock = Clock(T0 - timedelta(days=1))
    engine = _deployed(tmp_path, make_engine, "R2/2026-01-05T09:00:00Z/P1D", clock)
    assert _started(engine, T0 - timedelta(seconds=1)) == []
    [item] = listing(engine)
    assert (item["next_due"], item["started"], item["finished"]) == (format_time(T0), 0, False)

    clock.moment = T0
    first = run_pass(engine, now=T0)
    assert [(f.process, f.status, f.events, f.scheduled) for f in first] == [
        ("nightly", "active", ["started"], format_time(T0))]
    assert run_pass(engine, now=T0) == []   # a second pass at the same moment starts nothing
    run_id = first[0].run
    log = engine.log(run_id)
    started = next(e for e in log if e["event"] == "started")
    assert started["actor"] == "system:scheduler"
    assert started["detail"]["scheduled"] == {"start_event": "start", "cycle": "R2/2026-01-05T09:00:00Z/P1D",
                                              "due": format_time(T0), "seq": 0}
    assert [e["event"] for e in log] == ["routed", "started", "timer_fired", "step_ready"]
    info = engine.status(run_id)
    assert (info.started_by, [s.id for s in info.ready_steps]) == ("system:scheduler", ["work"])
    assert engine.complete(run_id, "work", {}, actor="agent:a").status == "completed"

    clock.moment = T0 + timedelta(days=1)
    assert _started(engine, clock.moment) == [("nightly", format_time(T0 + timedelta(days=1)))]
    for later in (T0 + timedelta(days=2), T0 + timedelta(days=30)):
        assert _started(engine, later) == []   # R2: two runs, then no more
    [item] = listing(engine, T0 + timedelta(days=30))
    assert (item["next_due"], item["started"], item["finished"]) == (None, 2, True)
    assert len(_runs(engine)) == 2
    assert engine.verify_log()["ok"] is True


def test_missed_periods_start_one_run_and_the_cycle_goes_on_from_the_latest(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    clock = Clock(T0)
    engine = _deployed(tmp_path, make_engine, "R/PT1H", clock)   # the first due time: an hour after the deployment
    assert listing(engine)[0]["next_due"] == format_time(T0 + timedelta(hours=1))
    assert _started(engine, T0 + timedelta(minutes=59)) == []
    late = T0 + timedelta(hours=5, minutes=30)                  # no worker ran for five due times
    clock.moment = late
    assert _started(engine, late) == [("nightly", format_time(T0 + timedelta(hours=5)))]
    assert _started(engine, late) == []
    assert listing(engine, late)[0]["next_due"] == format_time(T0 + timedelta(hours=6))
    assert _started(engine, T0 + timedelta(hours=6)) == [("nightly", format_time(T0 + timedelta(hours=6)))]
    assert len(_runs(engine)) == 2


def test_two_workers_start_one_run_per_due_time(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    clock = Clock(T0)
    engine = _deployed(tmp_path, make_engine, "R/2026-01-05T09:00:00Z/P1D", clock)
    other = make_engine(tmp_path / "home", clock=clock)
    assert _started(engine, T0) == [("nightly", format_time(T0))]
    assert _started(other, T0) == []
    assert len(_runs(engine)) == 1


def test_a_due_time_already_started_is_not_started_again_after_the_cycle_changes(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """The key (process, start event, due time) is taken: the second start rolls back, leaving no run."""
    clock = Clock(T0)
    engine = _deployed(tmp_path, make_engine, "R/2026-01-05T09:00:00Z/P1D", clock)
    assert _started(engine, T0) == [("nightly", format_time(T0))]
    (tmp_path / "home" / "processes" / "nightly.bpmn").write_text(scheduled("R2/2026-01-05T09:00:00Z/P1D"))
    engine.deploy(actor="human:alice")
    other = make_engine(tmp_path / "home", clock=clock)
    assert _started(other, T0) == []
    assert len(_runs(engine)) == 1
    with engine.db.read() as conn:
        rows = conn.execute(sa.select(ScheduledStart.__table__)).all()
    assert [(r.process_id, r.cycle, r.seq) for r in rows] == [("nightly", "R/2026-01-05T09:00:00Z/P1D", 0)]


def test_the_deployed_version_is_used_and_a_retired_cycle_starts_nothing(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    clock = Clock(T0)
    engine = _deployed(tmp_path, make_engine, "R/2026-01-05T09:00:00Z/P1D", clock)
    first = run_pass(engine, now=T0)[0].run
    bpmn_file = tmp_path / "home" / "processes" / "nightly.bpmn"
    bpmn_file.write_text(scheduled("R/2026-01-05T09:00:00Z/P1D", title="Do the new work"))
    engine.deploy(actor="human:alice")
    clock.moment = T0 + timedelta(days=1)
    second = run_pass(engine, now=clock.moment)[0].run
    assert engine.status(second).ready_steps[0].title == "Do the new work"
    assert engine.status(first).ready_steps[0].title == "Do the work"
    bpmn_file.write_text(scheduled(""))          # the cycle is gone: a plain start event
    engine.deploy(actor="human:alice")
    assert listing(engine) == []
    assert _started(engine, T0 + timedelta(days=5)) == []
    assert len(_runs(engine)) == 2


def test_nothing_is_started_from_drafts(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"nightly": scheduled("R/PT1H")}), clock=Clock(T0))
    assert _started(engine, T0 + timedelta(days=3)) == [] and listing(engine) == []


def test_timers_shows_the_next_due_time(tmp_path: Path, make_engine: Callable[..., Engine],
                                        cli: Callable[..., Any]) -> None:
    engine = _deployed(tmp_path, make_engine, "R3/2030-01-05T09:00:00Z/P1D", Clock(T0))
    engine.close()
    result = cli("timers", "--json", home=tmp_path / "home")
    assert result.returncode == 0, result
    [item] = result.json["data"]["schedules"]
    assert (item["process"], item["cycle"], item["next_due"], item["started"], item["starts_by_then"]) == (
        "nightly", "R3/2030-01-05T09:00:00Z/P1D", "2030-01-05T09:00:00.000000Z", 0, False)
    human = cli("timers", "--at", "2030-01-06T00:00:00Z", home=tmp_path / "home")
    assert human.returncode == 0 and "2030-01-05 09:00" in human.stdout and "nightly" in human.stdout, human


def test_a_worker_killed_mid_start_leaves_the_due_time_to_the_next_pass(tmp_path: Path,
                                                                        make_engine: Callable[..., Engine],
                                                                        db_url: str) -> None:
    """kill -9 after the due time's key was written, before the commit: no run, no key; the next
    worker starts exactly one run for that due time."""
    engine = make_engine(tier1_home(tmp_path / "home", {"nightly": scheduled("R/2020-01-01T00:00:00Z/P1D")}))
    engine.deploy(actor="human:alice")
    hold = tmp_path / "holding"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    env.update({"TIERGATE_DATABASE_URL": db_url, "NO_COLOR": "1"})
    worker = subprocess.Popen([sys.executable, "-m", "tiergate", "worker", "--once", "--json"],
                              cwd=tmp_path / "home", env={**env, HOLD_ENV: str(hold)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    while not hold.exists():
        assert worker.poll() is None, worker.communicate()
        time.sleep(0.05)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=60)
    assert _runs(engine) == []
    with engine.db.read() as conn:
        assert conn.execute(sa.select(ScheduledStart.__table__)).all() == []
    again = subprocess.run([sys.executable, "-m", "tiergate", "worker", "--once", "--json"], cwd=tmp_path / "home",
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    [fired] = json.loads(again.stdout)["data"]["fired"]
    assert (fired["process"], fired["events"]) == ("nightly", ["started"])
    with engine.db.read() as conn:
        [row] = conn.execute(sa.select(ScheduledStart.__table__)).all()
    assert (row.run_id, format_time(row.due_at)) == (fired["run"], fired["scheduled"])
    assert _runs(engine) == [fired["run"]]
    assert engine.status(fired["run"]).started_by == "system:scheduler"


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite serialises writers: the second waits for the lock")
def test_a_second_worker_waits_for_the_key_another_holds_then_starts_the_run_once(
        tmp_path: Path, make_engine: Callable[..., Engine], db_url: str) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"nightly": scheduled("R/2020-01-01T00:00:00Z/P1D")}))
    engine.deploy(actor="human:alice")
    hold = tmp_path / "holding"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    env.update({"TIERGATE_DATABASE_URL": db_url, "NO_COLOR": "1"})
    command = [sys.executable, "-m", "tiergate", "worker", "--once", "--json"]
    holder = subprocess.Popen(command, cwd=tmp_path / "home", env={**env, HOLD_ENV: str(hold)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not hold.exists():
        assert holder.poll() is None, holder.communicate()
        time.sleep(0.05)
    other = subprocess.Popen(command, cwd=tmp_path / "home", env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    os.kill(holder.pid, signal.SIGKILL)   # the other one, waiting on the key or not there yet, takes it
    holder.wait(timeout=60)
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err
    [fired] = json.loads(out)["data"]["fired"]
    assert _runs(engine) == [fired["run"]]
    third = subprocess.run(command, cwd=tmp_path / "home", env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert json.loads(third.stdout)["data"]["fired"] == [], third.stderr
    assert _runs(engine) == [fired["run"]]


def test_tiergate_start_goes_past_a_cycle_start_event_at_once(tmp_path: Path,
                                                              make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"nightly": scheduled("R/PT1H")}), clock=Clock(T0))
    run = engine.start("nightly", {}, actor="agent:a")
    assert [s.id for s in run.ready_steps] == ["work"]
    timer = next(e for e in engine.log(run.id) if e["event"] == "timer_fired")
    assert (timer["step"], timer["detail"]["due"]) == ("start", format_time(T0))
    assert run_pass(engine, now=T0 + timedelta(days=2)) == []   # not deployed: no schedule, and the run waits for no timer
    assert engine.complete(run.id, "work", {}, actor="agent:a").status == "completed"


def test_a_cycle_without_a_date_begins_when_it_was_deployed_as_it_is(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """Redeploying other files, or the process's file with other changes, does not move the schedule on;
    changing the cycle does."""
    clock = Clock(T0)
    home = tier1_home(tmp_path / "home", {"nightly": scheduled("R/PT1H"), "other": scheduled("", process="other")})
    engine = make_engine(home, clock=clock)
    engine.deploy(actor="human:alice")
    clock.moment = T0 + timedelta(minutes=30)
    (tmp_path / "home" / "processes" / "other.bpmn").write_text(scheduled("", title="Other work", process="other"))
    engine.deploy(actor="human:alice")
    assert [(s["process"], s["next_due"]) for s in listing(engine)] == [("nightly", format_time(T0 + timedelta(hours=1)))]
    (tmp_path / "home" / "processes" / "nightly.bpmn").write_text(scheduled("R/PT1H", title="New work"))
    engine.deploy(actor="human:alice")
    assert listing(engine)[0]["next_due"] == format_time(T0 + timedelta(hours=1))
    (tmp_path / "home" / "processes" / "nightly.bpmn").write_text(scheduled("R/PT2H", title="New work"))
    engine.deploy(actor="human:alice")
    assert listing(engine)[0]["next_due"] == format_time(T0 + timedelta(minutes=150))
    assert _started(engine, T0 + timedelta(hours=2)) == []
    assert _started(engine, T0 + timedelta(minutes=150)) == [("nightly", format_time(T0 + timedelta(minutes=150)))]


def test_a_due_time_passed_before_a_new_version_is_started_with_the_version_live_at_the_pass(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """The cycle unchanged: the schedule goes on across the deployment, its runs from the version live now."""
    clock = Clock(T0)
    engine = _deployed(tmp_path, make_engine, "R/2026-01-05T09:00:00Z/P1D", clock)
    assert _started(engine, T0) == [("nightly", format_time(T0))]
    due = T0 + timedelta(days=1)
    clock.moment = due + timedelta(minutes=10)        # due at 09:00; version 2 deployed at 09:10; the pass at 09:20
    (tmp_path / "home" / "processes" / "nightly.bpmn").write_text(
        scheduled("R/2026-01-05T09:00:00Z/P1D", title="Do the new work"))
    engine.deploy(actor="human:alice")
    clock.moment = due + timedelta(minutes=20)
    [started] = run_pass(engine, now=clock.moment)
    assert (started.scheduled, engine.status(started.run).ready_steps[0].title) == (
        format_time(due), "Do the new work")
    deployed = [e["detail"].get("deployment") for e in engine.log(started.run) if e["event"] == "started"]
    assert deployed == [2]


def test_a_changed_cycle_starts_nothing_due_before_it_was_deployed(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """A new cycle on the start event replaces the old one from its deployment: the old one's due time
    not yet started and the new one's due times before the deployment are not started."""
    clock = Clock(T0)
    engine = _deployed(tmp_path, make_engine, "R/2026-01-05T09:00:00Z/P1D", clock)
    assert _started(engine, T0) == [("nightly", format_time(T0))]
    clock.moment = T0 + timedelta(days=1, minutes=5)     # 09:05 on the next day: 09:00 not started yet
    (tmp_path / "home" / "processes" / "nightly.bpmn").write_text(scheduled("R/2026-01-01T10:00:00Z/P1D"))
    engine.deploy(actor="human:alice")
    # Without the floor, the new cycle's latest due time passed (the 5th, 10:00) would start at once.
    assert _started(engine, clock.moment) == []
    [item] = listing(engine, clock.moment)
    assert (item["cycle"], item["next_due"]) == ("R/2026-01-01T10:00:00Z/P1D",
                                                 format_time(T0 + timedelta(days=1, hours=1)))
    assert _started(engine, T0 + timedelta(days=1, hours=1)) == [
        ("nightly", format_time(T0 + timedelta(days=1, hours=1)))]
    assert len(_runs(engine)) == 2


def test_a_cycle_removed_stops_and_deployed_again_begins_anew(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    clock = Clock(T0)
    engine = _deployed(tmp_path, make_engine, "R/2026-01-05T09:00:00Z/P1D", clock)
    assert _started(engine, T0) == [("nightly", format_time(T0))]
    bpmn_file = tmp_path / "home" / "processes" / "nightly.bpmn"
    clock.moment = T0 + timedelta(hours=1)
    bpmn_file.write_text(scheduled(""))                      # removed: no schedule, nothing started
    engine.deploy(actor="human:alice")
    assert listing(engine) == [] and _started(engine, T0 + timedelta(days=3)) == []
    clock.moment = T0 + timedelta(days=3, hours=2)           # back on the 8th at 11:00
    bpmn_file.write_text(scheduled("R/2026-01-05T09:00:00Z/P1D"))
    engine.deploy(actor="human:alice")
    assert _started(engine, clock.moment) == []              # the 8th's 09:00 passed while it was removed
    assert _started(engine, T0 + timedelta(days=4)) == [("nightly", format_time(T0 + timedelta(days=4)))]
    assert len(_runs(engine)) == 2


def test_a_scheduled_start_that_cannot_start_is_recorded_once_and_tried_again(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    inputs = {"type": "object", "required": ["client_id"], "properties": {"client_id": {"type": "string"}}}
    xml = scheduled("R/2026-01-05T09:00:00Z/P1D").replace('isExecutable="true" >', 'isExecutable="true" >'
                                                           + props(inputs=inputs), 1)
    assert "client_id" in xml
    clock = Clock(T0)
    engine = make_engine(tier1_home(tmp_path / "home", {"nightly": xml}), clock=clock)
    engine.deploy(actor="human:alice")
    for _ in range(3):
        [failed] = run_pass(engine, now=T0)
        assert (failed.run, failed.process, failed.scheduled) == ("", "nightly", format_time(T0))
        assert failed.error is not None and "on schedule failed" in failed.error and "client_id" in failed.error
    refusals = [r for r in doorlog.entries(engine) if r["attempt"] == "scheduled_start"]
    assert [(r["actor"], r["code"], r["problem"]) for r in refusals] == [("system:scheduler", "invalid_data", "nightly")]
    assert _runs(engine) == [] and listing(engine)[0]["started"] == 0


def test_check_warns_when_a_scheduled_process_requires_start_inputs() -> None:
    inputs = {"type": "object", "required": ["client_id"], "properties": {"client_id": {"type": "string"}}}
    xml = spread(scheduled("R/PT1H", process="p").replace('isExecutable="true" >',
                                                          'isExecutable="true" >' + props(inputs=inputs), 1))
    found = [(severity, text) for _, severity, text in problems_of(xml) if "empty start data" in text]
    assert found and found[0][0] == "warning" and "the inputs require client_id" in found[0][1], found
