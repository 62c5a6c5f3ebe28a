"""One move of a Tier 1 run: restore it, let the engine run, and say in log events what happened.

``Move`` is what ``tiergate.runners.bpmn.BpmnRunner`` does between reading a run's state and
returning its transition: it restores the workflow with the run's restricted script engine,
runs engine steps and due timers (``tiergate.bpmn.persistence.advance``), and turns what
happened into log events: ``decision_evaluated`` and ``timer_fired`` from the engine's journal,
``escalated`` for a timer with an outgoing path, ``step_skipped`` for a ready step a timer or
the end of the process took away, ``step_ready`` for each new one (``off_path`` when it was
reached through a ``deviation`` flow), and ``failed`` or ``completed``.
"""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate import datastores
from tiergate.actors import SYSTEM
from tiergate.bpmn import events as bpmn_events
from tiergate.bpmn import (dataview, dumping, ending, firstdump, firstmove, fresh, kept, messages,
                          persistence, records, signals)
from tiergate.bpmn.definition import BpmnDefinition
from tiergate.bpmn.movepath import PATH_TRACE, MovePath
from tiergate.bpmn.movesteps import _READY_STEPS, MoveSteps
from tiergate.bpmn.release import release
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow
from tiergate.bpmn.taskkinds import element_of, is_step, step_of
from tiergate.bpmn.timers import parse_datetime
from tiergate.errors import LimitExceededError
from tiergate.limits import limit
from tiergate.lifecycle import RunStatus
from tiergate.log import LogEvent, format_time
from tiergate.runners.base import RunContext


def _has_deviations(model: Any) -> bool:
    """Whether any flow of ``model`` is a deviation, worked out once per model (a loaded model is not changed)."""
    known = model.__dict__.get("_tiergate_deviations")
    if known is None or known[0] != len(model.flows):
        known = model.__dict__["_tiergate_deviations"] = (len(model.flows),
                                                          any(flow.deviation for flow in model.flows.values()))
    return bool(known[1])


class Move(MovePath, MoveSteps):
    """One move of a run: what was ready before, what ran, and the log events that follow."""

    def __init__(self, definition: BpmnDefinition, state: dict[str, Any], ctx: RunContext, events: list[LogEvent]):
        self.definition = definition
        self.model = definition.model
        self.state = state
        self.ctx = ctx
        self.events = events
        self.engine = RestrictedScriptEngine(decisions=definition.decision_objects, now=ctx.now, stores=ctx.stores)
        self.tainted: dict[UUID, str] = {}
        #: Whether any flow of the process is a ``deviation`` (most have none: then no task is off path).
        self.deviations = _has_deviations(self.model)
        self.workflow: RestrictedWorkflow | None = None
        #: The ready steps' tasks when the move began, by ``UUID.int`` (a UUID hashes in Python, an int in C).
        self.ready_before: set[int] = set()
        self.ready_elements: dict[int, str] = {}
        self.thrown: list[bpmn_events.Thrown] = []
        #: Elements the engine ran to completion in this move that are not steps (gateways, events,
        #: script and business rule tasks): kept in ``state["passed"]`` for the run's diagram, since
        #: the pruned task tree forgets them and no log entry names them.
        self.passed: set[str] = set()
        #: An attempt whose move goes over a budget is refused (the run unchanged); a timer's move
        #: (the worker's) fails the run instead, so that it is not tried again and again.
        self.refuse_over_limit = True
        #: The subprocesses of a kept workflow when the move began (``_touched``); None for any other.
        self.subprocesses_before: set[Any] | None = None
        #: The ready steps a kept workflow was kept with (in the tree's order), and this move's changes
        #: to them (``_ready_changes``): None when they are found by going through every task.
        self.ready_kept: dict[int, str] | None = None
        self.changes: tuple[dict[int, Task], list[Task]] | None = None
        #: A new run's first move, when its passes came from a template (``create``): they are not run again.
        self.first: firstmove.First | None = None

    def restore(self) -> RestrictedWorkflow:
        workflow = kept.take(self.state, self.definition.version)
        if workflow is not None:  # the one this state was dumped from, by this process's last move
            workflow.script_engine = self.engine
            self.workflow = workflow
            self.subprocesses_before = set(workflow.subprocesses)
            ready: dict[int, str] | None = getattr(workflow, _READY_STEPS, None)
            if ready is not None:  # what the scan below would find: that move's last scan found it
                self.ready_before, self.ready_elements, self.ready_kept = set(ready), ready, ready  # (read only)
                return self.workflow
        else:
            spec, subprocess_specs = self.definition.specs
            self.workflow = persistence.restore(self.state["workflow"], spec, subprocess_specs, self.engine)
        # Ready steps already announced by a step_ready entry; one that became ready in a move
        # that then failed is announced by the next move that succeeds (after `tiergate retry`).
        self.ready_before = set()
        stored = self.state.get("steps", {})
        for task in persistence.all_tasks(self.workflow):
            if task._state == TaskState.READY and is_step(task):
                element = self.step_of(task) or ""
                if stored.get(element, {}).get("status") == "ready":
                    self.ready_before.add(task.id.int)
                    self.ready_elements[task.id.int] = element
        return self.workflow

    @staticmethod
    def step_of(task: Task) -> str | None:
        """``step_of(task)``, worked out once per task and kept on it (a kept workflow's tasks live
        on between moves): a task's element and instance key never change (a multi-instance
        activity outlives its live instances)."""
        try:
            return task._tiergate_step  # type: ignore[attr-defined, no-any-return]
        except AttributeError:
            found = task._tiergate_step = step_of(task)  # type: ignore[attr-defined]
            return found

    def create(self, data: dict[str, Any], template: bool = True) -> RestrictedWorkflow:
        """A new run's workflow with ``data`` at its root: after the engine's first passes when the spec has a
        first move's template (``tiergate.bpmn.firstmove``), else before them."""
        spec, subprocess_specs = self.definition.specs
        first = firstmove.template_of(spec, subprocess_specs, self.probe_passes) \
            if template and PATH_TRACE.get() is None and firstmove.usable() else None
        if first is not None:
            self.workflow = fresh.copy_template(first.template, spec, subprocess_specs, self.engine, data)
            self.passed, self.first = set(first.template.passed), first
            return self.workflow
        self.workflow = fresh.new_workflow(spec, subprocess_specs, self.engine)
        self.workflow.task_tree.data.update(copy.deepcopy(data))
        return self.workflow

    def probe_passes(self, data: dict[str, Any]) -> tuple[RestrictedWorkflow, set[str], list[Any]] | None:
        """A new workflow with ``data`` after the engine's first passes, with an engine that counts what they
        evaluate, the elements they passed and the specs of the tasks they ran; None if they evaluated, logged
        or failed anything (``tiergate.bpmn.firstmove``)."""
        probe = fresh.Probe(decisions=self.definition.decision_objects)
        move = Move(self.definition, {"steps": {}}, self.ctx, [])
        move.engine = probe
        ran: list[Any] = []
        did_run = move.did_run

        def noting(task: Task) -> None:
            ran.append(task.task_spec)
            did_run(task)

        move.did_run = noting  # type: ignore[method-assign]
        workflow = move.create(data, template=False)
        try:
            closed = move.passes()
        except Exception:  # noqa: BLE001 - a start that fails fails again, the usual way, for the run
            return None
        if closed or probe.calls or probe.journal or probe.over_limit is not None or move.events or move.thrown \
                or move.tainted or messages.unsent(workflow):
            return None
        return workflow, move.passed, ran

    def passes(self) -> bool:
        """The engine's passes of this move, again after idle event subprocesses closed; whether any closed."""
        assert self.workflow is not None
        persistence.advance(self.workflow, self.did_run)
        if ending.close_idle(self.workflow, self.model):  # the flow ended: idle event subprocesses go
            persistence.advance(self.workflow, self.did_run)
            return True
        return False

    def ready_task(self, step_id: str) -> Task | None:
        assert self.workflow is not None
        for task in persistence.all_tasks(self.workflow):
            if task._state == TaskState.READY and is_step(task) and self.step_of(task) == step_id:  # (no property)
                return task
        return None

    # -- running --

    def run(self) -> RunStatus:
        assert self.workflow is not None
        failure: persistence.StepFailure | None = None
        try:
            if self.first is None:
                self.passes()
        except persistence.StepFailure as exc:
            failure = exc
        if failure is not None:
            self.refuse_over_limit_at(failure)
        if failure is None:
            failure = self._uncaught_error()
        for name in messages.unsent(self.workflow):
            self.events.append(LogEvent("message_sent", SYSTEM, detail={"message": name}))
        self.workflow.bpmn_events = []
        self.journal()
        if self.passed:  # bounded by the model's elements: a set, whatever the loops
            self.state["passed"] = sorted(set(self.state.get("passed") or ()) | self.passed)
        if failure is not None:
            return self.failed(failure)
        self._cancelled_steps()
        self._newly_ready()
        self._sync_ready()
        if persistence.is_completed(self.workflow):  # (marks it completed, as ``signals.waiting`` did here)
            # A finished run waits for nothing: what the scans below would find is replaced by nothing
            # further down; the keys are set here, in their order.
            self.state["timers"], self.state["due_at"], self.state["messages"], self.state["signals"] = [], None, [], []
        else:
            self._timers()
            self.state["messages"] = messages.waiting(persistence.all_tasks(self.workflow), self.model, element_of)
            self.state["signals"] = signals.waiting(self.workflow, self.model, element_of)
        self.state["error"] = None
        data = dataview.view(self)  # before the dump, which starts collecting the next move's touched tasks
        self.state["workflow"] = self._dump()
        dataview.keep(self.workflow)
        self.state["data"] = data
        records.freeze(self.state)
        if persistence.is_completed(self.workflow):
            self.events.append(LogEvent("completed", SYSTEM))
            self.state["due_at"], self.state["timers"], self.state["messages"] = None, [], []
            self.state["signals"] = []
            kept.forget(self.state)
            release(self.workflow)  # a finished run is not moved again (tiergate.bpmn.release)
            return RunStatus.COMPLETED
        kept.keep(self.state, self.definition.version, self.workflow)
        return RunStatus.ACTIVE

    def _dump(self) -> Any:
        """The workflow's dump: a first move's spelled from its shape (``tiergate.bpmn.firstdump``) if it has one."""
        assert self.workflow is not None
        first = self.first
        made = None if first is None or first.shape is None else firstdump.dump(first.template, first.shape,
                                                                                 self.workflow)
        return made if made is not None else dumping.dump(self.workflow)

    def refuse_over_limit_at(self, failure: persistence.StepFailure) -> None:
        """An attempt whose move went over a budget is refused (the run unchanged), unless it is the worker's."""
        if self.engine.over_limit is not None and self.refuse_over_limit:
            name, message = self.engine.over_limit
            element = element_of(failure.task) or self.definition.process_id
            raise LimitExceededError(f"element '{element}': {message}. Nothing was changed.",
                                     details={"limit": name, "value": limit(name), "where": element,
                                              "element": element})

    def step_failure(self, exc: BaseException, running: Task) -> persistence.StepFailure:
        """What failed when completing ``running`` raised ``exc`` (a hook of it, or of a task it made ready)."""
        task = getattr(exc, "task", None)
        failure = persistence.StepFailure(task if isinstance(task, Task) else running,
                                          str(exc) or type(exc).__name__)
        self.refuse_over_limit_at(failure)
        return failure

    def journal(self) -> None:
        for entry in self.engine.journal:
            node = self.model.nodes.get(entry.element or "")
            if entry.event in ("decision_evaluated", "data_store_written"):
                self.events.append(LogEvent(entry.event, SYSTEM, step=entry.element, detail=entry.detail))
            elif entry.event == "timer_fired":
                attached = node.attached_to if node is not None else None
                detail = {"timer": entry.element, "task": attached, **entry.detail}
                if detail.get("due"):
                    detail["due"] = format_time(parse_datetime(detail["due"]))
                if node is not None and node.kind == "boundaryEvent":
                    detail["interrupting"] = node.cancel_activity
                self.events.append(LogEvent("timer_fired", SYSTEM, step=attached or entry.element, detail=detail))
                outgoing = self.model.outgoing(entry.element or "")
                if node is not None and node.kind == "boundaryEvent" and outgoing:
                    self.events.append(LogEvent("escalated", SYSTEM, step=attached, detail={
                        "task": attached, "timer": entry.element, "flows": [f.id for f in outgoing],
                        "to": [f.target for f in outgoing], "interrupting": node.cancel_activity}))
                if node is not None and node.kind == "eventBasedGateway":
                    self.events.append(self._gateway_timeout(node.id))
        self.engine.journal.clear()

    def _gateway_timeout(self, gateway: str) -> LogEvent:
        """The timer after an event-based gateway came first: the messages it waited for never did."""
        after = [self.model.nodes[f.target] for f in self.model.outgoing(gateway) if f.target in self.model.nodes]
        timer = next((n.id for n in after if n.timer is not None), None)
        outgoing = self.model.outgoing(timer or "")
        return LogEvent("escalated", SYSTEM, step=gateway, detail={
            "event": "timer", "task": gateway, "timer": timer, "by": timer,
            "instead_of": [n.id for n in after if n.timer is None], "flows": [f.id for f in outgoing],
            "to": [f.target for f in outgoing], "interrupting": True})

    def _uncaught_error(self) -> persistence.StepFailure | None:
        assert self.workflow is not None
        for event in bpmn_events.uncaught_errors(self.workflow):
            code = bpmn_events.code_of(event.event_definition)
            thrown = next((t for t in reversed(self.thrown) if t.code == code), None)
            where = thrown.task if thrown is not None else self.workflow.task_tree
            return persistence.StepFailure(where, f"error '{code}' was thrown and no boundary event or event "
                                                  "subprocess catches it; add one that catches this error code, or "
                                                  "end the path with a plain end event", retryable=False)
        return None

    def failed(self, failure: persistence.StepFailure) -> RunStatus:
        assert self.workflow is not None
        element = (element_of(failure.task) or getattr(failure.task.task_spec, "_tiergate_drawn", None)
                   or self.definition.process_id)  # a split tiergate drew fails at the activity it follows
        node = self.model.nodes.get(element)
        datastores.drop_failed(self.engine, self.events, failure.task)  # it did not complete: no write of it
        self.state["error"] = {"element": element, "message": failure.message, "task": str(failure.task.id)}
        hint = f"fix the data, then `tiergate retry RUN {element} --data '{{...}}'`"
        if not failure.retryable:
            self.state["error"]["retryable"] = False
            hint = "the run cannot go on: cancel it with `tiergate cancel RUN --reason ...`"
        data = dataview.view(self)  # before the dump, which starts collecting the next move's touched tasks
        self.state["workflow"] = dumping.dump(self.workflow)
        dataview.keep(self.workflow)
        self.state["data"] = data
        self._timers()
        records.freeze(self.state)
        self.events.append(LogEvent("failed", SYSTEM, step=element, detail={
            "element": element, "kind": node.kind if node is not None else None, "error": failure.message,
            "retry": hint}))
        return RunStatus.FAILED
