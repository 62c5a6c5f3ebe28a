"""Dumping a workflow after a move, converting again only the tasks that may have changed.

``persistence.dump`` converts every task of the tree on every move: with a multi-instance task
over 1,000 items that is 1,000 task dicts for a step that changed two or three. A workflow kept
between moves (``tiergate.bpmn.kept``) keeps, per task, the dict SpiffWorkflow's serializer made
for it and that dict's JSON text; the next dump reuses them for tasks that cannot have changed,
and returns the state's ``workflow`` as a ``tiergate.jsontext.Encoded`` whose text is spliced
from the kept texts. The result is equal, key for key and byte for byte, to
``json.dumps(persistence.dump(workflow))`` (a test holds it to that).

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
from typing import Any, Callable
from uuid import UUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import persistence, taskdict
from tiergate.jsontext import Encoded, member

_ATTR = "_tiergate_task_dumps"
_READY = TaskState.READY
#: How each registry's tasks are converted (``tiergate.bpmn.taskdict``), worked out once per registry.
_CONVERTERS: dict[int, tuple[Any, Callable[[Task], dict[str, Any]]]] = {}


def _converter(registry: Any) -> Callable[[Task], dict[str, Any]]:
    known = _CONVERTERS.get(id(registry))
    if known is None or known[0] is not registry:
        known = _CONVERTERS[id(registry)] = (registry, taskdict.converter(registry))
    return known[1]


class _Entry:
    __slots__ = ("task", "sig", "key", "dct", "member", "data_repr", "gen", "parent_gen")

    def __init__(self, task: Task, sig: tuple[Any, ...], dct: dict[str, Any], data_repr: str | None,
                 gen: int, parent_gen: int | None, parked: bool):
        self.task, self.sig, self.key, self.dct = task, sig, str(task.id), dct
        # '"<id>": {...}', as it sits in the tasks' object: kept for a parked task, the only kind
        # reused; the others' text is made with their neighbours' (``_text``).
        self.member = member(self.key, json.dumps(dct)) if parked else None
        self.data_repr, self.gen, self.parent_gen = data_repr, gen, parent_gen


def _sig(task: Task) -> tuple[Any, ...]:
    return (task._state, task.last_state_change, task.triggered, task._parent, tuple(task._children))


def _parked(task: Task) -> bool:
    return task._state == _READY and bool(task.task_spec.manual)


def _tasks(workflow: Any, registry: Any, convert: Callable[[Task], dict[str, Any]]) -> Encoded:
    """The workflow's ``tasks`` mapping, each task's dict reused where it cannot have changed.

    Entries are found by ``id(task)`` (a UUID hashes in Python, an int in C); each holds its task,
    so the id stays that task's while the entry lives, and a task object replaced (a restore) is
    simply not found."""
    tasks: dict[UUID, Task] = workflow.tasks
    old: dict[int, _Entry] = getattr(workflow, _ATTR, None) or {}
    new: dict[int, _Entry] = {}

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
        parked = _parked(task)
        if before is not None and before.sig == sig and before.parent_gen == parent_gen and parked:
            made = before
        else:
            dct = convert(task)
            data_repr = repr(task.data)
            gen = 0 if before is None else before.gen + (before.data_repr != data_repr)
            made = _Entry(task, sig, dct, data_repr, gen, parent_gen, parked)
        new[id(task)] = made
        return made

    entries = [entry(task) for task in tasks.values()]
    del entry  # it calls itself: its cell would hold it, and through it this dump's tasks, in a ring
    setattr(workflow, _ATTR, new)
    return Encoded({e.key: e.dct for e in entries}, _text(entries))


def _text(entries: list[_Entry]) -> str:
    """The tasks' object text: each kept member as it is, the tasks between them encoded together."""
    return _splice([(e.key, e.dct, e.member) for e in entries])


def _splice(members: list[tuple[str, Any, str | None]]) -> str:
    """The text of the object of ``(key, value, member text or None)``: each member text as it is, the
    values between them encoded together (as one object with its braces left off: ``json.dumps``
    spells the same members, joined the same way), so one ``json.dumps`` per stretch."""
    pieces: list[str] = []
    plain: dict[str, Any] = {}
    for key, value, text in members:
        if text is None:
            plain[key] = value
            continue
        if plain:
            pieces.append(json.dumps(plain)[1:-1])
            plain = {}
        pieces.append(text)
    if plain:
        pieces.append(json.dumps(plain)[1:-1])
    return "{" + ", ".join(pieces) + "}"


def _encoded(items: list[tuple[str, Any]]) -> Encoded:
    """The object of ``items`` (plain values, or ``Encoded`` ones whose text is taken), as an ``Encoded``."""
    if not items:
        return Encoded({}, "{}")
    return Encoded(dict(items), _splice([(k, v, member(k, v.text) if isinstance(v, Encoded) else None)
                                         for k, v in items]))


def _workflow_items(workflow: Any, registry: Any) -> list[tuple[str, Any]]:
    """What SpiffWorkflow's ``WorkflowConverter.to_dict`` writes, in its order."""
    return [("data", registry.convert(registry.clean(workflow.data))), ("correlations", workflow.correlations),
            ("last_task", str(workflow.last_task.id) if workflow.last_task is not None else None),
            ("success", workflow.success), ("completed", workflow.completed),
            ("tasks", _tasks(workflow, registry, _converter(registry))), ("root", str(workflow.task_tree.id))]


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
        if hasattr(owner, _ATTR):
            delattr(owner, _ATTR)
