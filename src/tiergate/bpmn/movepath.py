"""Which way a Tier 1 move went: the deviation flow (if any) that led to each task it ran (``off_path``),
the elements and flows a scenario test traces (``PATH_TRACE``), and what each task the engine ran
leaves in the log (a catch, a thrown error, a thrown signal). A part of ``Move``
(``class Move(MovePath, MoveSteps)``), called on every task the engine runs.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.actors import SYSTEM
from tiergate.bpmn import events as bpmn_events
from tiergate.bpmn import signals
from tiergate.bpmn.taskkinds import element_of, is_step
from tiergate.log import LogEvent

if TYPE_CHECKING:
    from tiergate.bpmn.moves import Move

#: Set only by scenario tests (``tiergate.scenarios``) to learn which elements and flows a run
#: took: each element a move reaches is appended with the element it came from. Nothing else
#: reads or sets it, and a run's state and log do not depend on it.
PATH_TRACE: ContextVar[list[tuple[str | None, str]] | None] = ContextVar("tiergate_path_trace", default=None)


class MovePath:
    """Off-path tracking, the path trace and each ran task's log events (``self`` is the Move)."""

    def _deviation(self: Move, source: str | None, target: str | None) -> str | None:
        if source is None or target is None:
            return None
        for flow in self.model.flows_between(source, target):
            if flow.deviation:
                return flow.id
        return None

    def incoming_taint(self: Move, task: Task, depth: int = 0) -> str | None:
        if depth > 50 or not (self.deviations or self.tainted):  # (no deviation flow, nothing tainted: none)
            return None
        parent = task.parent
        if parent is None:
            assert self.workflow is not None
            owner_id = getattr(task.workflow, "parent_task_id", None)
            if owner_id is None:
                return None
            owner = self.workflow.get_task_from_id(owner_id)
            return self.tainted.get(owner.id) or self.incoming_taint(owner, depth + 1)
        source, target = element_of(parent), element_of(task)
        drawn = getattr(parent.task_spec, "_tiergate_drawn", None)  # a gateway tiergate drew after it (bpmn.implicit)
        if drawn is not None:
            return self._deviation(drawn, target) or self.tainted.get(parent.id) or self.incoming_taint(parent, depth + 1)
        if source is None or source == target:
            return self.tainted.get(parent.id) or self.incoming_taint(parent, depth + 1)
        return self._deviation(source, target) or self.tainted.get(parent.id)

    @staticmethod
    def trace(task: Task) -> None:
        path = PATH_TRACE.get()
        target = element_of(task)
        if path is None or target is None:
            return
        parent, source = task.parent, None
        for _ in range(50):
            if parent is None:
                break
            element = element_of(parent)
            if element is not None and element != target:
                source = element
                break
            parent = parent.parent
        path.append((source, target))

    def did_run(self: Move, task: Task) -> None:
        self.trace(task)
        taint = self.incoming_taint(task)
        if taint:
            self.tainted[task.id] = taint
        element = element_of(task)
        if element is None:
            return
        if task.state == TaskState.COMPLETED and element in self.model.nodes and not is_step(task):
            self.passed.add(element)
        entry = bpmn_events.caught(task, element, self.model)
        if entry is not None:
            self.events.append(entry)
            scope = self.model.nodes.get(entry.step or "")
            if entry.detail["interrupting"] and scope is not None and scope.triggered_by_event:
                bpmn_events.interrupt_scope(task)
        thrown = bpmn_events.thrown_error(task, element)
        if thrown is not None:
            self.thrown.append(thrown)
        for name in signals.thrown(task):  # broadcast to the other runs once the move is committed
            self.events.append(LogEvent("signal_thrown", SYSTEM, step=element, detail={"signal": name}))
