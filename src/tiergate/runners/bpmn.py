"""Tier 1: the BPMN runner (SpiffWorkflow), behind the same contract as checklists.

Steps are the ready user and manual tasks; a step's id is the task's BPMN id. Completing one
is checked exactly as in Tier 2 (``tiergate.runners.checklist``), in the same order, with
the same refusals and log entries: the step exists and is ready, the actor's kind and role
are allowed (the lane is the role), four eyes hold, the evidence passes the gate. Only then is
the evidence merged into the task's data, the task completed and the engine run on to the next
people's tasks: scripts, gateways, business rule tasks (tiergate's DMN) and due timers.

State of a Tier 1 run (JSON in the run row)::

    {"workflow": {...SpiffWorkflow task tree, pruned, without the spec...},
     "data":     {...the run's data as people see it...},
     "steps":    {"<task id>": {"status": "locked|ready|done|skipped", "ready_at", "at", "actor",
                                "evidence", "reason", "times"}},
     "sources":  {"<data key>": "inputs" | "<task id>"},        # who set each key last (start or a step)
     "timers":   [{"timer", "task", "due"}], "due_at": "...",    # waiting timers; the worker reads due_at
     "error":    {"element", "message", "task"} | null}           # why the run failed, for `tiergate retry`
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from SpiffWorkflow.task import Task

from tiergate.actors import same_actor
from tiergate.bpmn import datastore, firststate, fresh, instances, lastmove, records
from tiergate.bpmn.definition import BpmnDefinition, StepRules
from tiergate.bpmn.moves import Move
from tiergate.bpmn.statecopy import copy_state
from tiergate.bpmn.timers import parse_datetime
from tiergate.definitions.home import TIER_FILES
from tiergate.errors import InvalidDataError, ReasonMissingError, RefusedError
from tiergate.gates import check_evidence_size, enforce, gate_errors
from tiergate.log import LogEvent, format_time
from tiergate.runners.base import RunContext, Runner, Transition
from tiergate.runners.bpmnevents import BpmnEvents
from tiergate.runners.bpmnviews import BpmnViews
from tiergate.runners.checklist import actor_may_act, roles_unreadable
from tiergate.runners.keptviews import KeptViews

class BpmnRunner(BpmnViews, BpmnEvents, Runner):
    tier = 1
    kind = "bpmn"
    definition_path = TIER_FILES[1]

    def load_definition(self, definitions: Any, process_id: str) -> BpmnDefinition:
        return definitions.process(process_id)  # type: ignore[no-any-return]

    def from_snapshot(self, body: dict[str, Any]) -> BpmnDefinition:
        return BpmnDefinition.from_snapshot(body)

    def describe(self, definition: BpmnDefinition) -> dict[str, Any]:
        return {"inputs": definition.inputs, "steps": list(definition.steps)}

    # --- reading -------------------------------------------------------------------------

    def __init__(self) -> None:
        self._kept = KeptViews()

    # --- changing ------------------------------------------------------------------------

    def start(self, definition: BpmnDefinition, data: dict[str, Any], ctx: RunContext) -> Transition:
        if not isinstance(data, dict):
            raise InvalidDataError("start data must be a JSON object.")
        errors = gate_errors(definition.validator("__inputs__"), data)
        if errors:
            lines = "\n".join(f"  {e['pointer']}: {e['message']}" for e in errors)
            raise InvalidDataError(f"start data for '{definition.process_id}' is not valid:\n{lines}\nFix those fields.",
                                   details={"errors": errors, "see": "processes"})
        state = _fresh_state(definition, data)
        events = [LogEvent("started", ctx.actor, detail={"data": data})]
        move = Move(definition, state, ctx, events)
        move.create(data)
        status = firststate.run(move, lambda data: _fresh_state(definition, data))  # (else ``move.run()``)
        return Transition(state=state, status=status, events=events)

    def complete_step(self, definition: BpmnDefinition, state: dict[str, Any], step_id: str, evidence: Any,
                      ctx: RunContext) -> Transition:
        rules = self._ready_step(definition, state, step_id, ctx.run_id)
        actor_may_act(rules, ctx.actor, ctx.roles, ctx.run_id)  # type: ignore[arg-type]
        self._four_eyes(rules, state, ctx)
        _named_in_data(rules, state, ctx)
        if not isinstance(evidence, dict):
            raise InvalidDataError(f"evidence for step '{step_id}' must be a JSON object of fields, not "
                             f"{type(evidence).__name__}.", code="invalid_evidence")
        evidence_json = check_evidence_size(evidence)  # (canonical: the log entry's detail is spelled from it)
        enforce(definition.validator(rules.element), evidence, run_id=ctx.run_id, step_id=step_id)

        def apply(task: Task, state: dict[str, Any], events: list[LogEvent], duration: float | None) -> None:
            record, sources = records.editable(state, step_id), state.setdefault("sources", {})
            overwritten = {k: {"was": task.data[k], "by": sources.get(k)} for k, v in evidence.items()
                           if k in task.data and task.data[k] != v}
            task.data.update(fresh.copied(evidence))  # (deepcopy's copy, one of text and numbers in one step)
            sources.update({key: step_id for key in evidence})
            record.update(status="done", at=format_time(ctx.now), actor=str(ctx.actor), evidence=evidence,
                          times=record.get("times", 0) + 1)
            record.pop("reason", None)
            detail: dict[str, Any] = {"evidence": evidence}
            if overwritten:
                detail["overwrote"] = overwritten
            events.append(LogEvent("step_completed", ctx.actor, step=step_id, detail=detail, duration_s=duration,
                                   detail_json=None if overwritten else f'{{"evidence":{evidence_json}}}'))

        return self._finish_step(definition, state, step_id, ctx, apply)

    def skip_step(self, definition: BpmnDefinition, state: dict[str, Any], step_id: str, reason: str,
                  ctx: RunContext) -> Transition:
        rules = self._ready_step(definition, state, step_id, ctx.run_id)
        if not rules.optional:
            raise RefusedError(f"step '{step_id}' is required and cannot be skipped: complete it, with evidence "
                               "that passes its gate.", reason="not_optional",
                               details={"run": ctx.run_id, "step": step_id, "see": "guide"})
        if not reason.strip():
            raise ReasonMissingError("a skip needs a reason: say why the step is not needed (--reason).")
        actor_may_act(rules, ctx.actor, ctx.roles, ctx.run_id)  # type: ignore[arg-type]

        def apply(task: Task, state: dict[str, Any], events: list[LogEvent], duration: float | None) -> None:
            record = records.editable(state, step_id)
            record.update(status="skipped", at=format_time(ctx.now), actor=str(ctx.actor), reason=reason)
            events.append(LogEvent("step_skipped", ctx.actor, step=step_id, detail={"reason": reason},
                                   duration_s=duration))

        return self._finish_step(definition, state, step_id, ctx, apply)

    # --- helpers -------------------------------------------------------------------------

    def _finish_step(self, definition: BpmnDefinition, state: dict[str, Any], step_id: str, ctx: RunContext,
                     apply: Callable[[Task, dict[str, Any], list[LogEvent], float | None], None]) -> Transition:
        """Complete (or skip) the ready task of ``step_id``: ``apply`` records it, then the engine runs on."""
        state = copy_state(state)
        events: list[LogEvent] = []
        move = Move(definition, state, ctx, events)
        move.restore()
        task = move.ready_task(step_id)
        if task is None:  # the stored step states and the tree disagree: refuse rather than guess
            raise RefusedError(f"step '{step_id}' is not ready in run {ctx.run_id}.", reason="not_ready",
                               details={"run": ctx.run_id, "step": step_id, "waiting_for": []})
        datastore.refuse_stale(move, task, step_id)  # a store it writes changed since it read it: refused
        move.ready_before.discard(task.id.int)
        ready_at = records.editable(state, step_id).get("ready_at")
        duration = (ctx.now - parse_datetime(ready_at)).total_seconds() if ready_at else None
        last = lastmove.of(move, task)  # the run ends here, nothing evaluated: from a template once proven
        if last is not None and last.trusted:
            return Transition(state=state, status=last.finish(move, task, apply, duration), events=events)
        made = last.aside(move, task, apply, duration) if last is not None else None
        apply(task, state, events, duration)
        try:
            task.run()
        except Exception as exc:  # noqa: BLE001 - a failing completion hook fails the run like any step
            failure = move.step_failure(exc, task)  # a pre- or post-script over its budget is refused instead
            move.journal()
            status = move.failed(failure)
        else:
            status = move.run()
        result = Transition(state=state, status=status, events=events)
        if made is not None:
            last.prove(made, result)  # type: ignore[union-attr]
        return result

    def _ready_step(self, definition: BpmnDefinition, state: dict[str, Any], step_id: str,
                    run_id: str) -> StepRules:
        base, key = instances.split(step_id)
        rules = definition.steps.get(base)
        if rules is None or (key is not None and not rules.repeats):
            known = ", ".join(definition.steps)
            raise RefusedError(f"run {run_id} has no step '{step_id}'. Its steps are: {known}.",
                               reason="unknown_step", details={"run": run_id, "step": step_id})
        if rules.repeats and key is None:
            ready = [s for s, r in state.get("steps", {}).items()
                     if instances.split(s)[0] == base and s != base and r.get("status") == "ready"]
            raise RefusedError(f"step '{step_id}' runs once per item: name the instance, e.g. "
                               f"{(ready or [base + '[0]'])[0]}. Ready now: {', '.join(ready) or 'none'}.",
                               reason="unknown_step", details={"run": run_id, "step": step_id, "ready": ready})
        distinct = self._distinct(rules, step_id, state)
        if rules.id != step_id or rules.distinct_from != distinct:  # (frozen: the same rules serve as they are)
            rules = replace(rules, id=step_id, distinct_from=distinct)
        record = state.get("steps", {}).get(step_id, {})
        status = record.get("status", "locked")
        if status in ("done", "skipped"):
            verb = "completed" if status == "done" else "skipped"
            raise RefusedError(f"step '{step_id}' was already {verb} by {record.get('actor')} at {record.get('at')}. "
                               "Nothing to do.",
                               reason="already_done", details={"run": run_id, "step": step_id, "see": "guide",
                                                               "by": record.get("actor"), "at": record.get("at")})
        if status != "ready":
            waiting = [s for s, r in state.get("steps", {}).items() if r.get("status") == "ready"]
            timers = [f"{'the start event timer' if t.get('start') else 'timer'} {t['timer']} (due {t['due']})"
                      for t in state.get("timers", [])]
            timers += [f"message '{m['message']}' at {m['element']}" + (f" for {m['correlate']}" if m["correlate"]
                                                                       else "") for m in state.get("messages", [])
                       if not m.get("starts")]  # an event subprocess's start: it may come, nothing waits for it
            what = ", ".join(waiting + timers) or "steps that are not reached yet"
            raise RefusedError(f"step '{step_id}' is not ready: it waits for {what}. Finish those first.",
                               reason="not_ready", details={"run": run_id, "step": step_id, "waiting_for": waiting})
        return rules

    @staticmethod
    def _distinct(rules: StepRules, step_id: str, state: dict[str, Any]) -> str | None:
        """Four eyes per instance: ``verify[2]`` against ``prepare[2]`` when ``prepare`` repeats too."""
        other = rules.distinct_from
        if other is None:
            return None
        key = instances.split(step_id)[1]
        if key is None:
            return other
        same = f"{other}[{key}]"
        return same if same in state.get("steps", {}) else other

    def _four_eyes(self, rules: StepRules, state: dict[str, Any], ctx: RunContext) -> None:
        if rules.distinct_from is None:
            return
        earlier = state.get("steps", {}).get(rules.distinct_from, {})
        if earlier.get("status") == "done" and same_actor(earlier.get("actor"), str(ctx.actor)):
            raise RefusedError(f"step '{rules.id}' must be done by someone other than who did "
                               f"'{rules.distinct_from}' ({ctx.actor}). Ask another person or agent.",
                               reason="same_actor", details={"run": ctx.run_id, "step": rules.id,
                                                             "distinct_from": rules.distinct_from})


def _named_in_data(rules: StepRules, state: dict[str, Any], ctx: RunContext) -> None:
    """``actor_from``/``roles_from``: the one actor, or a member of every role, that the run's data names."""
    data = state.get("data", {})
    if rules.actor_from is not None and not same_actor(data.get(rules.actor_from), str(ctx.actor)):
        raise RefusedError(f"step '{rules.id}' is for {data.get(rules.actor_from)} ({rules.actor_from} of this run) "
                           f"to do; {ctx.actor} is not them.", reason="actor_not_allowed",
                           details={"run": ctx.run_id, "step": rules.id, "actor": str(ctx.actor)})
    if rules.roles_from is None:
        return
    named = data.get(rules.roles_from)
    wanted = [named] if isinstance(named, str) else [r for r in named or [] if isinstance(r, str)]
    if ctx.roles is None:
        raise roles_unreadable(rules.id, ctx.actor, ctx.run_id)  # type: ignore[arg-type]
    known = ctx.roles.roles
    missing = [r for r in wanted if r not in known or str(ctx.actor) not in known[r].members]
    if missing or not wanted:
        raise RefusedError(f"step '{rules.id}' needs a member of {', '.join(wanted) or 'a role this run names'}"
                           f"{' (each of them)' if len(wanted) > 1 else ''}; {ctx.actor} is not one "
                           f"({', '.join(missing)}; tiers/roles.yaml). Ask a member to do it.",
                           reason="actor_not_allowed", details={"run": ctx.run_id, "step": rules.id,
                                                                "actor": str(ctx.actor), "roles": wanted})


def _fresh_state(definition: BpmnDefinition, data: dict[str, Any]) -> dict[str, Any]:
    """A new run's state before its first move."""
    # ("data": the move's data view replaces it, whatever the move does; here for the state's order of keys)
    return {"workflow": {}, "data": {}, "sources": {k: "inputs" for k in data},
            "steps": {step_id: {"status": "locked"} for step_id in definition.steps},
            "timers": [], "due_at": None, "error": None}
