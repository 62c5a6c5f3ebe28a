"""A signal broadcast to every Tier 1 run and process that catches it (BPMN signals are broadcast).

``tiergate signal NAME`` (``Engine.signal``; the API and the MCP tool through the same
operations) reaches:

* every active Tier 1 run whose state lists a catch for NAME (``state["signals"]``, written by
  each move: an intermediate catch, a boundary event, an event-based gateway's signal event, the
  start event of an event subprocess): each run is moved on its own, as a step is, with the
  signal logged ``signal_received`` (its sender and data) on it;
* every deployed process whose top-level start event is a signal start event for NAME: a new run
  (routed as usual; the sender is its starter) that the signal then moves past its start event.

The runs waiting are read in pages without a lock; each move judges its run outside the write
lock and writes it alone, so one signal never holds the lock across runs. A run that moved on
meanwhile is passed over. A signal that reaches nothing is not an error (BPMN drops it): the
answer says ``reached: 0`` and the attempt is recorded in ``door_refusals`` (code
``signal_unreached``), so it can be found.

A signal thrown inside a run (intermediate throw or end event) reaches the elements of that run
as SpiffWorkflow does, inside the move; the move logs ``signal_thrown``, and the engine broadcasts
it here to the other runs and to the signal start processes, with the throwing move's actor as the
sender and no data. The broadcast is durable (an outbox, ``tiergate.store.signals``): the move's
transaction also writes a ``signal_broadcasts`` row (its id is the ``broadcast`` of the
``signal_thrown`` entry); once the move is committed (never under its lock) the same process
delivers it and marks it delivered. A process that dies between the commit and the end of the
delivery leaves the row pending: ``tiergate worker`` (and ``tiergate serve``'s housekeeping)
delivers it once its lease (``signal_lease_seconds``) is over. Each run it reaches is moved in a
transaction that also writes the key (broadcast, run) of ``signal_deliveries``, so a run is reached
once by a broadcast however many deliverers try (a second one finds the key taken and leaves the
run alone). A late delivery reaches the runs waiting then, but not runs created after the throw
(except those the broadcast itself started). ``tiergate signals`` lists the pending ones.

A signal sent from outside (``Engine.signal``: the CLI, the API, MCP) goes the same way (``send``):
its broadcast, with its data and no run, is written and committed first, then delivered by the
same process and marked delivered; the caller's answer is ``broadcast``'s, with the outbox id.

Signals thrown by the runs a broadcast moves or starts are broadcast in turn, within two budgets
(``tiergate.limits``): ``signal_depth`` throws in a row and ``signal_runs`` runs in all. A throw
beyond them is not broadcast and is logged ``refused`` (``signal_budget``) on the throwing run; for
a signal sent from outside, the runs it did not reach are recorded in ``door_refusals`` at the
sender's door (``refused``, ``signal_budget``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from tiergate import testhold
from tiergate.actors import Actor
from tiergate.errors import DatabaseError, RefusedError, TiergateError, UsageError
from tiergate.limits import limit
from tiergate.log import LogEvent
from tiergate.store import signals as outbox
from tiergate.store.runs import active_tier1_states
from tiergate.timestamps import format_time

if TYPE_CHECKING:
    from tiergate.engine import Engine

#: A signal's name is matched and logged: a bpmn:signal's name, never a document.
NAME_CHARS = 200

#: How long a delivered broadcast (and its delivery keys) is kept before the worker deletes it: long
#: past the moment any deliverer could still be at work on it.
KEPT = timedelta(days=7)

#: Tests set this to a PATH: after a move that threw a signal is committed, before its broadcast,
#: the process writes PATH and waits until killed (a crash between the commit and the broadcast).
HOLD_ENV = "TIERGATE_TEST_SIGNAL_HOLD"

#: Tests set this to a PATH: a signal sent from outside, once it reached its first run, makes the
#: process write PATH and wait until killed (a crash midway through the broadcast).
MIDWAY_ENV = "TIERGATE_TEST_SIGNAL_MIDWAY"


@dataclass
class _Chain:
    """One signal and the signals thrown by the runs it moved or started, at ``depth``."""

    depth: int
    reached: list[int] = field(default_factory=lambda: [0])  # shared by the whole chain


_CHAIN: ContextVar[_Chain | None] = ContextVar("tiergate_signal_chain", default=None)


class _Reached(Exception):
    """The broadcast reached this run (or started this process) before: it is left alone."""


def waiting_runs(conn: Connection, name: str) -> list[str]:
    """The active Tier 1 runs whose state lists a catch for signal ``name``, oldest id first."""
    return [run_id for run_id, state in active_tier1_states(conn)
            if any(entry.get("signal") == name for entry in state.get("signals") or [])]


def lease(engine: Engine) -> timedelta:
    """How long the one delivering a broadcast holds it before a worker may take it over."""
    try:
        return timedelta(seconds=max(0.0, float(engine.settings.get("signal_lease_seconds") or 0)))
    except (TypeError, ValueError):
        return timedelta(seconds=60)


def check_name(name: Any) -> None:
    """A signal's name: a non-empty text of at most NAME_CHARS characters."""
    if not isinstance(name, str) or not name.strip():
        raise UsageError("a signal needs a name: `tiergate signal NAME [--data JSON]`.", code="usage")
    if len(name) > NAME_CHARS:
        raise UsageError(f"a signal's name is at most {NAME_CHARS} characters (this one has {len(name)}): give the "
                         "name of the bpmn:signal the processes catch.", code="usage", details={"chars": len(name)})


def send(engine: Engine, name: str, data: dict[str, Any], who: Actor) -> dict[str, Any]:
    """A signal sent from outside (``tiergate signal``, the API, MCP): recorded in the outbox and
    committed first, then delivered and marked delivered, as a thrown one is; the answer of
    ``broadcast`` with the ``broadcast`` id. A process that dies midway leaves it pending for the
    worker, which reaches the runs not reached yet (and none twice). The database failing midway
    answers DatabaseError naming the broadcast (``tiergate signals`` shows it)."""
    check_name(name)
    outer = _CHAIN.get()
    broadcast_id = outbox.new_id()
    with engine.db.write() as conn:
        outbox.enqueue(conn, broadcast_id=broadcast_id, signal=name, run_id=None, element=None, sender=str(who),
                       door=who.door, depth=0 if outer is None else outer.depth + 1, now=engine.clock(),
                       lease=lease(engine), data=data)
    try:
        _, answer = _deliver(engine, broadcast_id, who)
    except DatabaseError as err:
        # The database's own words only: its usual advice ("nothing was recorded; run the command again") is
        # wrong here, where the broadcast is recorded and sending the signal again is another broadcast.
        cause = err.details.get("cause") or ("its connection broke" if err.code == "connection_lost" else err.code)
        raise DatabaseError(f"signal '{name}' is recorded as broadcast {broadcast_id}, but the database failed while "
                            f"it was being delivered ({cause}). Some runs may have been reached. Do not send the "
                            "signal again (that is another broadcast, which would start its processes again): "
                            "`tiergate worker` reaches the others (none twice) once the database is back and the hold "
                            "(signal_lease_seconds) is over. See it with `tiergate signals`.",
                            code=err.code, details={**err.details, "broadcast": broadcast_id}) from err
    if answer is None:  # delivered by someone else meanwhile (a worker, after the hold): its outcome
        with engine.db.read() as conn:
            row = outbox.get(conn, broadcast_id)
        done = (row.outcome if row is not None else None) or {}
        answer = {"signal": name, "reached": done.get("reached", 0), "moved": [], "started": [],
                  "failed": done.get("failed", []), "not_reached_over_budget": [], "depth": 0}
    return {**answer, "broadcast": broadcast_id}


def broadcast(engine: Engine, name: str, data: dict[str, Any], who: Actor,
              thrown_by: dict[str, Any] | None = None, pending: outbox.Broadcast | None = None) -> dict[str, Any]:
    """Move every run waiting for ``name`` and start every process that starts on it; what it reached.

    ``pending``: a broadcast of the outbox (a signal thrown by a run): each run it reaches is keyed
    (broadcast, run) in that run's move, so no run is reached twice by it."""
    check_name(name)
    outer = _CHAIN.get()
    if pending is not None:
        chain = _Chain(pending.depth, outer.reached if outer is not None else [0])
    else:
        chain = _Chain(0) if outer is None else _Chain(outer.depth + 1, outer.reached)
    token = _CHAIN.set(chain)
    moved: list[str] = []
    started: list[str] = []
    skipped: list[str] = []
    failed: list[dict[str, Any]] = []
    try:
        with engine.db.read() as conn:
            runs = [r for r in waiting_runs(conn, name) if r != (thrown_by or {}).get("run")]
            before = outbox.reached(conn, pending.id) if pending is not None else {}
            if pending is not None:
                runs = _existing_at_throw(conn, pending, [r for r in runs if r not in before], before)
        processes = [p for p in engine._started_by_signal(name) if f"process:{p}" not in before]

        def deliver(run_id: str) -> None:
            engine._act(run_id, who, None, "signal", {"signal": name, "data": data},
                        lambda runner, definition, state, ctx: runner.deliver_signal(  # type: ignore[attr-defined]
                            definition, state, name, data, ctx, thrown_by),
                        claim=_key(pending, run_id, run_id, engine))

        for run_id in runs:
            if not _spend(chain):
                skipped.append(run_id)
                continue
            try:
                deliver(run_id)
            except _Reached:  # another deliverer of this broadcast reached it first
                continue
            except DatabaseError:  # the database, not the run: a broadcast of the outbox stays pending
                raise
            except RefusedError as err:  # it moved on (or ended) since it was read: it no longer waits
                if err.reason not in ("not_waiting", "run_not_active"):
                    failed.append({"run": run_id, "code": err.code, "message": err.message})
                continue
            except TiergateError as err:  # logged on that run by its move; the other runs are still reached
                failed.append({"run": run_id, "code": err.code, "message": err.message})
                continue
            moved.append(run_id)
            _midway(pending)
        for process_id in processes:
            if not _spend(chain):
                skipped.append(f"process:{process_id}")
                continue
            try:
                run_id = secrets.token_hex(6)
                engine._start_routed(process_id, dict(data), who, run_id=run_id,
                                     claim=_key(pending, f"process:{process_id}", run_id, engine))
                deliver(run_id)
            except _Reached:
                continue
            except DatabaseError:
                raise
            except TiergateError as err:
                failed.append({"process": process_id, "code": err.code, "message": err.message})
                continue
            started.append(run_id)
            _midway(pending)
    finally:
        _CHAIN.reset(token)
    return {"signal": name, "reached": len(moved) + len(started), "moved": moved, "started": started,
            "failed": failed,
            "not_reached_over_budget": skipped, "depth": chain.depth}


def _key(pending: outbox.Broadcast | None, target: str, run_id: str,
         engine: Engine) -> Callable[[Connection], None] | None:
    """For a broadcast of the outbox: the key (broadcast, target), written in the target's own transaction."""
    if pending is None:
        return None

    def claim(conn: Connection) -> None:
        if not outbox.take_target(conn, pending.id, target, run_id, engine.clock()):
            raise _Reached
    return claim


def _existing_at_throw(conn: Connection, pending: outbox.Broadcast, runs: list[str],
                       before: dict[str, str]) -> list[str]:
    """Of ``runs``, those created by the time the signal was thrown, or started by this broadcast."""
    started_here = set(before.values())
    born = outbox.created(conn, runs)
    return [r for r in runs if r in started_here or (r in born and born[r] <= pending.thrown_at)]


def _spend(chain: _Chain) -> bool:
    if chain.reached[0] >= limit("signal_runs"):
        return False
    chain.reached[0] += 1
    return True


def enqueue_thrown(engine: Engine, conn: Connection, run_id: str, events: list[LogEvent], who: Actor,
                   now: datetime) -> None:
    """In the transaction that saves a move of ``run_id``: each signal it threw goes into the outbox
    (its id becomes the ``broadcast`` of the ``signal_thrown`` entry), to be broadcast after the commit."""
    outer = _CHAIN.get()
    depth = 0 if outer is None else outer.depth + 1
    for event in events:
        if event.event != "signal_thrown":
            continue
        broadcast_id = outbox.new_id()
        event.detail = {**event.detail, "broadcast": broadcast_id}
        event.detail_json = None
        outbox.enqueue(conn, broadcast_id=broadcast_id, signal=str(event.detail.get("signal")), run_id=run_id,
                       element=event.step, sender=str(who), door=who.door, depth=depth, now=now, lease=lease(engine))


def broadcast_thrown(engine: Engine, run_id: str, events: list[LogEvent], who: Actor) -> None:
    """After a move of ``run_id`` is committed: deliver each signal it threw (held by this process's lease)."""
    ids = [str(e.detail["broadcast"]) for e in events if e.event == "signal_thrown" and e.detail.get("broadcast")]
    if ids:
        _hold()
    for broadcast_id in ids:
        try:
            deliver(engine, broadcast_id, who)
        except DatabaseError:  # the move is committed, and so is its broadcast: the worker delivers it
            continue


def _midway(pending: outbox.Broadcast | None) -> None:
    """A broadcast of the outbox sent from outside that reached a run: the test-only MIDWAY_ENV hold."""
    if pending is not None and pending.run_id is None:
        _hold(MIDWAY_ENV)


def _hold(variable: str = HOLD_ENV) -> None:
    testhold.hold(variable)


def deliver(engine: Engine, broadcast_id: str, who: Actor | None = None) -> dict[str, Any] | None:
    """Deliver one broadcast of the outbox, within the budgets, and mark it delivered; what it reached
    (None: it is gone or was delivered already)."""
    return _deliver(engine, broadcast_id, who)[0]


def _deliver(engine: Engine, broadcast_id: str,
             who: Actor | None = None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``deliver``'s outcome, and the answer of ``broadcast`` (the one a sender from outside gets)."""
    with engine.db.read() as conn:
        pending = outbox.get(conn, broadcast_id)
        process = outbox.process_of(conn, pending.run_id) if pending is not None and pending.run_id else None
    if pending is None or pending.delivered_at is not None:
        return None, None
    answer: dict[str, Any] | None = None
    sender = who or _sender(pending)
    name = pending.signal
    outcome: dict[str, Any] = {"broadcast": pending.id, "signal": name, "run": pending.run_id, "process": process,
                               "element": pending.element, "reached": 0, "moved": [], "started": [], "failed": []}
    if pending.depth >= limit("signal_depth"):
        _refuse(engine, pending, sender, f"signal '{name}' thrown at '{pending.element}' was not broadcast to "
                f"other runs: it is the {pending.depth + 1}th signal thrown in a row by runs that signals moved "
                f"or started (budget signal_depth = {limit('signal_depth')}). A signal start process that throws "
                "its own signal loops: change the process so it does not.")
        outcome["not_broadcast"] = "signal_depth"
    else:
        thrown_by = {"run": pending.run_id, "element": pending.element} if pending.run_id else None
        answer = broadcast(engine, name, dict(pending.data or {}), sender, thrown_by=thrown_by, pending=pending)
        outcome.update({k: answer[k] for k in ("reached", "moved", "started", "failed")})
        if answer["not_reached_over_budget"]:
            outcome["not_reached_over_budget"] = answer["not_reached_over_budget"]
            _refuse(engine, pending, sender, f"signal '{name}' thrown at '{pending.element}' did not reach "
                    f"{len(answer['not_reached_over_budget'])} runs or processes waiting for it: the signal's "
                    f"chain moved or started {limit('signal_runs')} runs (budget signal_runs).")
    with engine.db.write() as conn:
        outbox.delivered(conn, pending.id, engine.clock(), {k: v for k, v in outcome.items()
                                                            if k in ("reached", "failed", "not_broadcast")})
    return outcome, answer


def _sender(pending: outbox.Broadcast) -> Actor:
    kind, _, name = pending.sender.partition(":")
    return Actor(kind, name, door=pending.door)  # type: ignore[arg-type]


def deliver_pending(engine: Engine, now: datetime | None = None, most: int = 100) -> list[dict[str, Any]]:
    """Deliver the broadcasts a crashed process left pending (their lease over): `tiergate worker`'s part.
    Each is taken by one worker (a conditional update of its lease) before it is delivered."""
    moment = now or engine.clock()
    with engine.db.read() as conn:
        ids = outbox.due(conn, moment, most)
    done = []
    for broadcast_id in ids:
        with engine.db.write() as conn:
            if not outbox.take(conn, broadcast_id, moment, lease(engine)):
                continue
        outcome = deliver(engine, broadcast_id)
        if outcome is not None:
            done.append(outcome)
    with engine.db.read() as conn:  # the delivered ones are kept a while, for `tiergate signals --all`
        old = outbox.delivered_before(conn, moment - KEPT)
    if old:
        with engine.db.write() as conn:
            outbox.forget(conn, old)
    return done


def pending(engine: Engine, *, all_: bool = False, most: int = 100) -> dict[str, Any]:
    """The broadcasts not delivered yet (``all_``: the latest ones, delivered or not), for `tiergate signals`."""
    with engine.db.read() as conn:
        rows = outbox.listing(conn, pending_only=not all_, limit=most)
        count = outbox.pending_count(conn)
    return {"pending": count, "broadcasts": [{
        "broadcast": row.id, "signal": row.signal, "run": row.run_id, "from_outside": row.run_id is None, "element": row.element, "sender": row.sender,
        "thrown_at": format_time(row.thrown_at), "depth": row.depth, "attempts": row.attempts,
        "held_until": format_time(row.lease_until) if row.lease_until and row.delivered_at is None else None,
        "delivered_at": format_time(row.delivered_at) if row.delivered_at else None,
        "outcome": row.outcome} for row in rows]}


def _refuse(engine: Engine, pending: outbox.Broadcast, who: Actor, message: str) -> None:
    """Log the broadcast that was not made as ``refused`` on the throwing run (its state unchanged)."""
    from tiergate import log as execution_log
    from tiergate.store import runs as store

    if pending.run_id is None:  # sent from outside: no run to log it on; its sender's answer lists the runs
        from tiergate import doorlog  # not reached, and it is recorded at the sender's door, as refusals are

        doorlog.record(engine, door=engine.door_of(who), attempt="signal", code="refused", problem="signal_budget",
                       actor=who, credential=who.door or "direct")
        return
    detail = {"attempt": "signal", "reason": "signal_budget", "signal": pending.signal, "broadcast": pending.id,
              "message": message}
    for _ in range(8):
        with engine.db.write() as conn:
            run = store.get_run(conn, pending.run_id)
            if run is None:
                return
            entry = LogEvent("refused", who, step=pending.element, detail=detail, door=who.door or "direct")
            if execution_log.append_detached(conn, run.head, [entry], engine.clock()):
                return
