"""Messages and signals delivered into an Engine's Tier 1 runs: a message to the one run waiting
for it, a signal to every run and process that catches it, and the signals a move threw sent on
through the outbox (``tiergate.signals``). A part of ``Engine`` (``class Engine(Deliveries, ...)``).

    engine.message("ci-finished", correlate={"build": "B-17"}, data={"ok": True}, actor="agent:ci")
    engine.signal("freeze-lifted", actor="person:lead")
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from tiergate import inputs
from tiergate.actors import Actor
from tiergate.credentials import DIRECT
from tiergate.errors import InvalidDataError, RefusedError, TiergateError
from tiergate.log import LogEvent

if TYPE_CHECKING:
    from tiergate.engine import Engine
    from tiergate.runview import RunInfo


class Deliveries:
    """Messages and signals into runs (``self`` is the Engine)."""

    def message(self: Engine, name: str, correlate: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                actor: str | Actor | None = None) -> RunInfo:
        """Deliver message ``name`` to the one active Tier 1 run waiting for it (tiergate.messaging)."""
        from tiergate.messaging import find_waiting_run

        who = self.actor(actor)
        for field, value in (("correlate", correlate), ("data", data)):
            if value is not None and not isinstance(value, dict):
                from tiergate import doorlog

                error = InvalidDataError(f"a message's {field} must be a JSON object of names and values, not "
                                         f"{type(value).__name__}. Nothing was delivered; send {{...}}.",
                                         details={"field": field, "problem": "not_an_object"})
                doorlog.record(self, door=self.door_of(who), attempt="message", code=error.code, problem="not_an_object",
                               facts=inputs.facts_of(value), actor=who, credential=who.door or DIRECT)
                raise error
        correlate, data = dict(correlate or {}), data if data is not None else {}
        with self.db.read() as conn:
            try:
                run_id = find_waiting_run(conn, name, correlate)
            except RefusedError as err:
                starts = self._started_by_message(name) if err.reason == "no_waiting_run" else []
                if len(starts) != 1:
                    raise
                run_id = ""
        if not run_id:  # a message start event: the message starts a run (its correlation values are start data)
            run_id = self.start(starts[0], {**correlate, **(data if isinstance(data, dict) else {})}, actor=who).id
        return self._act(run_id, who, None, "message", {"message": name, "correlate": correlate, "data": data},
                         lambda runner, definition, state, ctx: runner.deliver_message(  # type: ignore[attr-defined]
                             definition, state, name, correlate, data, ctx))

    def signal(self: Engine, name: str, data: Any = None, actor: str | Actor | None = None,
               door: str | None = None) -> dict[str, Any]:
        """Broadcast signal ``name`` to every Tier 1 run and process that catches it (tiergate.signals)."""
        from tiergate import doorlog, signals

        try:  # size and shape first; a refusal reaches no run, so it is recorded at the door
            data = inputs.accept(data, "data")
        except inputs.InputRefused as err:
            self._record_door_refusal("signal", actor, err)
            raise
        if data is not None and not isinstance(data, dict):  # it reaches no run: recorded at the caller's door
            error = InvalidDataError("a signal's data must be a JSON object of fields (--data '{\"field\": ...}').",
                                     details={"field": "data", "problem": "not_an_object"})
            try:
                known: Actor | None = self.actor(actor)
            except TiergateError:
                known = None
            doorlog.record(self, door=door or self.door_of(known or actor), attempt="signal", code=error.code,
                           problem="not_an_object", facts=inputs.facts_of(data), actor=known,
                           credential=(known.door or DIRECT) if known is not None else None)
            raise error
        who = self.actor(actor)
        answer = signals.send(self, name, data or {}, who)
        if answer["reached"] == 0 and not answer["not_reached_over_budget"]:  # not an error in BPMN: recorded so
            # that it can be found (one over the signal_runs budget is recorded as refused, signal_budget)
            doorlog.record(self, door=door or self.door_of(who), attempt="signal", code="signal_unreached", problem=name[:200],
                           actor=who, credential=who.door or DIRECT)
        return answer

    def signal_broadcasts(self: Engine, all_: bool = False) -> dict[str, Any]:
        """The signal broadcasts still pending (``all_``: the latest ones, delivered too): `tiergate signals`."""
        from tiergate.signals import pending

        return pending(self, all_=all_)

    def _started_by_signal(self: Engine, name: str) -> list[str]:
        """The Tier 1 processes of the home whose top-level start event waits for signal ``name``."""
        from tiergate.bpmn.signals import signal_starts

        return [pid for pid, process in sorted(self.definitions.processes.items()) if name in signal_starts(process)]

    def _enqueue_thrown(self: Engine, conn: Any, run_id: str, events: list[LogEvent], who: Actor, now: datetime) -> None:
        """In a move's write transaction: the signals it threw go into the outbox (tiergate.signals)."""
        if any(event.event == "signal_thrown" for event in events):
            from tiergate.signals import enqueue_thrown

            enqueue_thrown(self, conn, run_id, events, who, now)

    def _broadcast_thrown(self: Engine, run_id: str, events: list[LogEvent], who: Actor) -> None:
        """After a committed move: the signals it threw go to the other runs (tiergate.signals)."""
        if any(event.event == "signal_thrown" for event in events):
            from tiergate.signals import broadcast_thrown

            broadcast_thrown(self, run_id, events, who)

    def _started_by_message(self: Engine, name: str) -> list[str]:
        """The Tier 1 processes of the home whose start event waits for message ``name``."""
        from tiergate.bpmn.messages import message_starts

        return [pid for pid, process in sorted(self.definitions.processes.items()) if name in message_starts(process)]
