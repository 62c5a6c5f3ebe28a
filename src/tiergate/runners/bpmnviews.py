"""What a Tier 1 run shows: its steps' views (kept between answers for a process with a step
that repeats: ``tiergate.runners.keptviews``), the names a ready instance's instructions read, each
BPMN element's state for a diagram, and when its next timer is due. A part of ``BpmnRunner``
(``class BpmnRunner(BpmnViews, BpmnEvents, Runner)``); nothing here changes a run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from SpiffWorkflow.util.task import TaskState

from tiergate.actors import SYSTEM
from tiergate.bpmn import instances, instructions, persistence
from tiergate.bpmn.definition import BpmnDefinition, StepRules
from tiergate.bpmn.moves import Move
from tiergate.bpmn.taskkinds import element_of, is_step
from tiergate.bpmn.timers import parse_datetime
from tiergate.jsontext import Frozen
from tiergate.runners.base import RunContext, StepView
from tiergate.runners.keptviews import KeptViews


class BpmnViews:
    """A Tier 1 run's steps, their instructions' names, its elements' states and its due time (``self`` is
    the BpmnRunner)."""

    _kept: KeptViews  # made by BpmnRunner.__init__

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
