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
     "timers":   [{"timer", "task", "due"}], "due_at": "...",    # waiting timers; the worker reads due_at
     "error":    {"element", "message", "task"} | null}           # why the run failed, for `tiergate retry`
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Callable
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.actors import SYSTEM
from tiergate.bpmn import persistence
from tiergate.bpmn.definition import BpmnDefinition, StepRules
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow
from tiergate.bpmn.timers import due_of, parse_datetime
from tiergate.definitions.home import TIER_FILES
from tiergate.errors import RefusedError, UsageError
from tiergate.gates import check_evidence_size, enforce, gate_errors
from tiergate.jsonutil import to_jsonable
from tiergate.lifecycle import RunStatus, transition
from tiergate.log import LogEvent, format_time
from tiergate.runners.base import RunContext, Runner, StepView, Transition
from tiergate.runners.checklist import actor_may_act

_SPLIT = ".BoundaryEventSplit"


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _element(task: Task) -> str | None:
    spec = task.task_spec
    element = getattr(spec, "bpmn_id", None)
    if element:
        return str(element)
    if spec.name.endswith(_SPLIT):
        return spec.name[: -len(_SPLIT)]
    return None


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy to change: everything but the workflow, which is only ever replaced whole."""
    return {key: value if key == "workflow" else copy.deepcopy(value) for key, value in state.items()}


def _is_step(task: Task) -> bool:
    return bool(task.task_spec.manual) and _element(task) is not None


def _is_timer(task: Task) -> bool:
    return isinstance(task.task_spec, CatchingEvent) and isinstance(task.task_spec.event_definition,
                                                                     TimerEventDefinition)


class _Advance:
    """One move of a run: what was ready before, what ran, and the log events that follow."""

    def __init__(self, runner: "BpmnRunner", definition: BpmnDefinition, state: dict[str, Any], ctx: RunContext,
                 events: list[LogEvent]):
        self.definition = definition
        self.model = definition.model
        self.state = state
        self.ctx = ctx
        self.events = events
        self.engine = RestrictedScriptEngine(decisions=definition.decision_objects, now=ctx.now)
        self.tainted: dict[UUID, str] = {}
        self.workflow: RestrictedWorkflow | None = None
        self.ready_before: set[UUID] = set()
        self.ready_elements: dict[UUID, str] = {}

    def restore(self) -> RestrictedWorkflow:
        spec, subprocess_specs = self.definition.specs
        self.workflow = persistence.restore(self.state["workflow"], spec, subprocess_specs, self.engine)
        self.ready_before = set()
        for task in persistence.all_tasks(self.workflow):
            if task.state == TaskState.READY and _is_step(task):
                self.ready_before.add(task.id)
                self.ready_elements[task.id] = _element(task) or ""
        return self.workflow

    def create(self, data: dict[str, Any]) -> RestrictedWorkflow:
        spec, subprocess_specs = self.definition.specs
        self.workflow = persistence.new_workflow(spec, subprocess_specs, self.engine)
        self.workflow.task_tree.data.update(copy.deepcopy(data))
        return self.workflow

    def ready_task(self, step_id: str) -> Task | None:
        assert self.workflow is not None
        for task in persistence.all_tasks(self.workflow):
            if task.state == TaskState.READY and _element(task) == step_id and _is_step(task):
                return task
        return None

    # -- off-path tracking: which deviation flow (if any) led to a task --

    def _deviation(self, source: str | None, target: str | None) -> str | None:
        if source is None or target is None:
            return None
        for flow in self.model.flows_between(source, target):
            if flow.deviation:
                return flow.id
        return None

    def incoming_taint(self, task: Task, depth: int = 0) -> str | None:
        if depth > 50:
            return None
        parent = task.parent
        if parent is None:
            assert self.workflow is not None
            owner_id = getattr(task.workflow, "parent_task_id", None)
            if owner_id is None:
                return None
            owner = self.workflow.get_task_from_id(owner_id)
            return self.tainted.get(owner.id) or self.incoming_taint(owner, depth + 1)
        source, target = _element(parent), _element(task)
        if source is None or source == target:
            return self.tainted.get(parent.id) or self.incoming_taint(parent, depth + 1)
        return self._deviation(source, target) or self.tainted.get(parent.id)

    def did_run(self, task: Task) -> None:
        taint = self.incoming_taint(task)
        if taint:
            self.tainted[task.id] = taint

    # -- running --

    def run(self) -> RunStatus:
        assert self.workflow is not None
        failure: persistence.StepFailure | None = None
        try:
            persistence.advance(self.workflow, self.did_run)
        except persistence.StepFailure as exc:
            failure = exc
        self._journal()
        if failure is not None:
            return self._failed(failure)
        self._cancelled_steps()
        self._newly_ready()
        self._sync_ready()
        self._timers()
        self.state["error"] = None
        self.state["workflow"] = persistence.dump(self.workflow)
        self.state["data"] = self._data_view()
        if self.workflow.is_completed():
            self.events.append(LogEvent("completed", SYSTEM))
            self.state["due_at"], self.state["timers"] = None, []
            return RunStatus.COMPLETED
        return RunStatus.ACTIVE

    def _journal(self) -> None:
        for entry in self.engine.journal:
            node = self.model.nodes.get(entry.element or "")
            if entry.event == "decision_evaluated":
                self.events.append(LogEvent("decision_evaluated", SYSTEM, step=entry.element, detail=entry.detail))
            elif entry.event == "timer_fired":
                attached = node.attached_to if node is not None else None
                detail = {"timer": entry.element, "task": attached, **entry.detail}
                if node is not None and node.kind == "boundaryEvent":
                    detail["interrupting"] = node.cancel_activity
                self.events.append(LogEvent("timer_fired", SYSTEM, step=attached or entry.element, detail=detail))
                outgoing = self.model.outgoing(entry.element or "")
                if node is not None and node.kind == "boundaryEvent" and outgoing:
                    self.events.append(LogEvent("escalated", SYSTEM, step=attached, detail={
                        "task": attached, "timer": entry.element, "flows": [f.id for f in outgoing],
                        "to": [f.target for f in outgoing], "interrupting": node.cancel_activity}))
        self.engine.journal.clear()

    def _failed(self, failure: persistence.StepFailure) -> RunStatus:
        assert self.workflow is not None
        element = _element(failure.task) or self.definition.process_id
        node = self.model.nodes.get(element)
        self.state["error"] = {"element": element, "message": failure.message, "task": str(failure.task.id)}
        self.state["workflow"] = persistence.dump(self.workflow)
        self.state["data"] = self._data_view()
        self._timers()
        self.events.append(LogEvent("failed", SYSTEM, step=element, detail={
            "element": element, "kind": node.kind if node is not None else None, "error": failure.message,
            "retry": f"fix the data, then `tiergate retry RUN {element} --data '{{...}}'`"}))
        return RunStatus.FAILED

    def _cancelled_steps(self) -> None:
        assert self.workflow is not None
        present = {t.id: t for t in persistence.all_tasks(self.workflow)}
        interrupted = {e.detail.get("task"): e.detail.get("timer") for e in self.events
                       if e.event == "timer_fired" and e.detail.get("interrupting")}
        for task_id in self.ready_before:
            task = present.get(task_id)
            if task is not None and not task.has_state(TaskState.CANCELLED):
                continue
            element = self.ready_elements.get(task_id)
            if not element or self.state["steps"].get(element, {}).get("status") != "ready":
                continue
            if self.ready_task(element) is not None:
                continue
            timer = interrupted.get(element)
            reason = (f"interrupted by timer '{timer}'" if timer else
                      "cancelled: the process moved on without it")
            record = self.state["steps"][element]
            record.update(status="skipped", at=format_time(self.ctx.now), actor=str(SYSTEM), reason=reason)
            self.events.append(LogEvent("step_skipped", SYSTEM, step=element, detail={"reason": reason}))

    def _newly_ready(self) -> None:
        assert self.workflow is not None
        seen: set[str] = set()
        for task in persistence.all_tasks(self.workflow):
            if task.state != TaskState.READY or not _is_step(task) or task.id in self.ready_before:
                continue
            element = _element(task)
            assert element is not None
            record = self.state["steps"].setdefault(element, {"status": "locked"})
            if element in seen:
                continue
            seen.add(element)
            record.update(status="ready", ready_at=format_time(self.ctx.now))
            detail: dict[str, Any] = {}
            taint = self.incoming_taint(task)
            if taint:
                detail = {"off_path": True, "flow": taint}
            self.events.append(LogEvent("step_ready", SYSTEM, step=element, detail=detail))

    def _sync_ready(self) -> None:
        """A step with a ready task is ready, even if another instance of it was just completed."""
        assert self.workflow is not None
        for task in persistence.all_tasks(self.workflow):
            if task.state == TaskState.READY and _is_step(task):
                record = self.state["steps"].setdefault(_element(task) or "", {})
                if record.get("status") != "ready":
                    record["status"] = "ready"
                    record.setdefault("ready_at", format_time(self.ctx.now))

    def _timers(self) -> None:
        assert self.workflow is not None
        timers = []
        for task in persistence.all_tasks(self.workflow):
            if task.state != TaskState.WAITING or not _is_timer(task):
                continue
            due = due_of(task)
            if due is None:
                continue
            element = _element(task)
            node = self.model.nodes.get(element or "")
            timers.append({"timer": element, "task": node.attached_to if node is not None else None,
                           "due": format_time(due)})
        timers.sort(key=lambda t: t["due"])
        self.state["timers"] = timers
        self.state["due_at"] = timers[0]["due"] if timers else None

    def _data_view(self) -> dict[str, Any]:
        assert self.workflow is not None
        if self.workflow.is_completed():
            return to_jsonable(self.workflow.data or (self.workflow.last_task.data if self.workflow.last_task else {}))
        tasks = persistence.all_tasks(self.workflow)
        chosen = [t for t in tasks if t.state in (TaskState.READY, TaskState.ERROR) and _element(t) is not None]
        if not chosen:
            chosen = [t for t in tasks if t.state == TaskState.WAITING and _element(t) is not None]
        merged: dict[str, Any] = {}
        for task in chosen or [self.workflow.task_tree]:
            merged.update(task.data)
        return to_jsonable(merged)


class BpmnRunner(Runner):
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

    def steps(self, definition: BpmnDefinition, state: dict[str, Any], *, run: dict[str, Any]) -> list[StepView]:
        views = []
        for rules in definition.steps.values():
            record = state.get("steps", {}).get(rules.id, {})
            views.append(StepView(
                id=rules.id, title=rules.title, state=record.get("status", "locked"), optional=rules.optional,
                actors=list(rules.actors), roles=list(rules.roles), instructions=rules.instructions,
                done_when=rules.gate, distinct_from=rules.distinct_from, actor=record.get("actor"),
                at=record.get("at"), ready_at=record.get("ready_at"), evidence=record.get("evidence"),
                reason=record.get("reason")))
        return views

    def due_at(self, state: dict[str, Any]) -> datetime | None:
        value = state.get("due_at")
        return parse_datetime(value) if value else None

    # --- changing ------------------------------------------------------------------------

    def start(self, definition: BpmnDefinition, data: dict[str, Any], ctx: RunContext) -> Transition:
        if not isinstance(data, dict):
            raise UsageError("start data must be a JSON object.", code="invalid_data")
        errors = gate_errors(definition.validator("__inputs__"), data)
        if errors:
            lines = "\n".join(f"  {e['pointer']}: {e['message']}" for e in errors)
            raise UsageError(f"start data for '{definition.process_id}' is not valid:\n{lines}\n"
                             f"`tiergate processes --json` shows each process's inputs schema.",
                             code="invalid_data", details={"errors": errors})
        state: dict[str, Any] = {"workflow": {}, "data": copy.deepcopy(data),
                                 "steps": {step_id: {"status": "locked"} for step_id in definition.steps},
                                 "timers": [], "due_at": None, "error": None}
        events = [LogEvent("started", ctx.actor, detail={"data": data})]
        move = _Advance(self, definition, state, ctx, events)
        move.create(data)
        status = move.run()
        return Transition(state=state, status=status, events=events)

    def complete_step(self, definition: BpmnDefinition, state: dict[str, Any], step_id: str, evidence: Any,
                      ctx: RunContext) -> Transition:
        rules = self._ready_step(definition, state, step_id, ctx.run_id)
        actor_may_act(rules, ctx.actor, ctx.roles, ctx.run_id)  # type: ignore[arg-type]
        self._four_eyes(rules, state, ctx)
        if not isinstance(evidence, dict):
            raise UsageError(f"evidence for step '{step_id}' must be a JSON object of fields, not "
                             f"{type(evidence).__name__}.", code="invalid_evidence")
        check_evidence_size(evidence)
        enforce(definition.validator(step_id), evidence, run_id=ctx.run_id, step_id=step_id)

        def apply(task: Task, record: dict[str, Any], events: list[LogEvent], duration: float | None) -> None:
            overwritten = {k: {"was": task.data[k]} for k, v in evidence.items() if k in task.data
                           and task.data[k] != v}
            task.data.update(copy.deepcopy(evidence))
            record.update(status="done", at=format_time(ctx.now), actor=str(ctx.actor), evidence=evidence,
                          times=record.get("times", 0) + 1)
            record.pop("reason", None)
            detail: dict[str, Any] = {"evidence": evidence}
            if overwritten:
                detail["overwrote"] = overwritten
            events.append(LogEvent("step_completed", ctx.actor, step=step_id, detail=detail, duration_s=duration))

        return self._finish_step(definition, state, step_id, ctx, apply)

    def skip_step(self, definition: BpmnDefinition, state: dict[str, Any], step_id: str, reason: str,
                  ctx: RunContext) -> Transition:
        rules = self._ready_step(definition, state, step_id, ctx.run_id)
        if not rules.optional:
            raise RefusedError(f"step '{step_id}' is required and cannot be skipped. Complete it with "
                               f"`tiergate complete {ctx.run_id} {step_id} --evidence ...`.", reason="not_optional",
                               details={"run": ctx.run_id, "step": step_id})
        if not reason.strip():
            raise UsageError("a skip needs a reason: say why the step is not needed (--reason).",
                             code="reason_missing")
        actor_may_act(rules, ctx.actor, ctx.roles, ctx.run_id)  # type: ignore[arg-type]

        def apply(task: Task, record: dict[str, Any], events: list[LogEvent], duration: float | None) -> None:
            record.update(status="skipped", at=format_time(ctx.now), actor=str(ctx.actor), reason=reason)
            events.append(LogEvent("step_skipped", ctx.actor, step=step_id, detail={"reason": reason},
                                   duration_s=duration))

        return self._finish_step(definition, state, step_id, ctx, apply)

    def cancel(self, definition: BpmnDefinition, state: dict[str, Any], reason: str, ctx: RunContext) -> Transition:
        state = _copy_state(state)
        state["due_at"], state["timers"] = None, []
        return Transition(state=state, status=RunStatus.CANCELLED,
                          events=[LogEvent("cancelled", ctx.actor, detail={"reason": reason})])

    def fire_timers(self, definition: BpmnDefinition, state: dict[str, Any], ctx: RunContext) -> Transition:
        """Run the timers due by ``ctx.now`` (the worker calls this) and whatever follows them."""
        state = _copy_state(state)
        events: list[LogEvent] = []
        move = _Advance(self, definition, state, ctx, events)
        move.restore()
        status = move.run()
        return Transition(state=state, status=status, events=events)

    def retry(self, definition: BpmnDefinition, state: dict[str, Any], element: str, data: dict[str, Any],
              ctx: RunContext) -> Transition:
        """Run the failed element again, after merging ``data`` into its task's data."""
        error = state.get("error") or {}
        if not error:
            raise RefusedError(f"run {ctx.run_id} has no failed element to retry.", reason="not_failed",
                               details={"run": ctx.run_id, "step": element})
        if error.get("element") != element:
            raise RefusedError(f"run {ctx.run_id} failed at '{error.get('element')}', not at '{element}'. Retry "
                               f"with `tiergate retry {ctx.run_id} {error.get('element')}`.", reason="unknown_step",
                               details={"run": ctx.run_id, "step": element, "failed_at": error.get("element")})
        if not isinstance(data, dict):
            raise UsageError("--data for a retry must be a JSON object of fields to set.", code="invalid_data")
        check_evidence_size(data)
        state = _copy_state(state)
        events = [LogEvent("step_ready", ctx.actor, step=element,
                           detail={"retry": True, "data": data, "error": error.get("message")})]
        move = _Advance(self, definition, state, ctx, events)
        workflow = move.restore()
        task = None
        try:
            task = workflow.get_task_from_id(UUID(error["task"]))
        except Exception:  # noqa: BLE001 - a pruned or unknown task: handled below
            task = None
        if task is None:
            raise RefusedError(f"the failed task of '{element}' is no longer in run {ctx.run_id}.",
                               reason="unknown_step", details={"run": ctx.run_id, "step": element})
        task.data.update(copy.deepcopy(data))
        if task.state == TaskState.ERROR:
            task._set_state(TaskState.READY)
        elif _is_timer(task):
            task.internal_data.pop("event_value", None)
        status = move.run()
        transition(ctx.run_id, transition(ctx.run_id, RunStatus.FAILED, RunStatus.ACTIVE), status)
        return Transition(state=state, status=status, events=events)

    # --- helpers -------------------------------------------------------------------------

    def _finish_step(self, definition: BpmnDefinition, state: dict[str, Any], step_id: str, ctx: RunContext,
                     apply: Callable[[Task, dict[str, Any], list[LogEvent], float | None], None]) -> Transition:
        state = _copy_state(state)
        events: list[LogEvent] = []
        move = _Advance(self, definition, state, ctx, events)
        move.restore()
        task = move.ready_task(step_id)
        if task is None:  # the stored step states and the tree disagree: refuse rather than guess
            raise RefusedError(f"step '{step_id}' is not ready in run {ctx.run_id}.", reason="not_ready",
                               details={"run": ctx.run_id, "step": step_id, "waiting_for": []})
        move.ready_before.discard(task.id)
        record = state["steps"].setdefault(step_id, {})
        ready_at = record.get("ready_at")
        duration = (ctx.now - _parse(ready_at)).total_seconds() if ready_at else None
        apply(task, record, events, duration)
        try:
            task.run()
        except Exception as exc:  # noqa: BLE001 - a failing completion hook fails the run like any step
            failure = persistence.StepFailure(task, str(exc) or type(exc).__name__)
            move._journal()
            status = move._failed(failure)
            return Transition(state=state, status=status, events=events)
        status = move.run()
        return Transition(state=state, status=status, events=events)

    def _ready_step(self, definition: BpmnDefinition, state: dict[str, Any], step_id: str,
                    run_id: str) -> StepRules:
        rules = definition.steps.get(step_id)
        if rules is None:
            known = ", ".join(definition.steps)
            raise RefusedError(f"run {run_id} has no step '{step_id}'. Its steps are: {known}.",
                               reason="unknown_step", details={"run": run_id, "step": step_id})
        record = state.get("steps", {}).get(step_id, {})
        status = record.get("status", "locked")
        if status in ("done", "skipped"):
            verb = "completed" if status == "done" else "skipped"
            raise RefusedError(f"step '{step_id}' was already {verb} by {record.get('actor')} at {record.get('at')}. "
                               f"Nothing to do; `tiergate status {run_id}` shows what is ready.",
                               reason="already_done", details={"run": run_id, "step": step_id,
                                                               "by": record.get("actor"), "at": record.get("at")})
        if status != "ready":
            waiting = [s for s, r in state.get("steps", {}).items() if r.get("status") == "ready"]
            timers = [f"timer {t['timer']} (due {t['due']})" for t in state.get("timers", [])]
            what = ", ".join(waiting + timers) or "steps that are not reached yet"
            raise RefusedError(f"step '{step_id}' is not ready: it waits for {what}. Finish those first.",
                               reason="not_ready", details={"run": run_id, "step": step_id, "waiting_for": waiting})
        return rules

    def _four_eyes(self, rules: StepRules, state: dict[str, Any], ctx: RunContext) -> None:
        if rules.distinct_from is None:
            return
        earlier = state.get("steps", {}).get(rules.distinct_from, {})
        if earlier.get("status") == "done" and earlier.get("actor") == str(ctx.actor):
            raise RefusedError(f"step '{rules.id}' must be done by someone other than who did "
                               f"'{rules.distinct_from}' ({ctx.actor}). Ask another person or agent.",
                               reason="same_actor", details={"run": ctx.run_id, "step": rules.id,
                                                             "distinct_from": rules.distinct_from})

