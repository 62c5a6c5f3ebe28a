"""The pruning of a Tier 1 run's task tree, as ``tiergate.bpmn.persistence``'s docstring describes it:
after every engine pass (``prune``: the whole tree, or from the tasks touched since its last prune,
``tiergate.bpmn.pruning``), and a join's round forgotten when it fires (``forget_join_round``, with
its branches' data merged). ``tiergate.bpmn.persistence`` re-exports every name.
"""

from __future__ import annotations

import copy
from itertools import compress
from operator import attrgetter, not_
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import pruning, touched
from tiergate.bpmn.scripting import RestrictedWorkflow

_DONE = TaskState.COMPLETED | TaskState.CANCELLED
_PARENT, _SPEC, _INT = attrgetter("_parent"), attrgetter("task_spec"), attrgetter("int")


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
