"""The moves on an Engine's runs besides starting and completing: skipping a step, cancelling a run,
retrying a failed Tier 1 element, and logging a refusal a door decided. A part of ``Engine``
(``class Engine(Interventions, ...)``); each goes through ``Engine._act`` like a completion.

    engine.skip(run_id, "notify-client", reason="client asked for no mail", actor="human:alice")
    engine.cancel(run_id, reason="duplicate of SUP-1200", actor="human:alice")
    engine.retry(run_id, "fetch-invoice", {"invoice_id": "INV-7"}, actor="human:alice")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiergate import inputs
from tiergate.actors import Actor
from tiergate.errors import InvalidDataError, ReasonMissingError, RefusedError, UsageError
from tiergate.runners.base import RunContext, Runner, Transition
from tiergate.runview import RunInfo

if TYPE_CHECKING:
    from tiergate.engine import Engine


class Interventions:
    """Skip, cancel, retry and a door's refusal (``self`` is the Engine)."""

    def skip(self: Engine, run_id: str, step_id: str, reason: str, actor: str | Actor | None = None) -> RunInfo:
        reason = self._accept(run_id, step_id, "skip", actor, lambda: inputs.check_reason(reason))
        who = self.actor(actor)
        return self._act(run_id, who, step_id, "skip", {"reason": reason},
                         lambda runner, definition, state, ctx: runner.skip_step(definition, state, step_id,
                                                                                 reason, ctx))

    def cancel(self: Engine, run_id: str, reason: str, actor: str | Actor | None = None) -> RunInfo:
        reason = self._accept(run_id, None, "cancel", actor, lambda: inputs.check_reason(reason))
        who = self.actor(actor)

        def cancel(runner: Runner, definition: Any, state: dict[str, Any], ctx: RunContext) -> Transition:
            if not reason or not reason.strip():  # judged with the run, so the attempt is logged
                raise ReasonMissingError("a cancel needs a reason (--reason): it goes into the log.")
            return runner.cancel(definition, state, reason, ctx)

        return self._act(run_id, who, None, "cancel", {"reason": reason}, cancel)

    def retry(self: Engine, run_id: str, step_id: str, data: dict[str, Any] | None = None,
              actor: str | Actor | None = None) -> RunInfo:
        """Run the failed element ``step_id`` of a failed Tier 1 run again, after merging ``data`` into its data."""
        data = self._accept(run_id, step_id, "retry", actor, lambda: inputs.accept(data, "data"))
        if data is not None and not isinstance(data, dict):
            raise InvalidDataError("the retry's data must be a JSON object of fields to set.")
        who = self.actor(actor)

        def retry(runner: Runner, definition: Any, state: dict[str, Any], ctx: RunContext) -> Transition:
            if not hasattr(runner, "retry"):
                raise UsageError(f"run {run_id} is a tier {runner.tier} run; `tiergate retry` is for Tier 1 runs.",
                                 code="usage", details={"run": run_id})
            entry = self.definitions.catalog.get(definition.process_id) if self.definitions.catalog else None
            return runner.retry(definition, state, step_id, data or {}, ctx,  # type: ignore[attr-defined]
                                owner=entry.owner if entry is not None else None)

        return self._act(run_id, who, step_id, "retry", {"data": data or {}}, retry)

    def refuse(self: Engine, run_id: str, actor: str | Actor, step_id: str | None, attempt: str,
               error: RefusedError) -> RunInfo:
        """Log ``error`` as a refused ``attempt`` on RUN by ``actor`` and raise it.

        For refusals decided before the runner is asked (a door's check, e.g. ``actor_mismatch``).
        """
        who = self.actor(actor)

        def refuse(runner: Runner, definition: Any, state: dict[str, Any], ctx: RunContext) -> Transition:
            raise error

        return self._act(run_id, who, step_id, attempt, {}, refuse)
