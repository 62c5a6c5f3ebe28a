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
as SpiffWorkflow does, inside the move; the move logs ``signal_thrown``, and once the move is
committed (never under its lock) the engine broadcasts it here to the other runs and to the
signal start processes, with the throwing move's actor as the sender and no data. Signals thrown
by the runs a broadcast moves or starts are broadcast in turn, within two budgets
(``tiergate.limits``): ``signal_depth`` throws in a row and ``signal_runs`` runs in all. A throw
beyond them is not broadcast and is logged ``refused`` (``signal_budget``) on the throwing run.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from tiergate.errors import RefusedError, TiergateError, UsageError
from tiergate.limits import limit
from tiergate.log import LogEvent
from tiergate.store.runs import active_tier1_states

if TYPE_CHECKING:
    from tiergate.actors import Actor
    from tiergate.engine import Engine

#: A signal's name is matched and logged: a bpmn:signal's name, never a document.
NAME_CHARS = 200


@dataclass
class _Chain:
    """One signal and the signals thrown by the runs it moved or started, at ``depth``."""

    depth: int
    reached: list[int] = field(default_factory=lambda: [0])  # shared by the whole chain


_CHAIN: ContextVar[_Chain | None] = ContextVar("tiergate_signal_chain", default=None)


def waiting_runs(conn: Connection, name: str) -> list[str]:
    """The active Tier 1 runs whose state lists a catch for signal ``name``, oldest id first."""
    return [run_id for run_id, state in active_tier1_states(conn)
            if any(entry.get("signal") == name for entry in state.get("signals") or [])]


def broadcast(engine: Engine, name: str, data: dict[str, Any], who: Actor,
              thrown_by: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move every run waiting for ``name`` and start every process that starts on it; what it reached."""
    if not isinstance(name, str) or not name.strip():
        raise UsageError("a signal needs a name: `tiergate signal NAME [--data JSON]`.", code="usage")
    if len(name) > NAME_CHARS:
        raise UsageError(f"a signal's name is at most {NAME_CHARS} characters (this one has {len(name)}): give the "
                         "name of the bpmn:signal the processes catch.", code="usage", details={"chars": len(name)})
    outer = _CHAIN.get()
    chain = _Chain(0) if outer is None else _Chain(outer.depth + 1, outer.reached)
    token = _CHAIN.set(chain)
    moved: list[str] = []
    started: list[str] = []
    skipped: list[str] = []
    failed: list[dict[str, Any]] = []
    try:
        with engine.db.read() as conn:
            runs = [r for r in waiting_runs(conn, name) if r != (thrown_by or {}).get("run")]
        processes = engine._started_by_signal(name)
        for run_id in runs:
            if not _spend(chain):
                skipped.append(run_id)
                continue
            try:
                engine._act(run_id, who, None, "signal", {"signal": name, "data": data},
                            lambda runner, definition, state, ctx: runner.deliver_signal(  # type: ignore[attr-defined]
                                definition, state, name, data, ctx, thrown_by))
            except RefusedError as err:  # it moved on (or ended) since it was read: it no longer waits
                if err.reason not in ("not_waiting", "run_not_active"):
                    failed.append({"run": run_id, "code": err.code, "message": err.message})
                continue
            except TiergateError as err:  # logged on that run by its move; the other runs are still reached
                failed.append({"run": run_id, "code": err.code, "message": err.message})
                continue
            moved.append(run_id)
        for process_id in processes:
            if not _spend(chain):
                skipped.append(f"process:{process_id}")
                continue
            try:
                run_id = engine.start(process_id, dict(data), actor=who).id
                engine._act(run_id, who, None, "signal", {"signal": name, "data": data},
                            lambda runner, definition, state, ctx: runner.deliver_signal(  # type: ignore[attr-defined]
                                definition, state, name, data, ctx, thrown_by))
            except TiergateError as err:
                failed.append({"process": process_id, "code": err.code, "message": err.message})
                continue
            started.append(run_id)
    finally:
        _CHAIN.reset(token)
    return {"signal": name, "reached": len(moved) + len(started), "moved": moved, "started": started,
            "failed": failed,
            "not_reached_over_budget": skipped, "depth": chain.depth}


def _spend(chain: _Chain) -> bool:
    if chain.reached[0] >= limit("signal_runs"):
        return False
    chain.reached[0] += 1
    return True


def broadcast_thrown(engine: Engine, run_id: str, events: list[LogEvent], who: Actor) -> None:
    """After a move of ``run_id`` is committed: broadcast each signal it threw, within the budgets."""
    for event in events:
        if event.event != "signal_thrown":
            continue
        name = str(event.detail.get("signal"))
        outer = _CHAIN.get()
        depth = 0 if outer is None else outer.depth + 1
        if depth >= limit("signal_depth"):
            _refuse(engine, run_id, event, who, f"signal '{name}' thrown at '{event.step}' was not broadcast to "
                    f"other runs: it is the {depth + 1}th signal thrown in a row by runs that signals moved or "
                    f"started (budget signal_depth = {limit('signal_depth')}). A signal start process that throws "
                    "its own signal loops: change the process so it does not.")
            continue
        answer = broadcast(engine, name, {}, who, thrown_by={"run": run_id, "element": event.step})
        if answer["not_reached_over_budget"]:
            _refuse(engine, run_id, event, who, f"signal '{name}' thrown at '{event.step}' did not reach "
                    f"{len(answer['not_reached_over_budget'])} runs or processes waiting for it: the signal's "
                    f"chain moved or started {limit('signal_runs')} runs (budget signal_runs).")


def _refuse(engine: Engine, run_id: str, event: LogEvent, who: Actor, message: str) -> None:
    """Log the broadcast that was not made as ``refused`` on the throwing run (its state unchanged)."""
    from tiergate import log as execution_log
    from tiergate.store import runs as store

    detail = {"attempt": "signal", "reason": "signal_budget", "signal": event.detail.get("signal"),
              "message": message}
    for _ in range(8):
        with engine.db.write() as conn:
            run = store.get_run(conn, run_id)
            if run is None:
                return
            entry = LogEvent("refused", who, step=event.step, detail=detail, door=who.door or "direct")
            if execution_log.append_detached(conn, run.head, [entry], engine.clock()):
                return
