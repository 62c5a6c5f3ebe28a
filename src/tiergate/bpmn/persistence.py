"""A Tier 1 run's SpiffWorkflow state: stored without its spec, and kept small.

**Spec left out.** SpiffWorkflow's serializer writes the whole process spec into every state.
Here the spec comes from the run's pinned definition (parsed once per definition version and
cached), so the stored state is the task tree, the data and the subprocesses only.

**Pruning.** SpiffWorkflow keeps every task a run ever had. The tree grows with each loop
iteration: serializing, restoring and stepping all get slower, and past about 250 iterations
its depth-limited tree walk (``max_depth=1000``) stops finding tasks, so a run silently
stops. The execution log already holds the history, so ``prune`` removes what the engine can
no longer need, after every engine pass:

* Kept: the root; every task that is not finished (predicted, future, waiting, ready,
  started) or is in error; the parent of each of those (the data a task inherits, and what
  joins and boundary events look at); for a live boundary-event join, every ancestor up to
  its split (it looks the split up by walking up the tree); the cancelled arrivals at a
  parallel or inclusive join that has not fired yet, with their parents (how the join
  counts which branches arrived). The process's implicit end join is the exception: a path
  that ends while the rest goes on (a reminder) is not waited for, so its data is not
  carried into the run's final data unless it ends together with the run.
* Removed: every other finished task. A removed task's children are re-attached to its
  nearest kept ancestor, in order, so the tree stays a tree of bounded depth.
* When a join fires, the cancelled arrivals of that round are removed at once
  (``forget_join_round``): they belong to the finished round, and SpiffWorkflow would
  otherwise count them again when a loop brings the process back to the same join.
* The subprocess of a finished subprocess task is deleted.

The engine steps themselves (``advance``) run one pass at a time and prune between passes, so
even a loop of scripts that never waits for a person keeps a shallow tree. A workflow kept between
moves is pruned from the tasks touched since its last prune (``tiergate.bpmn.pruning``), with the
same result as the full pass (``prune_all``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from itertools import compress
from operator import attrgetter, not_
from typing import Any, Callable
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import pruning, touched
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow
from tiergate.jsontext import Encoded

#: Engine passes one advance may take before the run is failed as an endless loop.
MAX_PASSES = 100_000
FORMAT = 1
_DONE = TaskState.COMPLETED | TaskState.CANCELLED
_PARENT, _SPEC, _INT = attrgetter("_parent"), attrgetter("task_spec"), attrgetter("int")


class SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Like SpiffWorkflow's converter, without the spec; the spec is given back on restore."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None,
                  engine: RestrictedScriptEngine | None = None) -> RestrictedWorkflow:
        workflow = self.target_class(spec, subprocess_specs, script_engine=engine, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _registry() -> Any:
    config = {cls: converter for cls, converter in DEFAULT_CONFIG.items() if cls is not BpmnWorkflow}
    config[RestrictedWorkflow] = SpecFreeWorkflowConverter
    return BpmnWorkflowSerializer.configure(config)


_REGISTRY = _registry()
#: The serializer's registry (``tiergate.bpmn.dumping`` converts tasks with it too).
REGISTRY = _REGISTRY


def dump(workflow: RestrictedWorkflow) -> dict[str, Any]:
    """The workflow's state as plain JSON, without its spec."""
    return {"format": FORMAT, **_REGISTRY.convert(workflow)}


def restore(state: dict[str, Any], spec: Any, subprocess_specs: dict[str, Any],
            engine: RestrictedScriptEngine) -> RestrictedWorkflow:
    """Rebuild a workflow from ``dump`` output, always with the given restricted engine."""
    if isinstance(state, Encoded):  # a kept dump is shared, and SpiffWorkflow would take some values as they are
        state = json.loads(state.text)
    dct = {k: v for k, v in state.items() if k != "format"}
    dct["subprocesses"] = dict(dct.get("subprocesses") or {})
    dct.pop("typename", None)
    return _REGISTRY.convert_from_dict["RestrictedWorkflow"](dct, spec=spec, subprocess_specs=subprocess_specs,
                                                            engine=engine)


def new_workflow(spec: Any, subprocess_specs: dict[str, Any], engine: RestrictedScriptEngine) -> RestrictedWorkflow:
    return RestrictedWorkflow(spec, subprocess_specs, script_engine=engine)


# --- pruning -------------------------------------------------------------------------------

def forget_join_round(workflow: Any, fired: Task) -> None:
    """When an instance of a parallel/inclusive join completes, merge its branches' data and drop
    the round's cancelled arrivals."""
    spec = fired.task_spec
    stale = [t for t in fired.workflow.tasks.values()
             if t.task_spec is spec and t is not fired and t.state == TaskState.CANCELLED]
    arrivals = [t.parent for t in sorted(stale, key=lambda t: t.last_state_change) if t.parent is not None]
    if fired.parent is not None:
        arrivals.append(fired.parent)
    if len(arrivals) > 1:
        fired.data = merge_branches(arrivals)
    for task in stale:
        _detach(task)


def _ancestors(task: Task) -> list[Task]:
    chain = []
    current: Task | None = task
    while current is not None:
        chain.append(current)
        current = current.parent
    return chain


def merge_branches(arrivals: list[Task]) -> dict[str, Any]:
    """The data after a join: what the branches started from, plus what each branch changed.

    SpiffWorkflow merges whole copies, so a branch that did not touch a key overwrites the
    branch that did with the value it copied at the split. Here a key takes the value of the
    branch that changed it (the last to arrive, if several did); a key a branch deleted goes.
    """
    common = set(t.id for t in _ancestors(arrivals[0]))
    for task in arrivals[1:]:
        common &= {t.id for t in _ancestors(task)}
    base_task = next((t for t in _ancestors(arrivals[0]) if t.id in common), None)
    base = base_task.data if base_task is not None else {}
    merged = copy.deepcopy(base)
    for arrival in arrivals:
        for key, value in arrival.data.items():
            if key not in base or base[key] != value:
                merged[key] = copy.deepcopy(value)
        for key in base:
            if key not in arrival.data:
                merged.pop(key, None)
    return merged


def _detach(task: Task) -> None:
    workflow = task.workflow
    stack = [task]
    while stack:
        current = stack.pop()
        stack.extend(current.children)
        workflow.tasks.pop(current.id, None)
    parent = workflow.tasks.get(task._parent) if task._parent is not None else None
    if parent is not None and task.id in parent._children:
        parent._children.remove(task.id)
        touched.mark(parent)


def _bulk(children: list[UUID], kept_above: UUID, by_int: dict[int, Task], keep: set[int],
          new_children: dict[int, list[UUID]], stack: list[tuple[Task, UUID]]) -> bool:
    """``_prune_one``'s step over one task's many children (1,000 instances of a multi-instance
    activity), done in bulk when every child is there and each removed one has no children of its
    own: the same children kept, in the same order, the same parents set, the same tasks to visit
    next (one without children adds nothing). False, with nothing done, otherwise."""
    ints = list(map(_INT, children))
    maybe = list(map(by_int.get, ints))
    if None in maybe:
        return False
    found: list[Task] = maybe  # type: ignore[assignment]
    kept = list(map(keep.__contains__, ints))
    if not all(kept):
        if any(child._children for child in compress(found, map(not_, kept))):
            return False
        children, found = list(compress(children, kept)), list(compress(found, kept))
    new_children[kept_above.int].extend(children)
    for child in [child for child in found if child._parent is not kept_above]:
        child._parent = kept_above
        touched.mark(child)
    stack.extend(reversed([(child, child_id) for child, child_id in zip(found, children) if child._children]))
    return True


def _prune_one(workflow: Any) -> int:
    """Prune one (sub)workflow: from the tasks touched since its last prune when it is tracked
    (``tiergate.bpmn.pruning``), else in full."""
    since = touched.since_prune(workflow)
    removed = pruning.follow(workflow, since) if since is not None else None
    if removed is None:
        removed = prune_all(workflow)
    touched.pruned(workflow)
    return removed


def prune_all(workflow: Any) -> int:
    """Prune one (sub)workflow looking at every task."""
    # Sets and maps of the tasks' ids as integers (``UUID.int``): a UUID hashes in Python, an int in
    # C, and a tree with 1,000 open instances is walked on every pass.
    tasks: dict[UUID, Task] = workflow.tasks
    root = workflow.task_tree
    # The rules of the module's docstring, in comprehensions: the unfinished tasks and their parents,
    # the ancestors of a structured join up to its split, the cancelled arrivals at an unstructured join.
    unfinished = [task for task in tasks.values() if not task._state & _DONE]
    keep: set[int] = {task.id.int for task in unfinished}
    keep.add(root.id.int)
    keep.update([parent.int for parent in map(_PARENT, unfinished) if parent is not None])
    specs = list(map(_SPEC, tasks.values()))
    kinds = dict(zip(map(id, specs), specs))  # (a few specs for many tasks)
    joins = {key for key, spec in kinds.items()
             if isinstance(spec, Join) and not isinstance(spec, UnstructuredJoin) and spec.split_task}
    for task in ([t for t in unfinished if id(t.task_spec) in joins] if joins else ()):
        ancestor = task.parent
        while ancestor is not None and ancestor.id != root.id:
            keep.add(ancestor.id.int)
            if ancestor.task_spec.name == task.task_spec.split_task:
                break
            ancestor = ancestor.parent
    arrivals = {key for key, spec in kinds.items()
                if isinstance(spec, UnstructuredJoin) and not isinstance(spec, _EndJoin)}
    for task in ([t for t in tasks.values() if t._state == TaskState.CANCELLED and id(t.task_spec) in arrivals]
                 if arrivals else ()):
        keep.add(task.id.int)
        if task._parent is not None:
            keep.add(task._parent.int)
    if len(keep) == len(tasks):
        return 0
    by_int = {task_id.int: task for task_id, task in tasks.items()}
    new_children: dict[int, list[UUID]] = {task_id: [] for task_id in keep}
    # Depth-first, in child order, remembering the nearest kept ancestor.
    stack: list[tuple[Task, UUID]] = [(root, root.id)]
    while stack:
        task, kept_above = stack.pop()
        children = task._children
        if len(children) > 8 and _bulk(children, kept_above, by_int, keep, new_children, stack):
            continue
        pending = []
        for child_id in children:
            child = by_int.get(child_id.int)
            if child is None:
                continue
            if child_id.int in keep:
                new_children[kept_above.int].append(child_id)
                if child._parent is not kept_above:
                    child._parent = kept_above
                    touched.mark(child)
                pending.append((child, child_id))
            else:
                pending.append((child, kept_above))
        stack.extend(reversed(pending))
    removed = 0
    for task_id in list(tasks):
        if task_id.int not in keep:
            del tasks[task_id]
            removed += 1
    for kept_id in keep:
        kept_task = by_int.get(kept_id)
        if kept_task is not None and kept_task._children != new_children[kept_id]:
            kept_task._children = new_children[kept_id]
            touched.mark(kept_task)
    if workflow.last_task is not None and workflow.last_task.id not in tasks:
        workflow.last_task = None
    return removed


def prune(workflow: RestrictedWorkflow) -> int:
    """Remove what the engine can no longer need (see the module docstring). Returns tasks removed."""
    if not workflow.subprocesses and touched.since_prune(workflow) is None and keeps_all(workflow):
        return 0  # nothing to remove: spare the sets and the walk (a tracked workflow follows its touched tasks)
    removed = _prune_one(workflow)
    for sub in list(workflow.subprocesses.values()):
        removed += _prune_one(sub)
    changed = True
    while changed:
        changed = False
        for owner_id in list(workflow.subprocesses):
            owner = _find_task(workflow, owner_id)
            if owner is None or (owner.has_state(_DONE)):
                sub = workflow.subprocesses.pop(owner_id)
                removed += len(sub.tasks)
                changed = True
    return removed


def keeps_all(workflow: Any) -> bool:
    """Whether ``_prune_one`` would keep every task and change nothing: each task is the root, unfinished, or
    the parent of an unfinished one, and each one's parent is in the tree (so the rules of the module's
    docstring keep exactly the tasks there are). Told by the ids' identity, which is cheap: a task's id is
    its key in ``workflow.tasks``, and the parent id a task holds is that same object when SpiffWorkflow or
    a template (``tiergate.bpmn.fresh``) made it; when identity cannot tell (a restored tree), False."""
    tasks = workflow.tasks
    present = set(map(id, tasks))
    needed = {id(workflow.task_tree.id)}
    for task in tasks.values():
        parent = task._parent
        if id(task.id) not in present or (parent is not None and id(parent) not in present):
            return False
        if not task._state & _DONE:
            needed.add(id(task.id))
            if parent is not None:
                needed.add(id(parent))
    return needed == present


def _find_task(workflow: RestrictedWorkflow, task_id: UUID) -> Task | None:
    if task_id in workflow.tasks:
        return workflow.tasks[task_id]
    for sub in workflow.subprocesses.values():
        if task_id in sub.tasks:
            return sub.tasks[task_id]
    return None


def is_completed(workflow: Any) -> bool:
    """``workflow.is_completed()`` (which also marks the workflow completed), from the task
    dictionary: SpiffWorkflow walks the tree from its root to the first unfinished task, which
    lists the children of every task on the way (1,000 of a multi-instance task's). A pruned
    tree holds only tasks that walk reaches, so the answer is the same."""
    if not workflow.completed:
        unfinished = TaskState.NOT_FINISHED_MASK
        if any(task._state & unfinished for task in workflow.tasks.values()):
            return False
        workflow.completed = True
    return True


def all_tasks(workflow: RestrictedWorkflow) -> list[Task]:
    found = list(workflow.tasks.values())
    for sub in workflow.subprocesses.values():
        found.extend(sub.tasks.values())
    return found


# --- running engine steps ------------------------------------------------------------------

@dataclass
class StepFailure(Exception):
    """An engine step (script, condition, gateway, decision, timer) failed."""

    task: Task
    message: str
    #: False when running the element again cannot help (an error nothing catches).
    retryable: bool = True

    def __str__(self) -> str:
        return self.message


def _error_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.rstrip(". ") or type(exc).__name__


def _failing_task(exc: BaseException, running: Task) -> Task:
    task = getattr(exc, "task", None)
    if isinstance(task, Task):
        return task
    return running


def _ready_in_order(wf: Any, top: RestrictedWorkflow) -> list[Task]:
    """The READY tasks of ``wf`` that a pass goes through, in the order of SpiffWorkflow's tree walk.

    The walk (``get_tasks``) is what orders them; it costs a generic iterator step per task,
    so a workflow without subprocesses (where the walk sees exactly the tasks of ``wf.tasks``)
    whose READY tasks are all people's steps but at most one, which is most passes of most runs,
    is answered from the task dictionary: there is nothing to order. (Every READY task is
    reached by the walk, or ``advance`` would never stop: it ends only when none is left.)
    """
    engine = touched.engine_ready(wf)
    if wf is top and not top.subprocesses:
        if len(engine) < 2:
            return engine
    elif not engine:
        return []  # nothing for the engine: spare the walk of the tree (1,000 open instances, each pass)
    return wf.get_tasks(state=TaskState.READY)  # type: ignore[no-any-return]


def _one_pass(top: RestrictedWorkflow, did_run: Callable[[Task], None]) -> bool:
    ran = 0
    before = len(top.get_active_subprocesses())

    def run_ready(wf: Any) -> int:
        count = 0
        for task in _ready_in_order(wf, top):
            if task.task_spec.manual or task.state != TaskState.READY:
                continue
            try:
                task.run()
            except Exception as exc:  # noqa: BLE001 - every engine failure fails the run, named by element
                raise StepFailure(_failing_task(exc, task), _error_message(exc)) from exc
            count += 1
            did_run(task)
        return count

    for sub in sorted(top.get_active_subprocesses(), key=lambda s: s.depth, reverse=True):
        count = run_ready(sub)
        ran += count
        if count == 0 and sub.parent_task_id is not None:
            owner = top.get_task_from_id(sub.parent_task_id)
            try:
                owner.task_spec._update(owner)
            except Exception as exc:  # noqa: BLE001
                raise StepFailure(_failing_task(exc, owner), _error_message(exc)) from exc
    ran += run_ready(top)
    return ran > 0 or len(top.get_active_subprocesses()) > before


def _ready_engine_task(top: RestrictedWorkflow) -> bool:
    return any(touched.engine_ready(wf) for wf in (top, *top.subprocesses.values()))


def advance(top: RestrictedWorkflow, did_run: Callable[[Task], None] | None = None,
            max_passes: int = MAX_PASSES) -> int:
    """Run engine steps and due timers until only people's tasks and future timers remain.

    Prunes after every pass that may have changed the tree. Raises StepFailure naming the failing task.
    Returns passes run.
    """
    callback = did_run or (lambda task: None)
    passes = 0
    clean = False  # pruned, and nothing changed since
    while True:
        progressed = _one_pass(top, callback)
        if progressed or not clean or top.subprocesses:  # (a pass without subprocesses that ran nothing
            prune(top)                                     # changed nothing: pruning again would remove nothing)
        clean = True
        if progressed:
            passes += 1
            if passes > max_passes:
                raise StepFailure(top.task_tree, f"the process ran {max_passes} automatic steps without waiting "
                                                 "for a person or a timer: a loop of scripts, gateways or plain "
                                                 "tasks whose conditions never let it out. Check the conditions "
                                                 "on the loop's flows against this run's data (`tiergate status "
                                                 "RUN`), fix the process, and start a new run",
                                  retryable=False)
            continue
        waiting = [t for t in top.event_manager.tasks.values()
                   if isinstance(t.task_spec, CatchingEvent) and t.state == TaskState.WAITING]
        clean = clean and not waiting
        for task in waiting:
            try:
                task.task_spec._update(task)
            except Exception as exc:  # noqa: BLE001
                raise StepFailure(_failing_task(exc, task), _error_message(exc)) from exc
        if not _ready_engine_task(top):
            return passes


def is_subprocess_task(task: Task) -> bool:
    return isinstance(task.task_spec, SubWorkflowTask)


def connect_join_listeners(spec: Any) -> None:
    """Attach ``forget_join_round`` to every parallel/inclusive join of a (cached) spec, once."""
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, UnstructuredJoin) and not task_spec.completed_event.is_connected(_on_join):
            task_spec.completed_event.connect(_on_join)


def _on_join(workflow: Any, task: Task) -> None:
    forget_join_round(workflow, task)


def copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(state)
