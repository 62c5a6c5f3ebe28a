"""The timer worker: fires Tier 1 timers when they are due (``tiergate worker``).

A pass takes due runs one at a time, oldest due first, each in its own write transaction:
claim the run (``tiergate.store.timers.claim_due_run``: on PostgreSQL ``FOR UPDATE SKIP LOCKED``,
so workers never take the same run and never wait for each other), restore it, fire what is
due and run the engine on to the next people's tasks, then commit the new state, its log
entries (``timer_fired``, ``escalated``, ``step_ready``, ...) and the next due time together.

A worker killed at any point loses nothing: the run it held is rolled back with its
transaction and is still due for the next worker; every run it had committed keeps its next
due time, so nothing fires twice.

Each pass first delivers the signal broadcasts that a crashed process left pending (``tiergate.signals``:
each run reached once by each), then starts the runs that timer-cycle start events have due
(``tiergate.schedules``: one run per process and due time, whatever the number of workers).

    from tiergate.worker import run_pass
    fired = run_pass(Engine(home="."))      # one pass; returns what happened per run
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from tiergate import claims, deployments, testhold
from tiergate.actors import SYSTEM
from tiergate.datastores import StoreConflict
from tiergate.engine import Engine
from tiergate.errors import TiergateError
from tiergate.log import format_time
from tiergate import checkpoints, schedules, signals, webhooks
from tiergate.metrics import summary
from tiergate.runners.base import RunContext
from tiergate.store import runs as store
from tiergate.store.timers import claim_due_run, set_due_at

#: Tests set this to "PATH" or "PATH:N": after claiming its Nth run (default 1), the worker
#: writes PATH and waits inside the open transaction, so it can be killed mid-pass.
HOLD_ENV = "TIERGATE_TEST_WORKER_HOLD"


@dataclass
class Fired:
    run: str
    process: str
    status: str
    events: list[str] = field(default_factory=list)
    error: str | None = None
    #: A run started on schedule (``tiergate.schedules``): the due time it was started for.
    scheduled: str | None = None
    #: A signal thrown by ``run`` that a crash left undelivered, delivered now (``tiergate.signals``).
    broadcast: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("scheduled", "broadcast"):
            if out[key] is None:
                del out[key]
        return out


def _hold(claimed: int) -> None:
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    path, _, nth = spec.partition(":")
    if claimed == int(nth or 1):
        testhold.park(path)


def _fire_one(engine: Engine, seen: list[str], now: datetime | None) -> Fired | None:
    moment = now or engine.clock()
    if engine.db.is_sqlite:
        return _fire_one_outside_the_lock(engine, seen, moment)
    # PostgreSQL: the claimed run's row stays locked while its timers fire; other runs' writers
    # never wait for it (SKIP LOCKED), and no other worker takes the same run.
    with engine.db.write() as conn:
        run_id = claim_due_run(conn, moment, skip=seen)
        if run_id is None:
            return None
        seen.append(run_id)
        _hold(len(seen))
        run = store.get_run(conn, run_id)
        assert run is not None
        runner = engine.runners[run.tier]
        fire = getattr(runner, "fire_timers", None)
        if fire is None:
            set_due_at(conn, run.id, None)
            return Fired(run.id, run.process_id, run.status.value, error="this tier has no timers")
        try:
            definition = engine._pinned(conn, run)
            ctx = RunContext(run_id=run.id, actor=SYSTEM, now=moment, roles=None,
                             stores=engine._stores(run.process_id, run.id))
            transition = fire(definition, run.state, ctx)
        except TiergateError as err:
            return Fired(run.id, run.process_id, run.status.value, error=err.message)
        except Exception as exc:  # noqa: BLE001 - this run is skipped, the pass goes on to the others
            return _unforeseen(run, exc)
        # The data stores the move wrote and the signals it threw (the outbox), kept only with the move:
        # in a savepoint undone if either fails.
        thrown = any(event.event == "signal_thrown" for event in transition.events)
        written = conn.begin_nested() if ctx.stores.written or thrown else None
        if written is not None:
            try:
                ctx.stores.apply(conn, moment)
            except StoreConflict:
                written.rollback()
                return Fired(run.id, run.process_id, run.status.value, error=_STORE_CHANGED)
            engine._enqueue_thrown(conn, run.id, transition.events, SYSTEM, moment)
        deployments.stamp_run(conn, run.id, transition.events)
        if not store.save_transition(conn, run, transition.state, transition.status, transition.events, moment,
                                     ready_for=_ready_key(runner, definition, run.id, transition)):
            if written is not None:
                written.rollback()
            return Fired(run.id, run.process_id, run.status.value, error="the run changed meanwhile; next pass")
        if written is not None:
            written.commit()
        set_due_at(conn, run.id, runner.due_at(transition.state))  # type: ignore[attr-defined]
    engine._broadcast_thrown(run.id, transition.events, SYSTEM)  # committed: its signals go to the other runs
    return Fired(run.id, run.process_id, transition.status.value, [e.event for e in transition.events])


#: A data store the move read and wrote was written by another run meanwhile: nothing was kept.
_STORE_CHANGED = "a data store this run read and wrote changed meanwhile; next pass"


class _Lost(Exception):
    """The run changed while its timers fired: the write is rolled back (a data store written with it too)."""


#: A run that another worker (or a completion) changed while this one fired its timers: not
#: reported; it is looked at again on the next pass if it is still due.
_LOST_RACE = Fired("", "", "")


def _fire_one_outside_the_lock(engine: Engine, seen: list[str], moment: datetime) -> Fired | None:
    """SQLite: its write lock is the whole database's, so the timers fire (scripts, conditions,
    decisions) between a read and a short write that saves the result only if the run is still
    the one read (the optimistic version check); a run changed meanwhile is fired on the next pass."""
    with engine.db.read() as conn:
        run_id = claim_due_run(conn, moment, skip=seen)
        if run_id is None:
            return None
        seen.append(run_id)
        run = store.get_run(conn, run_id)
        assert run is not None
        try:
            definition = engine._pinned(conn, run)
        except TiergateError as err:
            return Fired(run.id, run.process_id, run.status.value, error=err.message)
    runner = engine.runners[run.tier]
    fire = getattr(runner, "fire_timers", None)
    if fire is None:
        with engine.db.write() as conn:
            set_due_at(conn, run.id, None)
        return Fired(run.id, run.process_id, run.status.value, error="this tier has no timers")
    ctx = RunContext(run_id=run.id, actor=SYSTEM, now=moment, roles=None, stores=engine._stores(run.process_id, run.id))
    try:
        transition = fire(definition, run.state, ctx)
    except TiergateError as err:
        return Fired(run.id, run.process_id, run.status.value, error=err.message)
    except Exception as exc:  # noqa: BLE001 - this run is skipped, the pass goes on to the others
        return _unforeseen(run, exc)
    key = _ready_key(runner, definition, run.id, transition)
    try:
        with engine.db.write() as conn:
            _hold(len(seen))
            if ctx.stores.written:
                ctx.stores.apply(conn, moment)
            engine._enqueue_thrown(conn, run.id, transition.events, SYSTEM, moment)
            if not store.save_transition(conn, run, transition.state, transition.status, transition.events, moment,
                                         ready_for=key):
                raise _Lost
            set_due_at(conn, run.id, runner.due_at(transition.state))  # type: ignore[attr-defined]
    except _Lost:
        return _LOST_RACE
    except StoreConflict:
        return Fired(run.id, run.process_id, run.status.value, error=_STORE_CHANGED)
    engine._broadcast_thrown(run.id, transition.events, SYSTEM)  # committed: its signals go to the other runs
    return Fired(run.id, run.process_id, transition.status.value, [e.event for e in transition.events])


#: Runs whose timers failed unforeseen, reported with a traceback once per process (then in a line per pass).
_REPORTED: set[str] = set()


def _unforeseen(run: Any, error: Exception) -> Fired:
    """A run whose timers failed where no check foresaw (a damaged state): an incident
    (``tiergate.incidents``), and the pass goes on to the other due runs."""
    from tiergate import incidents

    if run.id in _REPORTED:
        return Fired(run.id, run.process_id, run.status.value,
                     error=f"its timers failed unforeseen again ({type(error).__name__}); see the first incident")
    if len(_REPORTED) < 10_000:
        _REPORTED.add(run.id)
    incident = incidents.report(error, door="worker", what=f"timers of run {run.id}")
    return Fired(run.id, run.process_id, run.status.value, error=incident.message)


def _ready_key(runner: Any, definition: Any, run_id: str, transition: Any) -> str:
    """The inbox's key of the run's ready steps after its timers fired (``claims.ready_key``)."""
    return claims.ready_key(runner.steps(definition, transition.state, run={"id": run_id}), transition.status)


def run_pass(engine: Engine, *, limit: int | None = None, now: datetime | None = None) -> list[Fired]:
    """Deliver the signal broadcasts left pending by a crash (``tiergate.signals``), start the runs due on
    schedule (timer-cycle start events, ``tiergate.schedules``), then fire
    every timer due by ``now`` (default: the engine's clock), at most ``limit`` runs."""
    seen: list[str] = []
    results = [Fired(b["run"] or "", b["process"] or "", "delivered", ["signal_broadcast"], broadcast=b)
               for b in signals.deliver_pending(engine, now)]
    results += [Fired(s.run, s.process, s.status, ["started"] if s.error is None else [], s.error,
                     scheduled=format_time(s.due)) for s in schedules.run_pass(engine, now)]
    while limit is None or len(results) < limit:
        outcome = _fire_one(engine, seen, now)
        if outcome is None:
            break
        if outcome is not _LOST_RACE:
            results.append(outcome)
    return results


#: The longest wait between passes while the database is away.
MAX_BACKOFF = 60.0


def run_forever(engine: Engine, *, interval: float, limit: int | None = None,
                report: Callable[[list[Fired], datetime], None] | None = None,
                report_error: Callable[[TiergateError], None] | None = None,
                trouble: Callable[[TiergateError, float], None] | None = None) -> None:
    """Pass after pass, ``interval`` seconds apart, until SIGINT or SIGTERM (after the current run).

    After each pass it also folds what was logged since into the log summary (``metrics.summary``)
    and, with a log key set, writes a checkpoint every N entries or minutes (``checkpoints.maybe_write``;
    a failure there goes to ``report_error`` and the timers keep firing). A pass that fails (the
    database is away, locked, full, read-only) is told to ``trouble`` with the seconds until the
    next try: the wait doubles with each failure in a row, up to ``MAX_BACKOFF``, and the worker
    reconnects and carries on once the database answers again. Between passes it also sends the
    webhooks' deliveries that are due (``webhooks.run_pass``).
    """
    stopping = False
    schedule = checkpoints.Schedule()

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failures = 0
    while not stopping:
        started = engine.clock()
        wait = interval
        try:
            fired = run_pass(engine, limit=limit)
            if report is not None:
                report(fired, started)
            # Between passes, keep the log summary (and the log's Merkle tree) current, so `tiergate
            # metrics` finds little to fold.
            summary.fold(engine.db)
            failures = 0
        except TiergateError as err:
            failures += 1
            wait = min(max(interval, 1.0) * 2 ** (failures - 1), max(MAX_BACKOFF, interval))
            engine.close()  # connect afresh next time: the database may come back elsewhere or rebuilt
            if trouble is not None:
                trouble(err, wait)
        else:
            try:  # sign a checkpoint when one is due (a key is set)
                checkpoints.maybe_write(engine, schedule)
            except TiergateError as err:  # a bad key or folder: say so, keep firing timers
                if report_error is not None:
                    report_error(err)
            try:  # webhooks: queue what the log asks for and send what is due (a receiver down waits)
                webhooks.run_pass(engine)
            except TiergateError as err:  # a bad [[webhooks]] table: say so, keep firing timers
                if report_error is not None:
                    report_error(err)
        waited = 0.0
        while not stopping and waited < wait:
            time.sleep(min(0.2, wait - waited))
            waited += 0.2


def describe(fired: list[Fired], at: datetime) -> dict[str, Any]:
    return {"at": format_time(at), "runs": len(fired), "fired": [f.to_dict() for f in fired]}
