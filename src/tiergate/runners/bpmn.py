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

import copy
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable
from uuid import UUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.actors import SYSTEM, same_actor
from tiergate.bpmn import (datastore, dataview, dumping, firststate, fresh, instances, instructions, lastmove,
                          messages, persistence, records, signals)
from tiergate.bpmn.definition import BpmnDefinition, StepRules
from tiergate.bpmn.moves import Move
from tiergate.bpmn.statecopy import copy_state
from tiergate.bpmn.taskkinds import element_of, is_step, is_timer
from tiergate.bpmn.retrying import check_retry
from tiergate.bpmn.timers import parse_datetime
from tiergate.definitions.home import TIER_FILES
from tiergate.errors import InvalidDataError, ReasonMissingError, RefusedError, UsageError
from tiergate.gates import check_evidence_size, enforce, gate_errors
from tiergate.jsontext import Frozen
from tiergate.lifecycle import RunStatus, transition
from tiergate.log import LogEvent, format_time
from tiergate.runners.base import RunContext, Runner, StepView, Transition
from tiergate.runners.checklist import actor_may_act, roles_unreadable
from tiergate.runners.keptviews import KeptViews

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

    def __init__(self) -> None:
        self._kept = KeptViews()

    def steps(self, definition: BpmnDefinition, state: dict[str, Any], *, run: dict[str, Any]) -> list[StepView]:
        """Every step's view; for a process with a step that repeats, the views of records unchanged since this
        run's last answer are that answer's (``tiergate.runners.keptviews``: shared, so never changed in place)."""
        stored = state.get("steps", {})

        def made() -> list[tuple[StepRules, str, str | None]]:
            by_element = instances.by_element(stored) if any(r.repeats for r in definition.steps.values()) else {}
            specs: list[tuple[StepRules, str, str | None]] = []
            for rules in definition.steps.values():
                ids: list[tuple[str, str | None]] = [(rules.id, None)]
                if rules.repeats:
                    ids = by_element.get(rules.id) or ids
                specs.extend((rules, step_id, key) for step_id, key in ids)
            return specs

        def make(rules: StepRules, step_id: str, key: str | None) -> StepView:
            view = _view(rules, step_id, key, stored.get(step_id, _NO_RECORD))
            # Four eyes per instance (``_distinct``): ``verify[2]`` against ``prepare[2]`` if that exists.
            other = rules.distinct_from
            if other is not None and key is not None and f"{other}[{key}]" in stored:
                view.distinct_from = f"{other}[{key}]"
            return view

        # Kept only for a process with a step that repeats (multi-instance, loops: its records grow with the run);
        # the few views of any other are made whole, as for a run read back, which gives the same views.
        repeats = any(rules.repeats for rules in definition.steps.values())
        return self._kept.steps(run.get("id") if repeats else None, definition, stored, made, make)

    def render(self, views: list[StepView], data: dict[str, Any], *, run_id: str, process_id: str,
               bare_names: dict[str, dict[str, Any]] | None = None) -> None:
        self._kept.render(run_id, views, data, process_id=process_id, bare_names=bare_names)

    def instruction_names(self, definition: BpmnDefinition, state: dict[str, Any],
                          views: list[StepView]) -> dict[str, dict[str, Any]]:
        """Each ready instance's item by the name its marker gives it, as in its task's data in SpiffWorkflow
        (``{{ person.id }}`` for the instance of ``person``): ``instructions.item_names``."""
        named = instructions.item_names(definition)
        if not named:
            return {}
        from tiergate.templating import names_read  # noqa: I001 - Jinja: only for a process with items

        # only the elements whose instructions read their item: 1,000 open instances of another add nothing
        read = {element: name for element, name in named.items() if element in definition.steps
                and name in (names_read(definition.steps[element].instructions) or ())}
        if not read:
            return {}
        stored = state.get("steps", {})
        found: dict[str, dict[str, Any]] = {}
        for view in views:
            if view.state == "ready" and view.id.endswith("]") and view.instructions:
                element, key = instances.split(view.id)
                if key is not None and element in read and "item" in stored.get(view.id, {}):
                    found[view.id] = {read[element]: stored[view.id]["item"]}
        return found

    def element_states(self, definition: BpmnDefinition, state: dict[str, Any]) -> dict[str, str]:
        """Each BPMN element the run has reached, by id: ``failed``, ``ready`` (a step to do now),
        ``waiting`` (a timer, a message catch, a subprocess under way) or ``finished``; for a diagram.

        From the task tree as SpiffWorkflow holds it now, and the step records and the elements
        the engine passed (``state["passed"]``) for what the pruned tree no longer holds. Nothing
        runs: the tree is only read.
        """
        rank = {"finished": 0, "waiting": 1, "ready": 2, "failed": 3}
        found: dict[str, str] = {}

        def mark(element: str | None, what: str) -> None:
            if element and element in definition.model.nodes and rank[what] >= rank.get(found.get(element, ""), -1):
                found[element] = what

        for step_id, record in state.get("steps", {}).items():
            if record.get("status") in ("done", "skipped"):
                mark(instances.split(step_id)[0], "finished")
        for element in state.get("passed") or ():  # gateways, events, ... the engine ran (bpmn.moves)
            mark(element, "finished")
        if state.get("workflow"):
            ctx = RunContext(run_id="", actor=SYSTEM, now=datetime.now(timezone.utc))
            workflow = Move(definition, state, ctx, []).restore()
            for task in persistence.all_tasks(workflow):
                element = element_of(task)
                if task.state == TaskState.COMPLETED:
                    mark(element, "finished")
                elif task.state == TaskState.ERROR:
                    mark(element, "failed")
                elif task.state == TaskState.READY and is_step(task):
                    mark(element, "ready")
                elif task.state in (TaskState.WAITING, TaskState.STARTED, TaskState.READY):
                    mark(element, "waiting")
        error = state.get("error") or {}
        mark(error.get("element"), "failed")
        return found

    def due_at(self, state: dict[str, Any]) -> datetime | None:
        value = state.get("due_at")
        return parse_datetime(value) if value else None

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

    def cancel(self, definition: BpmnDefinition, state: dict[str, Any], reason: str, ctx: RunContext) -> Transition:
        state = copy_state(state)
        state["due_at"], state["timers"] = None, []
        return Transition(state=state, status=RunStatus.CANCELLED,
                          events=[LogEvent("cancelled", ctx.actor, detail={"reason": reason})])

    def fire_timers(self, definition: BpmnDefinition, state: dict[str, Any], ctx: RunContext) -> Transition:
        """Run the timers due by ``ctx.now`` (the worker calls this) and whatever follows them."""
        state = copy_state(state)
        events: list[LogEvent] = []
        move = Move(definition, state, ctx, events)
        move.refuse_over_limit = False
        move.restore()
        status = move.run()
        return Transition(state=state, status=status, events=events)

    def deliver_message(self, definition: BpmnDefinition, state: dict[str, Any], name: str,
                        correlate: dict[str, Any], data: dict[str, Any], ctx: RunContext) -> Transition:
        """Hand message ``name`` to the catch of this run that waits for it (``tiergate.bpmn.messages``)."""
        state, events, move, workflow = _delivery(definition, state, data, ctx, "message")
        task: Task | None = None
        for candidate in persistence.all_tasks(workflow):
            entry = next((e for e in messages.waiting_catches([candidate], definition.model, element_of)
                          if messages.matches(e, name, correlate)), None)
            if entry is not None:
                task = candidate
                break
        else:  # a message start event of an event subprocess (SpiffWorkflow keeps it on the start task)
            entry = next((e for e in messages.event_starts(workflow, definition.model)
                          if messages.matches(e, name, correlate)), None)
        if entry is None:
            raise RefusedError(f"run {ctx.run_id} does not wait for message '{name}' with {correlate or 'no keys'}.",
                               reason="not_waiting", details={"run": ctx.run_id, "message": name,
                                                              "waiting_for": state.get("messages", [])})
        events.append(LogEvent("message_received", ctx.actor, step=entry["element"], detail={
            "message": name, "correlate": correlate, "data": data, "sender": str(ctx.actor)}))
        state.setdefault("sources", {}).update({key: f"message:{name}" for key in data})
        if task is not None:
            messages.deliver(task, name, data)
        else:
            messages.start_event_subprocess(workflow, entry["element"], name, data)
        status = move.run()
        return Transition(state=state, status=status, events=events)

    def deliver_signal(self, definition: BpmnDefinition, state: dict[str, Any], name: str, data: dict[str, Any],
                       ctx: RunContext, thrown_by: dict[str, Any] | None = None) -> Transition:
        """Hand signal ``name`` to every element of this run waiting for it (``tiergate.bpmn.signals``)."""
        state, events, move, workflow = _delivery(definition, state, data, ctx, "signal")
        elements = sorted({str(e["element"]) for e in signals.waiting(workflow, definition.model, element_of)
                           if e["signal"] == name})
        detail: dict[str, Any] = {"signal": name, "data": data, "sender": str(ctx.actor), "elements": elements}
        if thrown_by:
            detail["thrown_by"] = thrown_by
        events.append(LogEvent("signal_received", ctx.actor, step=elements[0] if len(elements) == 1 else None,
                               detail=detail))
        if not elements or signals.deliver(workflow, name, data) == 0:
            raise RefusedError(f"run {ctx.run_id} does not wait for signal '{name}'.", reason="not_waiting",
                               details={"run": ctx.run_id, "signal": name,
                                        "waiting_for": state.get("signals", [])})
        state.setdefault("sources", {}).update({key: f"signal:{name}" for key in data})
        status = move.run()
        return Transition(state=state, status=status, events=events)

    def retry(self, definition: BpmnDefinition, state: dict[str, Any], element: str, data: dict[str, Any],
              ctx: RunContext, owner: str | None = None) -> Transition:
        """Run the failed element again, after merging ``data`` into its task's data.

        Only members of the retry roles, and only data the element reads (``tiergate.bpmn.retrying``)."""
        error = state.get("error") or {}
        if not error:
            raise RefusedError(f"run {ctx.run_id} has no failed element to retry.", reason="not_failed",
                               details={"run": ctx.run_id, "step": element})
        if error.get("retryable") is False:
            raise RefusedError(f"run {ctx.run_id} failed at '{error.get('element')}' in a way a retry cannot mend: "
                               f"{error.get('message')}. Cancel the run with `tiergate cancel {ctx.run_id} --reason "
                               "...`.", reason="not_retryable", details={"run": ctx.run_id, "step": element})
        if error.get("element") != element:
            raise RefusedError(f"run {ctx.run_id} failed at '{error.get('element')}', not at '{element}'. Retry "
                               f"with `tiergate retry {ctx.run_id} {error.get('element')}`.", reason="unknown_step",
                               details={"run": ctx.run_id, "step": element, "failed_at": error.get("element")})
        if not isinstance(data, dict):
            raise InvalidDataError("--data for a retry must be a JSON object of fields to set.")
        check_evidence_size(data)
        check_retry(definition, state, element, data, ctx, owner)
        state = copy_state(state)
        events = [LogEvent("step_ready", ctx.actor, step=element,
                           detail={"retry": True, "data": data, "error": error.get("message")})]
        move = Move(definition, state, ctx, events)
        workflow = move.restore()
        task = None
        try:
            task = workflow.get_task_from_id(UUID(error["task"]))
        except Exception:  # noqa: BLE001 - a pruned or unknown task: handled below
            task = None
        if task is None:
            raise RefusedError(f"the failed task of '{element}' is no longer in run {ctx.run_id}.",
                               reason="unknown_step", details={"run": ctx.run_id, "step": element})
        # Never a store write from a stale read: a task that computes its output runs again on the stores as
        # they are now; a person's step (its evidence) or a completed task decided it on the old read: refused.
        datastore.retry_reads(move, task, element, computes=task.state == TaskState.ERROR and not is_step(task))
        task.data.update(copy.deepcopy(data))
        dumping.forget(workflow)  # data written beside a timer may land in a parked task: dump every task again
        dataview.forget(workflow)  # ... and merge every task's data again
        again: Callable[[Task], Any] | None = None  # what is run again on the task (a failure leaves the run failed)
        if task.state == TaskState.ERROR:
            task._set_state(TaskState.READY)
        elif is_timer(task):
            # A timer takes its data from its parent each time it is updated, and shares it with
            # the task it sits on: the fix goes to all of them.
            task.internal_data.pop("event_value", None)
            if task.parent is not None:
                for related in (task.parent, *task.parent.children):
                    if not related.has_state(TaskState.COMPLETED | TaskState.CANCELLED) or related is task.parent:
                        related.data.update(copy.deepcopy(data))
            # A timer whose value failed never reached the waiting list: evaluate it again now, so that
            # it waits for its due time, or the run stays failed with the new error (never a silent stall).
            again = task.task_spec._update
        elif task.state == TaskState.COMPLETED:
            # It failed while completing (a data object it writes, a post-script): complete it again.
            again = task.task_spec._on_complete
        elif task.state == TaskState.FUTURE:
            # It failed while becoming ready (a loop condition, a multi-instance collection): update it again.
            # It takes its data from its parent then, so the fix goes there too.
            if task.parent is not None:
                task.parent.data.update(copy.deepcopy(data))
            again = task.task_spec._update
        if again is not None:
            try:
                again(task)
            except Exception as exc:  # noqa: BLE001 - it fails again: the run stays failed, with this error
                move.journal()
                return Transition(state=state, status=move.failed(move.step_failure(exc, task)), events=events)
        status = move.run()
        transition(ctx.run_id, transition(ctx.run_id, RunStatus.FAILED, RunStatus.ACTIVE), status)
        return Transition(state=state, status=status, events=events)

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


_NO_RECORD: dict[str, Any] = {}


def _view(rules: StepRules, step_id: str, key: str | None, record: dict[str, Any]) -> StepView:
    """The step's view. What it holds comes from its rules and its record alone, so a frozen record
    (``tiergate.bpmn.records``: never changed) keeps it, and the next answer copies it instead of
    working it out again: with 1,000 instances open, 1,000 views are made on every step."""
    frozen = type(record) is Frozen
    memo = record.memo if frozen else None  # type: ignore[attr-defined]
    if memo is not None and memo[0] is rules and memo[1] == step_id:
        fields = memo[2]
    else:
        title = rules.title if key is None else f"{rules.title} [{_item_label(record, key)}]"
        fields = StepView(
            id=step_id, title=title, state=record.get("status", "locked"), optional=rules.optional,
            instructions=rules.instructions, done_when=rules.gate, distinct_from=rules.distinct_from,
            actor=record.get("actor"), at=record.get("at"), ready_at=record.get("ready_at"),
            evidence=record.get("evidence"), reason=record.get("reason")).__dict__
        if frozen:
            record.memo = (rules, step_id, fields)  # type: ignore[attr-defined]
    view = _new_view(StepView)
    view.__dict__.update(fields)  # in the dataclass's order of fields, as a view made field by field
    view.actors, view.roles, view.waits_for = list(rules.actors), list(rules.roles), []
    return view


_new_view = object.__new__


def _item_label(record: dict[str, Any], key: str) -> str:
    item = record.get("item")
    return str(item) if isinstance(item, (str, int, float)) and len(str(item)) <= 60 else key


def _delivery(definition: BpmnDefinition, state: dict[str, Any], data: Any, ctx: RunContext,
              kind: str) -> tuple[dict[str, Any], list[LogEvent], Move, Any]:
    """What delivering a message or a signal starts with: its data checked (a JSON object within the evidence
    limit), the state copied, and the run's workflow restored in a new move that logs into the events."""
    if not isinstance(data, dict):
        raise UsageError(f"--data for a {kind} must be a JSON object of fields.", code="invalid_data")
    check_evidence_size(data)
    state = copy_state(state)
    events: list[LogEvent] = []
    move = Move(definition, state, ctx, events)
    return state, events, move, move.restore()
