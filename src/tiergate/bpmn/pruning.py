"""Pruning a tracked workflow from the tasks touched since its last prune, not from every task.

``tiergate.bpmn.persistence.prune`` removes the finished tasks the engine can no longer need (its
module docstring gives the rules) and re-attaches their children to their nearest kept ancestor.
Its full pass (``persistence.prune_all``) looks at every task: with a multi-instance task over
1,000 items, 1,000 tasks after every engine pass, to remove the one instance a step completed.

**Why the touched tasks are enough.** A prune leaves a tree that a second prune would leave as
it is: every task it keeps meets one of the rules, and re-attaching changes no kept task's reason
to be kept (an unfinished task's parent is kept, so it is never re-attached). So at the end of a
prune every task is needed. Whether a task is needed depends on its own state and spec, on its
children's states and specs, and on whether it is the root; the one rule that looks further (the
ancestors of a live boundary-event or start-event join, up to its split) is left to the full pass:
a (sub)workflow whose spec has such a join is pruned in full. Every change of a task's state,
every new task and every task removed is noted (``tiergate.bpmn.touched``, ``SINCE_PRUNE``) with
the parent whose children it changed. So the tasks that may have stopped being needed since the
last prune are the touched tasks and their parents; the others are needed still, and the full
pass would keep them, with the same children.

**What is done with those.** The touched tasks and their parents that are no longer needed are
removed; each kept ancestor of a removed task gets its children as the full pass orders them: its
own kept children in order, then the kept children of each removed task under it, removed tasks
taken depth first in child order, each such kept task given that ancestor as parent. The result is
the full pass's, task for task (``tests/test_tier1_touched.py`` compares a kept run with one
restored from JSON, and so pruned in full, at every step). A task without a kept ancestor, or a
workflow never tracked, goes to the full pass.
"""

from __future__ import annotations

from itertools import compress
from operator import attrgetter, not_
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import touched

_DONE = TaskState.COMPLETED | TaskState.CANCELLED
_CANCELLED = TaskState.CANCELLED
_INT = attrgetter("int")
#: Whether a spec has a join that keeps its ancestors up to its split, by ``id`` of the spec (kept with it).
_SPLIT_JOINS: dict[int, tuple[Any, bool]] = {}


def split_join(spec: Any) -> bool:
    """Whether a task spec is a join whose live task keeps its ancestors up to its split (the full pass's rule)."""
    return isinstance(spec, Join) and not isinstance(spec, UnstructuredJoin) and bool(spec.split_task)


def arrival(spec: Any) -> bool:
    """Whether a task spec is a parallel or inclusive join whose cancelled arrivals are kept (not the end join)."""
    return isinstance(spec, UnstructuredJoin) and not isinstance(spec, _EndJoin)


def _has_split_joins(spec: Any) -> bool:
    known = _SPLIT_JOINS.get(id(spec))
    if known is None or known[0] is not spec:
        found = any(split_join(each) for each in spec.task_specs.values())
        known = _SPLIT_JOINS[id(spec)] = (spec, found)
    return known[1]


def _needed(task: Task, root: Task, tasks: dict[UUID, Task]) -> bool:
    """Whether the full pass keeps ``task`` (not counting the ancestors of a split join's task)."""
    state = task._state
    if task is root or not state & _DONE or (state == _CANCELLED and arrival(task.task_spec)):
        return True
    for child_id in task._children:  # a parent of an unfinished task, or of a cancelled arrival
        child = tasks.get(child_id)
        if child is not None and (not child._state & _DONE
                                  or (child._state == _CANCELLED and arrival(child.task_spec))):
            return True
    return False


def follow(workflow: Any, since: dict[int, Task]) -> int | None:
    """Prune ``workflow`` (one (sub)workflow) looking only at the tasks touched since its last prune
    and their parents; the tasks removed, or None when the full pass must do it (nothing done then)."""
    if _has_split_joins(workflow.spec):
        return None
    tasks: dict[UUID, Task] = workflow.tasks
    root = workflow.task_tree
    looked: dict[int, Task] = {}
    for task in since.values():
        if tasks.get(task.id) is not task:
            continue  # gone: its parent was noted when it went
        looked[id(task)] = task
        parent = tasks.get(task._parent) if task._parent is not None else None
        if parent is not None:
            looked[id(parent)] = parent
    gone = {task.id.int: task for task in looked.values() if not _needed(task, root, tasks)}
    if not gone:
        return 0
    above: dict[int, Task] = {}  # the nearest kept ancestor of each task removed
    for task in gone.values():
        up: Task | None = task
        while up is not None and up.id.int in gone:
            up = tasks.get(up._parent) if up._parent is not None else None
        if up is None:
            return None  # no kept ancestor: the full pass's walk from the root would not reach it
        above[id(up)] = up
    for kept in above.values():
        children = _children_after(kept, gone, tasks)
        if children != kept._children:
            kept._children = children
            touched.mark(kept)
    for task in gone.values():
        del tasks[task.id]
    if workflow.last_task is not None and workflow.last_task.id not in tasks:
        workflow.last_task = None
    return len(gone)


def _children_after(kept: Task, gone: dict[int, Task], tasks: dict[UUID, Task]) -> list[UUID]:
    """``kept``'s children once the tasks ``gone`` are removed, in the full pass's order: its own kept
    children, then the kept children of each removed task under it, depth first in child order; each
    of those given ``kept`` as its parent."""
    children = kept._children
    removed = list(map(gone.__contains__, map(_INT, children)))  # (in C: 1,000 instances)
    if not any(removed):
        return children
    out = list(compress(children, map(not_, removed)))
    stack = [gone[child.int] for child in reversed(list(compress(children, removed)))]
    while stack:
        task = stack.pop()
        below: list[Task] = []
        for child_id in task._children:
            child = tasks.get(child_id)
            if child is None:
                continue
            if child_id.int in gone:
                below.append(child)
                continue
            out.append(child_id)
            if child._parent != kept.id:
                child._parent = kept.id
                touched.mark(child)
        stack.extend(reversed(below))
    return out
