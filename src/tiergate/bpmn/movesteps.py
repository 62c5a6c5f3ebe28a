"""What a Tier 1 move says about its steps once the engine has run: the ready steps it took away
(``step_skipped``), the ones it made ready (``step_ready``), the records of every ready step, and the
timers the run now waits for. A part of ``Move`` (``class Move(MovePath, MoveSteps)``), called by
``Move.run``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from SpiffWorkflow.util.task import TaskState

from tiergate.actors import SYSTEM
from tiergate.bpmn import adhoc, instances, persistence, readyscan, records
from tiergate.bpmn.taskkinds import element_of, is_step, is_timer
from tiergate.bpmn.timers import due_of
from tiergate.jsonutil import to_jsonable
from tiergate.log import LogEvent, format_time

if TYPE_CHECKING:
    from tiergate.bpmn.moves import Move

#: The attribute of a kept workflow with its ready steps' tasks (``Move._sync_ready``).
_READY_STEPS = "_tiergate_ready_steps"


class MoveSteps:
    """The steps' records, log events and the timers after a move (``self`` is the Move)."""

    def _cancelled_steps(self: Move) -> None:
        assert self.workflow is not None
        if not self.ready_before:
            return
        changed = readyscan.touched_by_move(self)
        if changed is None:
            present = {t.id.int: t for t in persistence.all_tasks(self.workflow)}
        else:  # a ready task no change reached is still there and ready: only the touched ones are looked up
            present = {t.id.int: t for t in changed.values() if t.workflow.tasks.get(t.id) is t}
        interrupted = {e.detail.get("task"): f"timer '{e.detail.get('timer')}'" for e in self.events
                       if e.event == "timer_fired" and e.detail.get("interrupting")}
        interrupted.update({self._interrupts(e.detail): f"{e.detail['event']}"
                            + (f" '{e.detail['code']}'" if e.detail.get("code") else "")
                            + f" (caught by '{e.detail['by']}')" for e in self.events
                            if e.event == "escalated" and e.detail.get("event") and e.detail.get("interrupting")})
        closed = {element: f"closed: the ad-hoc subprocess '{element}' is complete (its completion condition "
                           "holds)" for element in adhoc.met(self.workflow)}
        looked: Any = self.ready_before
        if changed is not None:  # an untouched one is skipped below: only the touched ones, in the same order
            hits = changed.keys() & self.ready_before
            looked = hits if len(hits) < 2 else [key for key in self.ready_before if key in hits]
        for task_id in looked:
            task = present.get(task_id)
            if task is not None and not task.has_state(TaskState.CANCELLED):
                continue
            if task is None and changed is not None and task_id not in changed:
                continue  # untouched: still there (a removal touches it), still ready
            element = self.ready_elements.get(task_id)
            if not element or self.state["steps"].get(element, {}).get("status") != "ready":
                continue
            if self.ready_task(element) is not None:
                continue
            cause = next((interrupted[c] for c in self._containers(instances.split(element)[0])
                          if c in interrupted), None)
            reason = f"interrupted by {cause}" if cause else "cancelled: the process moved on without it"
            reason = next((closed[c] for c in self._containers(instances.split(element)[0]) if c in closed), reason)
            record = records.editable(self.state, element)
            record.update(status="skipped", at=format_time(self.ctx.now), actor=str(SYSTEM), reason=reason)
            self.events.append(LogEvent("step_skipped", SYSTEM, step=element, detail={"reason": reason}))

    def _interrupts(self: Move, detail: dict[str, Any]) -> str | None:
        """What an interrupting catch cancels: the activity it sits on, or the scope of an event subprocess."""
        scope = self.model.nodes.get(detail.get("task") or "")
        if scope is not None and scope.triggered_by_event:
            return scope.container
        return detail.get("task")

    def _containers(self: Move, element: str) -> list[str]:
        """The element, then each subprocess around it, innermost first."""
        found: list[str] = []
        node = self.model.nodes.get(element)
        while node is not None and len(found) < 50:
            found.append(node.id)
            node = self.model.nodes.get(node.container) if node.container != node.id else None
        return found + [self.model.id]

    def _newly_ready(self: Move) -> None:
        assert self.workflow is not None
        seen: set[str] = set()
        changes = readyscan.ready_changes(self, is_step)
        self.changes = changes
        for task in (persistence.all_tasks(self.workflow) if changes is None else changes[1]):
            if task._state != TaskState.READY or not is_step(task) or task.id.int in self.ready_before:
                continue
            element = self.step_of(task)
            assert element is not None
            self.trace(task)
            if element in seen:
                records.editable(self.state, element, {"status": "locked"})
                continue
            record = records.editable(self.state, element, {"status": "locked"})
            seen.add(element)
            record.update(status="ready", ready_at=format_time(self.ctx.now))
            if element != element_of(task):
                record["item"] = to_jsonable(instances.instance_item(task))
            detail: dict[str, Any] = {}
            taint = self.incoming_taint(task)
            if taint:
                detail = {"off_path": True, "flow": taint}
            node = self.model.nodes.get(element_of(task) or "")
            if node is not None and node.topic:  # a service task: workers ask for their kind of work by topic
                record["topic"] = detail["topic"] = node.topic
            self.events.append(LogEvent("step_ready", SYSTEM, step=element, detail=detail))

    def _sync_ready(self: Move) -> None:
        """A step with a ready task is ready, even if another instance of it was just completed."""
        assert self.workflow is not None
        if self.changes is not None and self.ready_kept is not None:
            kept_ready = readyscan.sync_ready_kept(self, *self.changes, self.ready_kept, is_step, self.step_of)
            setattr(self.workflow, _READY_STEPS, kept_ready)
            return
        ready: dict[int, str] = {}
        for task in persistence.all_tasks(self.workflow):
            if task._state == TaskState.READY and is_step(task):
                step = self.step_of(task) or ""
                ready[task.id.int] = step
                record = self.state["steps"].get(step)
                if record is None or record.get("status") != "ready":
                    record = records.editable(self.state, step)
                    record["status"] = "ready"
                    record.setdefault("ready_at", format_time(self.ctx.now))
        # Every ready step's task now has a ready record, and the tree does not change before it is
        # dumped and kept: the next move that takes this workflow starts from these (``restore``).
        setattr(self.workflow, _READY_STEPS, ready)

    def _timers(self: Move) -> None:
        assert self.workflow is not None
        timers = []
        waiting = TaskState.WAITING  # (``task.state`` is ``task._state``; a comprehension skips the rest in one pass)
        for task in [t for t in persistence.all_tasks(self.workflow) if t._state == waiting]:
            if not is_timer(task):
                continue
            due = due_of(task)
            if due is None:
                continue
            element = element_of(task)
            node = self.model.nodes.get(element or "")
            entry: dict[str, Any] = {"timer": element, "task": node.attached_to if node is not None else None,
                                     "due": format_time(due)}
            if node is not None and node.kind == "startEvent" and node.container == self.model.id:
                entry["start"] = True  # a timer start event: the run begins when it is due
            timers.append(entry)
        timers.sort(key=lambda t: t["due"] or "")
        self.state["timers"] = timers
        self.state["due_at"] = timers[0]["due"] if timers else None
