"""Tier 2: the checklist runner.

State of a checklist run (stored as JSON in the run row)::

    {"data":    {...start data, then each done step's evidence merged in completion order...},
     "sources": {"<data key>": "inputs" | "<step id>"},       # who set each key, for clashes
     "steps":   {"<step id>": {"status": "locked|ready|done|skipped", "ready_at", "at",
                               "actor", "evidence", "reason", "earlier"}}}

A step is ready when every step it waits for is done or skipped. ``decide`` steps are run by
the engine the moment they become ready. The run completes when every required step is done;
optional steps still open then are closed as skipped by the system.

A step with ``sends_back`` whose evidence passes both its gate and ``sends_back.when`` is a
"no": the steps in ``sends_back.to`` and every step after them (the sender included) go back to
``locked``, keep what they had as ``earlier``, and become ready again as usual (``sent_back``).
"""

from __future__ import annotations

import copy
from datetime import datetime
from functools import lru_cache
from typing import Any

from jsonschema.protocols import Validator

from tiergate.actors import SYSTEM, Actor, same_actor
from tiergate.definitions.checklists import ChecklistDefinition
from tiergate.definitions.home import TIER_FILES
from tiergate.definitions.models import Roles, Step
from tiergate.errors import InvalidDataError, ReasonMissingError, RefusedError, TiergateError
from tiergate.gates import check_evidence_size, enforce, gate_errors
from tiergate.lifecycle import RunStatus
from tiergate.log import LogEvent, format_time
from tiergate.runners.base import RunContext, Runner, StepView, Transition
from tiergate.runview import checklist_steps


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)  # Python 3.11 reads the trailing Z


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy of a checklist state that the runner may change without touching ``state``.

    The runner only ever sets keys of ``data``, ``sources`` and the step dicts, and never changes
    a value in place, so copying those dicts is enough (a deep copy cost more than a gate check).
    """
    new = dict(state)
    new["data"] = dict(state["data"])
    new["sources"] = dict(state["sources"])
    new["steps"] = {step_id: dict(st) for step_id, st in state["steps"].items()}
    return new


@lru_cache(maxsize=256)
def _validators(definition: ChecklistDefinition) -> dict[str, Validator]:
    out = {step.id: definition.validator(step.done_when) for step in definition.checklist.steps
           if step.done_when is not None}
    out["__inputs__"] = definition.validator(definition.checklist.inputs)
    for step in definition.checklist.steps:
        if step.sends_back is not None:
            out[f"{step.id}#sends_back"] = definition.validator(step.sends_back.when)
    return out


@lru_cache(maxsize=256)
def _waits_for(definition: ChecklistDefinition) -> dict[str, tuple[str, ...]]:
    """Each step's predecessors, worked out once per definition (every step view and every
    advance asks for all of them)."""
    checklist = definition.checklist
    return {step.id: tuple(checklist.predecessors(step.id)) for step in checklist.steps}


@lru_cache(maxsize=256)
def _step_dicts(definition: ChecklistDefinition) -> tuple[dict[str, Any], ...]:
    """The steps as the pinned snapshot stores them, which is what ``runview.checklist_steps`` reads
    (the light read path of `tiergate status` reads them from the snapshot itself)."""
    return tuple(step.model_dump(mode="json") for step in definition.checklist.steps)


@lru_cache(maxsize=256)
def _required(definition: ChecklistDefinition) -> tuple[str, ...]:
    """The steps a run must have done to complete."""
    return tuple(step.id for step in definition.checklist.steps if not step.optional)


def roles_unreadable(step_id: str, actor: Actor, run_id: str) -> RefusedError:
    """The refusal of a step that needs a role while ``tiers/roles.yaml`` cannot be read: nobody holds
    a role then, and the message says so rather than blaming the actor."""
    return RefusedError(
        f"step '{step_id}' needs a role, and tiers/roles.yaml is missing or has problems, so nobody holds one "
        "now. Nothing was changed. Ask an operator to fix the file (`tiergate check` lists its problems), then "
        "try again.", reason="roles_unreadable", details={"run": run_id, "step": step_id, "actor": str(actor)})


def actor_may_act(step: Step, actor: Actor, roles: Roles | None, run_id: str) -> None:
    """Refuse unless ``actor``'s kind is allowed and, if the step names roles, they hold one."""
    if actor.kind not in step.actors and tuple(step.actors) == ("system",):
        raise RefusedError(f"step '{step.id}' is done by tiergate itself, not by a person or an agent; {actor} "
                           "cannot complete it. The engine does it when the step before is done.",
                           reason="actor_not_allowed", details={"run": run_id, "step": step.id, "actor": str(actor),
                                                                "allowed_kinds": ["system"]})
    if actor.kind not in step.actors:
        raise RefusedError(
            f"step '{step.id}' can only be done by {' or '.join(k + 's' for k in step.actors)}; {actor} is "
            f"{'an' if actor.kind == 'agent' else 'a'} {actor.kind}. Hand the step to someone allowed.",
            reason="actor_not_allowed", details={"run": run_id, "step": step.id, "actor": str(actor),
                                                 "allowed_kinds": list(step.actors)})
    if step.roles:
        if roles is None:
            raise roles_unreadable(step.id, actor, run_id)
        members = set()
        for role in step.roles:
            if roles is not None and role in roles.roles:
                members.update(roles.roles[role].members)
        if str(actor) not in members:
            raise RefusedError(
                f"step '{step.id}' needs a member of {', '.join(step.roles)}; {actor} is not one "
                "(tiers/roles.yaml). Ask a member to do it, or have the role's owner add you.",
                reason="actor_not_allowed", details={"run": run_id, "step": step.id, "actor": str(actor),
                                                     "roles": list(step.roles)})


class ChecklistRunner(Runner):
    tier = 2
    kind = "checklist"
    definition_path = TIER_FILES[2]

    def load_definition(self, definitions: Any, process_id: str) -> ChecklistDefinition:
        return definitions.checklist(process_id)

    def from_snapshot(self, body: dict[str, Any]) -> ChecklistDefinition:
        return ChecklistDefinition.from_snapshot(body)

    def describe(self, definition: ChecklistDefinition) -> dict[str, Any]:
        return {"inputs": definition.checklist.inputs, "steps": [s.id for s in definition.checklist.steps]}

    # --- reading -------------------------------------------------------------------------

    def steps(self, definition: ChecklistDefinition, state: dict[str, Any], *,
              run: dict[str, Any]) -> list[StepView]:
        return checklist_steps(_step_dicts(definition), state)

    # --- changing ------------------------------------------------------------------------

    def start(self, definition: ChecklistDefinition, data: dict[str, Any], ctx: RunContext) -> Transition:
        if not isinstance(data, dict):
            raise InvalidDataError("start data must be a JSON object.")
        errors = gate_errors(_validators(definition)["__inputs__"], data)
        if errors:
            lines = "\n".join(f"  {e['pointer']}: {e['message']}" for e in errors)
            raise InvalidDataError(f"start data for '{definition.checklist.id}' is not valid:\n{lines}\nFix those fields.",
                                   details={"errors": errors, "see": "processes"})
        state: dict[str, Any] = {
            "data": copy.deepcopy(data),
            "sources": {key: "inputs" for key in data},
            "steps": {s.id: {"status": "locked"} for s in definition.checklist.steps},
        }
        events = [LogEvent("started", ctx.actor, detail={"data": data})]
        return self._advance(definition, state, events, ctx)

    def complete_step(self, definition: ChecklistDefinition, state: dict[str, Any], step_id: str, evidence: Any,
                      ctx: RunContext) -> Transition:
        step = self._ready_step(definition, state, step_id, ctx.run_id)
        if step.decide is not None:
            raise RefusedError(f"step '{step_id}' is decided by the engine (decision '{step.decide}'); "
                               "nobody completes it by hand.", reason="actor_not_allowed",
                               details={"run": ctx.run_id, "step": step_id})
        actor_may_act(step, ctx.actor, ctx.roles, ctx.run_id)
        self._four_eyes(step, state, ctx)
        if not isinstance(evidence, dict):
            raise InvalidDataError(f"evidence for step '{step_id}' must be a JSON object of fields, not "
                             f"{type(evidence).__name__}.", code="invalid_evidence")
        evidence_json = check_evidence_size(evidence)
        validators = _validators(definition)
        enforce(validators[step_id], evidence, run_id=ctx.run_id, step_id=step_id)
        if step.sends_back is not None and not gate_errors(validators[f"{step_id}#sends_back"], evidence):
            return self._send_back(definition, state, step, evidence, ctx)
        state = _copy_state(state)
        overwritten = self._merge(step, state, evidence, ctx.run_id)
        duration = self._record(state, step_id, "done", ctx, evidence=evidence)
        detail: dict[str, Any] = {"evidence": evidence}
        if overwritten:
            detail["overwrote"] = overwritten
        events = [LogEvent("step_completed", ctx.actor, step=step_id, detail=detail, duration_s=duration,
                           # The evidence is encoded once, for its size and for the log.
                           detail_json=None if overwritten else f'{{"evidence":{evidence_json}}}')]
        return self._advance(definition, state, events, ctx)

    def skip_step(self, definition: ChecklistDefinition, state: dict[str, Any], step_id: str, reason: str,
                  ctx: RunContext) -> Transition:
        step = self._ready_step(definition, state, step_id, ctx.run_id)
        if not step.optional:
            raise RefusedError(f"step '{step_id}' is required and cannot be skipped: complete it, with evidence "
                               "that passes its gate.", reason="not_optional",
                               details={"run": ctx.run_id, "step": step_id, "see": "guide"})
        if not reason.strip():
            raise ReasonMissingError("a skip needs a reason: say why the step is not needed (--reason).")
        actor_may_act(step, ctx.actor, ctx.roles, ctx.run_id)
        state = _copy_state(state)
        duration = self._record(state, step_id, "skipped", ctx, reason=reason)
        events = [LogEvent("step_skipped", ctx.actor, step=step_id, detail={"reason": reason}, duration_s=duration)]
        return self._advance(definition, state, events, ctx)

    # --- helpers -------------------------------------------------------------------------

    def _ready_step(self, definition: ChecklistDefinition, state: dict[str, Any], step_id: str,
                    run_id: str) -> Step:
        step = definition.checklist.step(step_id)
        if step is None:
            known = ", ".join(s.id for s in definition.checklist.steps)
            raise RefusedError(f"run {run_id} has no step '{step_id}'. Its steps are: {known}.",
                               reason="unknown_step", details={"run": run_id, "step": step_id})
        st = state["steps"][step_id]
        if st["status"] in ("done", "skipped"):
            verb = "completed" if st["status"] == "done" else "skipped"
            raise RefusedError(f"step '{step_id}' was already {verb} by {st.get('actor')} at {st.get('at')}. "
                               "Nothing to do.",
                               reason="already_done", details={"run": run_id, "step": step_id, "see": "guide",
                                                               "by": st.get("actor"), "at": st.get("at")})
        if st["status"] != "ready":
            waiting = [p for p in definition.checklist.predecessors(step_id)
                       if state["steps"][p]["status"] not in ("done", "skipped")]
            raise RefusedError(f"step '{step_id}' is not ready: it waits for {', '.join(waiting)}. "
                               "Finish those first.", reason="not_ready",
                               details={"run": run_id, "step": step_id, "waiting_for": waiting})
        return step

    def _send_back(self, definition: ChecklistDefinition, state: dict[str, Any], step: Step,
                   evidence: dict[str, Any], ctx: RunContext) -> Transition:
        """Reopen ``step.sends_back.to`` and every step after them; the sender's evidence is not merged."""
        assert step.sends_back is not None
        state = _copy_state(state)
        when = format_time(ctx.now)
        ready_at = state["steps"][step.id].get("ready_at")
        duration = (ctx.now - _parse(ready_at)).total_seconds() if ready_at else None
        reopened = definition.checklist.successors(list(step.sends_back.to))
        sent = {"step": step.id, "actor": str(ctx.actor), "at": when, "evidence": evidence}
        for step_id in reopened:
            old = state["steps"][step_id]
            earlier = dict(old.get("earlier") or {})
            if old["status"] in ("done", "skipped"):
                earlier.update(status=old["status"], evidence=old.get("evidence"), actor=old.get("actor"),
                               at=old.get("at"), reason=old.get("reason"))
            earlier["sent_back"] = sent
            earlier["rework"] = int(earlier.get("rework", 0)) + 1
            state["steps"][step_id] = {"status": "locked", "earlier": earlier}
        events = [LogEvent("sent_back", ctx.actor, step=step.id, duration_s=duration,
                           detail={"evidence": evidence, "to": list(step.sends_back.to), "reopened": reopened})]
        return self._advance(definition, state, events, ctx)

    def _four_eyes(self, step: Step, state: dict[str, Any], ctx: RunContext) -> None:
        if step.distinct_from is None:
            return
        earlier = state["steps"][step.distinct_from]
        if earlier.get("status") == "done" and same_actor(earlier.get("actor"), str(ctx.actor)):
            raise RefusedError(f"step '{step.id}' must be done by someone other than who did "
                               f"'{step.distinct_from}' ({ctx.actor}). Ask another person or agent.",
                               reason="same_actor", details={"run": ctx.run_id, "step": step.id,
                                                             "distinct_from": step.distinct_from})

    def _merge(self, step: Step, state: dict[str, Any], evidence: dict[str, Any], run_id: str) -> dict[str, Any]:
        data, sources, steps = state["data"], state["sources"], state["steps"]
        # A key set by a step that was sent back since (or by this step, redone) is stale: set it again.
        clashes = {k: sources.get(k) for k, v in evidence.items()
                   if k in data and data[k] != v and k not in step.may_overwrite
                   and not (sources.get(k) in steps and steps[sources[k]].get("status") != "done")}
        if clashes:
            listed = ", ".join(f"'{k}' (set by {src})" for k, src in clashes.items())
            raise RefusedError(f"evidence for step '{step.id}' would replace {listed} with a different value. "
                               "Use another key, or list it under may_overwrite in the checklist if the step is "
                               "meant to change it.", reason="data_conflict",
                               details={"run": run_id, "step": step.id, "keys": sorted(clashes)})
        overwritten = {k: {"was": data[k], "by": sources.get(k)} for k, v in evidence.items()
                       if k in data and data[k] != v}
        for key, value in evidence.items():
            # Strings, numbers, booleans and null are immutable: only the rest needs copying.
            data[key] = value if value is None or isinstance(value, (str, int, float)) else copy.deepcopy(value)
            sources[key] = step.id
        return overwritten

    @staticmethod
    def _record(state: dict[str, Any], step_id: str, status: str, ctx: RunContext, *,
                evidence: Any = None, reason: str | None = None, actor: Actor | None = None) -> float | None:
        st = state["steps"][step_id]
        st.update(status=status, at=format_time(ctx.now), actor=str(actor or ctx.actor))
        if evidence is not None:
            st["evidence"] = evidence
        if reason is not None:
            st["reason"] = reason
        ready_at = st.get("ready_at")
        return (ctx.now - _parse(ready_at)).total_seconds() if ready_at else None

    def _advance(self, definition: ChecklistDefinition, state: dict[str, Any], events: list[LogEvent],
                 ctx: RunContext) -> Transition:
        """Unlock what became ready, run decide steps, and finish the run when it is done."""
        checklist = definition.checklist
        waits_for = _waits_for(definition)
        steps = state["steps"]
        # A step that becomes ready unlocks nothing (steps wait for done or skipped ones); another
        # pass is needed only after a decide step was done in this one.
        decided = True
        while decided:
            decided = False
            for step in checklist.steps:
                st = steps[step.id]
                if st["status"] != "locked":
                    continue
                if all(steps[p]["status"] in ("done", "skipped") for p in waits_for[step.id]):
                    st.update(status="ready", ready_at=format_time(ctx.now))
                    events.append(LogEvent("step_ready", SYSTEM, step=step.id))
                    if step.decide is not None:
                        if not self._decide(step, state, events, ctx, definition):
                            return Transition(state=state, status=RunStatus.FAILED, events=events)
                        decided = True
        if all(steps[step_id]["status"] == "done" for step_id in _required(definition)):
            for step in checklist.steps:
                st = state["steps"][step.id]
                if st["status"] in ("ready", "locked"):
                    self._record(state, step.id, "skipped", ctx, reason="not done before the run completed",
                                 actor=SYSTEM)
                    events.append(LogEvent("step_skipped", SYSTEM, step=step.id,
                                           detail={"reason": "not done before the run completed"}))
            events.append(LogEvent("completed", SYSTEM))
            return Transition(state=state, status=RunStatus.COMPLETED, events=events)
        return Transition(state=state, status=RunStatus.ACTIVE, events=events)

    def _decide(self, step: Step, state: dict[str, Any], events: list[LogEvent], ctx: RunContext,
                definition: ChecklistDefinition) -> bool:
        """Evaluate a decide step. False if the decision failed (the run then fails)."""
        assert step.decide is not None
        try:
            decision = definition.decision(step.decide)
            outputs, matched = decision.evaluate(state["data"])
            self._merge(step, state, outputs, ctx.run_id)
        except TiergateError as err:
            state["steps"][step.id]["error"] = err.message
            events.append(LogEvent("failed", SYSTEM, step=step.id,
                                   detail={"decision": step.decide, "error": err.message, "code": err.code}))
            return False
        events.append(LogEvent("decision_evaluated", SYSTEM, step=step.id,
                               detail={"decision": step.decide, "outputs": outputs, "matched_rules": matched,
                                       "inputs": {n: state["data"].get(n) for n in decision.input_names}}))
        duration = self._record(state, step.id, "done", ctx, evidence=outputs, actor=SYSTEM)
        events.append(LogEvent("step_completed", SYSTEM, step=step.id, detail={"evidence": outputs},
                               duration_s=duration))
        return True
