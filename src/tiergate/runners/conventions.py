"""Tier 3: the conventions runner.

A Tier 3 run has no gates. Starting it renders the process's conventions
(``tiers/conventions/<id>.md.j2``) with the start data and logs them as ``guidance_served``;
the run then has one ready step, ``work``. Closing the run (``tiergate complete RUN``, or
completing ``work``) takes an optional outcome object and logs ``step_completed`` and
``completed``, so Tier 3 work shows in the same log and metrics as the other tiers. A run left
open past the catalog's ``expected_minutes`` blocks nothing; metrics count it as abandoned.

State of a conventions run::

    {"data": {...start data...}, "conventions": "<rendered text, as served>",
     "steps": {"work": {"status": "ready|done", "ready_at", "at", "actor", "evidence": <outcome>}}}
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from tiergate.actors import SYSTEM
from tiergate.definitions.conventions import WORK_STEP, ConventionsDefinition, template_context
from tiergate.definitions.home import TIER_FILES
from tiergate.errors import InvalidDataError, RefusedError
from tiergate.gates import check_evidence_size
from tiergate.lifecycle import RunStatus
from tiergate.log import LogEvent, format_time
from tiergate.runners.base import RunContext, Runner, StepView, Transition
from tiergate.runview import conventions_steps
from tiergate.templating import render


class ConventionsRunner(Runner):
    tier = 3
    kind = "conventions"
    definition_path = TIER_FILES[3]

    def load_definition(self, definitions: Any, process_id: str) -> ConventionsDefinition:
        return definitions.conventions_definition(process_id)

    def from_snapshot(self, body: dict[str, Any]) -> ConventionsDefinition:
        return ConventionsDefinition.from_snapshot(body)

    def describe(self, definition: ConventionsDefinition) -> dict[str, Any]:
        return {"inputs": {"type": "object"}, "steps": [WORK_STEP]}

    def steps(self, definition: ConventionsDefinition, state: dict[str, Any], *,
              run: dict[str, Any]) -> list[StepView]:
        return conventions_steps(definition.title, definition.template, state)

    def start(self, definition: ConventionsDefinition, data: dict[str, Any], ctx: RunContext) -> Transition:
        if not isinstance(data, dict):
            raise InvalidDataError("start data must be a JSON object.")
        check_evidence_size(data)
        text = render(definition.template, template_context(definition.process_id, data, ctx.run_id),
                      where=f"conventions of '{definition.process_id}' ({definition.source})")
        now = format_time(ctx.now)
        state = {"data": copy.deepcopy(data), "conventions": text,
                 "steps": {WORK_STEP: {"status": "ready", "ready_at": now}}}
        events = [
            LogEvent("started", ctx.actor, detail={"data": data, "expected_minutes": definition.expected_minutes}),
            LogEvent("guidance_served", SYSTEM, step=WORK_STEP,
                     detail={"conventions": text, "template": definition.source, "to": str(ctx.actor)}),
            LogEvent("step_ready", SYSTEM, step=WORK_STEP),
        ]
        return Transition(state=state, status=RunStatus.ACTIVE, events=events)

    def complete_step(self, definition: ConventionsDefinition, state: dict[str, Any], step_id: str | None,
                      evidence: Any, ctx: RunContext) -> Transition:
        """Close the run. ``step_id`` is None (``tiergate complete RUN``) or ``work``; ``evidence`` is the outcome."""
        self._work(state, step_id, ctx.run_id)
        if evidence is not None and not isinstance(evidence, dict):
            raise InvalidDataError(f"the outcome of a tier 3 run must be a JSON object of fields, not "
                             f"{type(evidence).__name__}; or give none.", code="invalid_evidence")
        if evidence is not None:
            check_evidence_size(evidence)
        state = copy.deepcopy(state)
        st = state["steps"][WORK_STEP]
        st.update(status="done", at=format_time(ctx.now), actor=str(ctx.actor), evidence=evidence)
        ready_at = st.get("ready_at")
        duration = (ctx.now - datetime.fromisoformat(ready_at.replace("Z", "+00:00"))).total_seconds() \
            if ready_at else None
        events = [LogEvent("step_completed", ctx.actor, step=WORK_STEP, detail={"outcome": evidence},
                           duration_s=duration),
                  LogEvent("completed", SYSTEM)]
        return Transition(state=state, status=RunStatus.COMPLETED, events=events)

    def skip_step(self, definition: ConventionsDefinition, state: dict[str, Any], step_id: str, reason: str,
                  ctx: RunContext) -> Transition:
        self._work(state, step_id, ctx.run_id)
        raise RefusedError(f"the work of tier 3 run {ctx.run_id} cannot be skipped. Close the run by completing its "
                           "work (say in the outcome that nothing was needed), or cancel it.", reason="not_optional",
                           details={"run": ctx.run_id, "step": step_id, "see": "guide"})

    @staticmethod
    def _work(state: dict[str, Any], step_id: str | None, run_id: str) -> None:
        if step_id not in (None, WORK_STEP):
            raise RefusedError(f"run {run_id} is a tier 3 run: it has no step '{step_id}', only '{WORK_STEP}'. "
                               f"Close it with `tiergate complete {run_id}` (no step).", reason="unknown_step",
                               details={"run": run_id, "step": step_id})
        st = state["steps"][WORK_STEP]
        if st["status"] == "done":
            raise RefusedError(f"run {run_id} was already closed by {st.get('actor')} at {st.get('at')}.",
                               reason="already_done", details={"run": run_id, "step": WORK_STEP,
                                                               "by": st.get("actor"), "at": st.get("at")})
