"""Dumping a workflow after a move, converting again only the tasks that may have changed.

``persistence.dump`` converts every task of the tree on every move: with a multi-instance task
over 1,000 items that is 1,000 task dicts for a step that changed two or three. A workflow kept
between moves (``tiergate.bpmn.kept``) keeps, per task, the dict SpiffWorkflow's serializer made
for it and that dict's JSON text; the next dump reuses them for tasks that cannot have changed,
and returns the state's ``workflow`` as a ``tiergate.jsontext.Encoded`` whose text is spliced
from the kept texts. The result is equal, key for key and byte for byte, to
``json.dumps(persistence.dump(workflow))`` (a test holds it to that). Each workflow's ``tasks``
is a ``tiergate.jsontext.Parted``: a large one is stored a task a row, and a step writes only
the rows whose text changed (``tiergate.store.parts``).

**What a task's dict is made of** (``TaskConverter.to_dict``): its id, parent, children, state,
``last_state_change``, spec, ``triggered``, ``internal_data``, and its data as a delta against
its *parent's* data. So a kept dict is reused only when all of these hold:

* the task is *parked*: a people's task (``task_spec.manual``) in state READY, before and now.
  Nothing in SpiffWorkflow or tiergate changes such a task's data or internal data until it is
  run (which changes its state): the engine runs only non-manual tasks, joins and
  multi-instance activities merge into their own task, events change catching events. The one
  move that writes into others' data (``tiergate retry`` beside a timer) drops the kept dicts
  first (``forget``);
* its state, ``last_state_change``, ``triggered``, parent and children are what they were
  (SpiffWorkflow stamps ``last_state_change`` on every change of state; pruning re-parents);
* its parent's data is what it was: every task that is converted again gets a data
  generation that moves when ``repr`` of its data changes, and a parked task records its
  parent's generation.

Every other task (the multi-instance activity itself, gateways, events, finished parents) is
converted on every dump, as before.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import persistence
from tiergate.jsontext import Encoded, Member, Parted, join

_ATTR = "_tiergate_task_dumps"
_TOKEN = "_tiergate_tasks_token"  # the last dump's Parted (its token): what the next one follows
_READY = TaskState.READY


class _Entry:
    """A task's dict, and its text as a ``Member`` of the tasks' object (which holds no task: a state
    kept after its run ends must not keep the run's workflow alive)."""

    __slots__ = ("task", "sig", "key", "dct", "part", "data_repr", "gen", "parent_gen")

    def __init__(self, task: Task, sig: tuple[Any, ...], dct: dict[str, Any], data_repr: str | None,
                 gen: int, parent_gen: int | None):
        self.task, self.sig, self.key, self.dct = task, sig, str(task.id), dct
        self.part = Member(self.key, json.dumps(dct))  # '"<id>": {...}' as it sits in the tasks' object
        self.data_repr, self.gen, self.parent_gen = data_repr, gen, parent_gen


def _sig(task: Task) -> tuple[Any, ...]:
    return (task._state, task.last_state_change, task.triggered, task._parent, tuple(task._children))


def _parked(task: Task) -> bool:
    return task._state == _READY and bool(task.task_spec.manual)


def _tasks(workflow: Any, registry: Any) -> Parted:
    """The workflow's ``tasks`` mapping, each task's dict reused where it cannot have changed.

    Entries are found by ``id(task)`` (a UUID hashes in Python, an int in C); each holds its task,
    so the id stays that task's while the entry lives, and a task object replaced (a restore) is
    simply not found."""
    tasks: dict[UUID, Task] = workflow.tasks
    old: dict[int, _Entry] = getattr(workflow, _ATTR, None) or {}
    new: dict[int, _Entry] = {}
    fresh: list[_Entry] = []

    def entry(task: Task) -> _Entry:
        done = new.get(id(task))
        if done is not None:
            return done
        before = old.get(id(task))
        sig = _sig(task)
        parent = tasks.get(task._parent) if task._parent is not None else None
        parent_gen = None if parent is None else entry(parent).gen
        if before is not None and before.task is not task:
            before = None
        if before is not None and before.sig == sig and before.parent_gen == parent_gen and _parked(task):
            made = before
        else:
            dct = registry.convert(task)
            data_repr = repr(task.data)
            gen = 0 if before is None else before.gen + (before.data_repr != data_repr)
            made = _Entry(task, sig, dct, data_repr, gen, parent_gen)
            fresh.append(made)
        new[id(task)] = made
        return made

    entries = [entry(task) for task in tasks.values()]
    del entry  # it calls itself: its cell would hold it, and through it this dump's tasks, in a ring
    setattr(workflow, _ATTR, new)
    parted = Parted({e.key: e.dct for e in entries}, [e.part for e in entries],
                    base=getattr(workflow, _TOKEN, None) if old else None, fresh=[e.part for e in fresh])
    setattr(workflow, _TOKEN, parted.token)
    return parted


def _encoded(items: list[tuple[str, Any]]) -> Encoded:
    return Encoded(dict(items), join([(k, v.text if isinstance(v, Encoded) else json.dumps(v)) for k, v in items]))


def _workflow_items(workflow: Any, registry: Any) -> list[tuple[str, Any]]:
    """What SpiffWorkflow's ``WorkflowConverter.to_dict`` writes, in its order."""
    return [("data", registry.convert(registry.clean(workflow.data))), ("correlations", workflow.correlations),
            ("last_task", str(workflow.last_task.id) if workflow.last_task is not None else None),
            ("success", workflow.success), ("completed", workflow.completed),
            ("tasks", _tasks(workflow, registry)), ("root", str(workflow.task_tree.id))]


def dump(workflow: Any) -> Encoded:
    """What ``persistence.dump`` returns, as an ``Encoded``, reusing the dicts of unchanged tasks."""
    return dump_with(workflow, persistence.REGISTRY, persistence.FORMAT)


def dump_with(workflow: Any, registry: Any, fmt: int) -> Encoded:
    """``{"format": fmt, **registry.convert(workflow)}`` (spec left out), as an ``Encoded``."""
    subprocesses = []
    for owner_id, sub in workflow.subprocesses.items():
        items = _workflow_items(sub, registry)
        items += [("parent_task_id", str(sub.parent_task_id)), ("spec", sub.spec.name),
                  ("typename", registry.typenames[type(sub)])]
        subprocesses.append((str(owner_id), _encoded(items)))
    items = [("format", fmt), *_workflow_items(workflow, registry), ("subprocesses", _encoded(subprocesses)),
             ("bpmn_events", registry.convert(workflow.bpmn_events)), ("typename", registry.typenames[type(workflow)])]
    return _encoded(items)


def forget(workflow: Any) -> None:
    """Drop the kept task dicts (of the workflow and its subprocesses): the next dump converts every task."""
    for owner in (workflow, *workflow.subprocesses.values()):
        for name in (_ATTR, _TOKEN):
            if hasattr(owner, name):
                delattr(owner, name)
