"""What happens to a Tier 1 run besides its steps: a cancel, its due timers, a message or a
signal delivered to it, and a retry of its failed element. A part of ``BpmnRunner``
(``class BpmnRunner(BpmnViews, BpmnEvents, Runner)``); a step's completion and the start stay in
``tiergate.runners.bpmn``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from uuid import UUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import datastore, dataview, dumping, messages, persistence, signals
from tiergate.bpmn.definition import BpmnDefinition
from tiergate.bpmn.moves import Move
from tiergate.bpmn.retrying import check_retry
from tiergate.bpmn.statecopy import copy_state
from tiergate.bpmn.taskkinds import element_of, is_step, is_timer
from tiergate.errors import InvalidDataError, RefusedError, UsageError
from tiergate.gates import check_evidence_size
from tiergate.lifecycle import RunStatus, transition
from tiergate.log import LogEvent
from tiergate.runners.base import RunContext, Transition


class BpmnEvents:
    """Cancel, timers, messages, signals and retry of a Tier 1 run (``self`` is the BpmnRunner)."""

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
