"""Tier 1 timers and `tiergate worker`: due times, escalation, several workers, kill -9.

Runs are started on a fixed clock in the past, so their timers are due when a worker (with the
real clock, or a given `now`) looks; nothing in these tests waits for time to pass.
"""

from __future__ import annotations

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

from support import BACKEND, CLIResult
from tier1_helpers import bpmn, chain, flow, tier1_home, user
from tiergate.engine import Engine
from tiergate.log import format_time, utc
from tiergate.store.tables import Run
from tiergate.worker import run_pass

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def _timer(timer_id: str, attached: str, kind: str, value: str, interrupting: bool = True) -> str:
    cancel = "" if interrupting else ' cancelActivity="false"'
    return (f'<bpmn:boundaryEvent id="{timer_id}" attachedToRef="{attached}"{cancel}><bpmn:timerEventDefinition>'
            f'<bpmn:{kind}>{value}</bpmn:{kind}></bpmn:timerEventDefinition></bpmn:boundaryEvent>')


APPROVAL = bpmn("approval", (
    '<bpmn:startEvent id="start"/>' + user("approve", "Approve the release")
    + _timer("remind_approver", "approve", "timeDuration", "PT4H", interrupting=False)
    + _timer("approval_overdue", "approve", "timeDuration", "PT48H")
    + user("nudge", "Nudge the approver") + user("escalate", "Decide in place of the approver")
    + '<bpmn:endEvent id="end"/><bpmn:endEvent id="nudged"/>'
    + chain("start", "approve", "end") + flow("f_remind", "remind_approver", "nudge") + chain("nudge", "nudged")
    + flow("f_overdue", "approval_overdue", "escalate", deviation=True) + flow("f_esc_end", "escalate", "end")))


def _engine_at(make_engine: Callable[..., Engine], home: Any, moment: datetime) -> Engine:
    return make_engine(home, clock=lambda: moment)


def _due_at(engine: Engine, run_id: str) -> datetime | None:
    runs = Run.__table__
    with engine.db.read() as conn:
        value = conn.execute(sa.select(runs.c.due_at).where(runs.c.id == run_id)).scalar()
    return utc(value) if value is not None else None


def _events(engine: Engine, run_id: str) -> list[tuple[str | None, str]]:
    return [(e["step"], e["event"]) for e in engine.log(run_id)]


@pytest.fixture
def approval_home(tmp_path: Path) -> Any:
    return tier1_home(tmp_path / "home", {"approval": APPROVAL})


def test_due_times_are_kept_per_run_and_timers_fire_in_order(approval_home: Any,
                                                              make_engine: Callable[..., Engine]) -> None:
    engine = _engine_at(make_engine, approval_home, T0)
    run = engine.start("approval", {}, actor="agent:a")
    assert _due_at(engine, run.id) == T0 + timedelta(hours=4)
    assert run_pass(engine, now=T0 + timedelta(hours=3)) == []
    fired = run_pass(engine, now=T0 + timedelta(hours=5))
    assert [(f.run, f.events) for f in fired] == [(run.id, ["timer_fired", "escalated", "step_ready"])]
    assert sorted(s.id for s in engine.status(run.id).ready_steps) == ["approve", "nudge"]
    assert _due_at(engine, run.id) == T0 + timedelta(hours=48)
    log = engine.log(run.id)
    timer = next(e for e in log if e["event"] == "timer_fired")
    assert (timer["step"], timer["actor"]) == ("approve", "system:tiergate")
    assert timer["detail"] == {"timer": "remind_approver", "task": "approve", "interrupting": False,
                               "due": format_time(T0 + timedelta(hours=4))}
    escalated = next(e for e in log if e["event"] == "escalated")
    assert escalated["detail"] == {"task": "approve", "timer": "remind_approver", "flows": ["f_remind"],
                                   "to": ["nudge"], "interrupting": False}
    assert log[-1]["step"] == "nudge" and log[-1]["detail"] == {}
    # Two days on, the interrupting timer takes the approval away and escalates, off the expected path.
    fired = run_pass(engine, now=T0 + timedelta(hours=49))
    assert fired[0].events == ["timer_fired", "escalated", "step_skipped", "step_ready"]
    assert sorted(s.id for s in engine.status(run.id).ready_steps) == ["escalate", "nudge"]
    skipped = [e for e in engine.log(run.id) if e["event"] == "step_skipped"][-1]
    assert (skipped["step"], skipped["detail"]) == ("approve", {"reason": "interrupted by timer 'approval_overdue'"})
    ready = engine.log(run.id)[-1]
    assert (ready["step"], ready["detail"]) == ("escalate", {"off_path": True, "flow": "f_overdue"})
    assert _due_at(engine, run.id) is None
    assert run_pass(engine, now=T0 + timedelta(days=30)) == []
    engine.complete(run.id, "nudge", {}, actor="agent:a")
    assert engine.complete(run.id, "escalate", {}, actor="human:alice").status == "completed"
    assert engine.verify_log()["ok"] is True


def test_completing_in_time_cancels_the_timers(approval_home: Any, make_engine: Callable[..., Engine]) -> None:
    engine = _engine_at(make_engine, approval_home, T0)
    run = engine.start("approval", {}, actor="agent:a")
    done = engine.complete(run.id, "approve", {}, actor="human:alice")
    assert done.status == "completed" and _due_at(engine, run.id) is None
    assert run_pass(engine, now=T0 + timedelta(days=3)) == []
    assert "timer_fired" not in [e for _, e in _events(engine, run.id)]


@pytest.mark.parametrize("kind, value, due", [
    ("timeDuration", "P2D", T0 + timedelta(days=2)),
    ("timeDuration", "PT1H30M", T0 + timedelta(minutes=90)),
    ("timeDate", "2026-02-01T09:00:00Z", datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)),
    ("timeDate", "2026-02-01T10:00:00+01:00", datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)),
    ("timeDate", "2026-02-01T09:00:00", datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)),
    ("timeDuration", '"PT" + str(hours) + "H"', T0 + timedelta(hours=6)),
    ("timeDuration", "review_period", T0 + timedelta(days=3)),
    # Dates and durations as values (tiergate.bpmn.datetimes); datetime.now() is the engine's clock.
    ("timeDuration", "timedelta(hours=hours, minutes=30)", T0 + timedelta(hours=6, minutes=30)),
    ("timeDate", "datetime.now() + timedelta(days=1)", T0 + timedelta(days=1)),
    ("timeDate", "datetime(2026, 2, 1, 9)", datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)),
])
def test_timer_values_as_modelers_write_them(tmp_path: Path, make_engine: Callable[..., Engine], kind: str,
                                             value: str, due: datetime) -> None:
    xml = bpmn("timed", '<bpmn:startEvent id="start"/>' + user("work") + _timer("deadline", "work", kind, value)
               + user("late") + '<bpmn:endEvent id="end"/>' + chain("start", "work", "end")
               + flow("f_late", "deadline", "late") + flow("f_late_end", "late", "end"))
    engine = _engine_at(make_engine, tier1_home(tmp_path / "home", {"timed": xml}), T0)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("timed", {"hours": 6, "review_period": "P3D"}, actor="agent:a")
    assert _due_at(engine, run.id) == due
    assert run_pass(engine, now=due - timedelta(seconds=1)) == []
    assert run_pass(engine, now=due)[0].events[0] == "timer_fired"
    assert [s.id for s in engine.status(run.id).ready_steps] == ["late"]


@pytest.mark.parametrize("cycle", ["R3/PT1H", "(3, timedelta(hours=1))"])
def test_a_cycle_fires_its_count_and_stops(tmp_path: Path, make_engine: Callable[..., Engine], cycle: str) -> None:
    # (count, timedelta) is how SpiffWorkflow's older processes write a cycle.
    xml = bpmn("cycle", '<bpmn:startEvent id="start"/>' + user("work")
               + _timer("every_hour", "work", "timeCycle", cycle, interrupting=False)
               + '<bpmn:scriptTask id="count"><bpmn:script>pings = pings + 1</bpmn:script></bpmn:scriptTask>'
               + '<bpmn:endEvent id="pinged"/><bpmn:endEvent id="end"/>' + chain("start", "work", "end")
               + flow("f_ping", "every_hour", "count") + chain("count", "pinged", prefix="p"))
    engine = _engine_at(make_engine, tier1_home(tmp_path / "home", {"cycle": xml}), T0)
    run = engine.start("cycle", {"pings": 0}, actor="agent:a")
    for hour in (1, 2, 3):
        assert _due_at(engine, run.id) == T0 + timedelta(hours=hour)
        assert run_pass(engine, now=T0 + timedelta(hours=hour))[0].events[0] == "timer_fired"
    assert _due_at(engine, run.id) is None
    assert run_pass(engine, now=T0 + timedelta(hours=10)) == []
    fired = [e for e in engine.log(run.id) if e["event"] == "timer_fired"]
    assert [e["detail"]["cycle"] for e in fired] == [True, True, True]
    assert engine.complete(run.id, "work", {}, actor="agent:a").status == "completed"


def test_the_worker_reads_only_runs_that_are_due(approval_home: Any, make_engine: Callable[..., Engine]) -> None:
    engine = _engine_at(make_engine, approval_home, T0)
    due = [engine.start("approval", {}, actor="agent:a").id for _ in range(3)]
    later = make_engine(approval_home, clock=lambda: T0 + timedelta(days=5))
    not_due = [later.start("approval", {}, actor="agent:a").id for _ in range(3)]
    seen: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append(f"{statement} {parameters}")

    sa.event.listen(engine.db.engine, "before_cursor_execute", watch)
    fired = run_pass(engine, now=T0 + timedelta(hours=5))
    sa.event.remove(engine.db.engine, "before_cursor_execute", watch)
    assert sorted(f.run for f in fired) == sorted(due)
    for run_id in not_due:
        assert not any(run_id in text for text in seen), run_id
    assert all(_due_at(engine, r) == T0 + timedelta(days=5, hours=4) for r in not_due)


def test_worker_once_from_the_command_line(approval_home: Any, make_engine: Callable[..., Engine],
                                           cli: Callable[..., CLIResult]) -> None:
    engine = _engine_at(make_engine, approval_home, T0)  # long ago: both timers are due now
    run = engine.start("approval", {}, actor="agent:a")
    result = cli("worker", "--once", "--json", home=approval_home)
    assert result.returncode == 0, result
    fired = result.json["data"]["fired"]
    assert [(f["run"], f["status"]) for f in fired] == [(run.id, "active")]
    assert fired[0]["events"].count("timer_fired") == 2 and "escalated" in fired[0]["events"]
    assert sorted(s.id for s in engine.status(run.id).ready_steps) == ["escalate", "nudge"]
    again = cli("worker", "--once", home=approval_home)
    assert again.returncode == 0 and "no timers due" in again.stdout


# --- several workers, and workers that die --------------------------------------------------

def _worker_env(db_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    env.update({"TIERGATE_DATABASE_URL": db_url, "NO_COLOR": "1", **(extra or {})})
    return env


def _spawn_worker(home: Any, db_url: str, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tiergate", "worker", "--once", "--json"],
                            cwd=home.root, env=_worker_env(db_url, extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


def _fired_per_run(engine: Engine, runs: list[str]) -> dict[str, int]:
    return {run_id: sum(1 for e in engine.log(run_id) if e["event"] == "timer_fired") for run_id in runs}


def test_several_workers_fire_each_timer_once(approval_home: Any, make_engine: Callable[..., Engine],
                                              db_url: str) -> None:
    engine = _engine_at(make_engine, approval_home, T0)
    runs = [engine.start("approval", {}, actor="agent:a").id for _ in range(16)]
    workers = [_spawn_worker(approval_home, db_url) for _ in range(4)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    import json

    taken = [f["run"] for out, _ in outputs for f in json.loads(out)["data"]["fired"]]
    assert sorted(taken) == sorted(runs)  # every run by exactly one worker
    assert _fired_per_run(engine, runs) == {r: 2 for r in runs}
    assert engine.verify_log()["ok"] is True


@pytest.mark.skipif(BACKEND != "postgresql", reason="SKIP LOCKED is PostgreSQL's; SQLite serialises writers")
def test_a_worker_skips_the_run_another_holds_and_kill_9_loses_nothing(approval_home: Any, tmp_path: Path,
                                                                        make_engine: Callable[..., Engine],
                                                                        db_url: str) -> None:
    engine = _engine_at(make_engine, approval_home, T0)
    runs = [engine.start("approval", {}, actor="agent:a").id for _ in range(6)]
    hold = tmp_path / "holding"
    holder = _spawn_worker(approval_home, db_url, {"TIERGATE_TEST_WORKER_HOLD": str(hold)})
    _wait_for(hold, holder)
    other = _spawn_worker(approval_home, db_url)
    out, err = other.communicate(timeout=300)  # does not wait for the held row
    assert other.returncode == 0, err
    import json

    taken = [f["run"] for f in json.loads(out)["data"]["fired"]]
    assert len(taken) == 5
    held = next(r for r in runs if r not in taken)
    assert _fired_per_run(engine, [held]) == {held: 0}
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    last = _spawn_worker(approval_home, db_url)
    out, err = last.communicate(timeout=300)
    assert last.returncode == 0, err
    assert [f["run"] for f in json.loads(out)["data"]["fired"]] == [held]
    assert _fired_per_run(engine, runs) == {r: 2 for r in runs}
    assert engine.verify_log()["ok"] is True


def test_kill_9_mid_pass_loses_nothing_and_fires_nothing_twice(approval_home: Any, tmp_path: Path,
                                                                make_engine: Callable[..., Engine],
                                                                db_url: str) -> None:
    engine = _engine_at(make_engine, approval_home, T0)
    runs = [engine.start("approval", {}, actor="agent:a").id for _ in range(4)]
    hold = tmp_path / "holding"
    worker = _spawn_worker(approval_home, db_url, {"TIERGATE_TEST_WORKER_HOLD": f"{hold}:3"})
    _wait_for(hold, worker)  # two runs committed, the third claimed and being worked on
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=60)
    counts = _fired_per_run(engine, runs)
    assert sorted(counts.values()) == [0, 0, 2, 2]
    versions_before = {r: _version(engine, r) for r in runs}
    again = _spawn_worker(approval_home, db_url)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert _fired_per_run(engine, runs) == {r: 2 for r in runs}
    for run_id in runs:  # the runs fired before the kill were not touched again
        if counts[run_id] == 2:
            assert _version(engine, run_id) == versions_before[run_id]
    assert engine.verify_log()["ok"] is True


def _version(engine: Engine, run_id: str) -> int:
    with engine.db.read() as conn:
        return int(conn.execute(sa.text("SELECT version FROM runs WHERE id = :i"), {"i": run_id}).scalar())


def _summary_lag(engine: Engine) -> int:
    """Log entries the metrics summary has not folded yet."""
    with engine.db.read() as conn:
        entries = conn.execute(sa.text("SELECT count(*) FROM log_entries")).scalar_one()
        folded = conn.execute(sa.text("SELECT entries FROM summary_fold")).scalar_one()
    return int(entries) - int(folded)


def test_worker_without_once_polls_until_terminated(approval_home: Any, make_engine: Callable[..., Engine],
                                                    db_url: str) -> None:
    engine = _engine_at(make_engine, approval_home, T0)
    run = engine.start("approval", {}, actor="agent:a")
    proc = subprocess.Popen([sys.executable, "-m", "tiergate", "worker", "--interval", "0.2", "--json"],
                            cwd=approval_home.root, env=_worker_env(db_url), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    while _fired_per_run(engine, [run.id])[run.id] < 2:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    # Between passes it folds the log into the metrics summary: it catches up with the log.
    deadline = time.monotonic() + 60
    while _summary_lag(engine) > 0:
        assert proc.poll() is None and time.monotonic() < deadline, "the worker did not fold the log"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[0].startswith('{"ok": true')


def test_intermediate_timers_and_timers_inside_subprocesses(tmp_path: Path,
                                                            make_engine: Callable[..., Engine]) -> None:
    xml = bpmn("wait", '<bpmn:startEvent id="start"/>' + user("a")
               + '<bpmn:intermediateCatchEvent id="pause"><bpmn:timerEventDefinition><bpmn:timeDuration>P1D'
                 '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
               + '<bpmn:subProcess id="sub"><bpmn:startEvent id="ss"/>' + user("b")
               + _timer("sb", "b", "timeDuration", "PT1H") + user("c") + '<bpmn:endEvent id="se"/>'
               + chain("ss", "b", "se", prefix="s") + flow("sfc", "sb", "c") + flow("sfce", "c", "se")
               + '</bpmn:subProcess><bpmn:endEvent id="end"/>' + chain("start", "a", "pause", "sub", "end"))
    engine = _engine_at(make_engine, tier1_home(tmp_path / "home", {"wait": xml}), T0)
    run = engine.start("wait", {}, actor="agent:a")
    assert engine.complete(run.id, "a", {}, actor="agent:a").ready_steps == []
    assert _due_at(engine, run.id) == T0 + timedelta(days=1)
    assert run_pass(engine, now=T0 + timedelta(days=1))[0].events == ["timer_fired", "step_ready"]
    fired = engine.log(run.id)[-2]
    assert (fired["step"], fired["detail"]["timer"], fired["detail"]["task"]) == ("pause", "pause", None)
    assert _due_at(engine, run.id) == T0 + timedelta(days=1, hours=1)
    events = run_pass(engine, now=T0 + timedelta(days=2))[0].events
    assert events == ["timer_fired", "escalated", "step_skipped", "step_ready"]
    assert engine.complete(run.id, "c", {}, actor="agent:a").status == "completed"
