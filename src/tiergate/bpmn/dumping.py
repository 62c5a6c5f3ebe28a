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
* its *delta* against its parent's data is what it was. Every task converted again keeps the
  ``repr`` of each of its data's values, by key; a parked task keeps those of its parent's at the
  time its dict was made. If the parent's keys are the same, in the same order, and none of the
  keys whose value changed is among the parked task's own keys, its delta (the keys it has that
  differ from its parent's, and its parent's keys it lacks, in their order) is the same. So the
  activity of 1,000 instances merging one instance's evidence (new values for ``note``, keys the
  open instances do not have yet) leaves the other instances' dicts as they were.

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
from tiergate.jsontext import PARTED_MIN_TEXT, Encoded, Member, Parted, member

_ATTR = "_tiergate_task_dumps"
_TOKEN = "_tiergate_tasks_token"  # the last dump's Parted (its token): what the next one follows
_READY = TaskState.READY
_FEW = 64  # fewer tasks than this: the tree is encoded in stretches, and stored whole unless its text is long
#: How each registry's tasks are converted (``tiergate.bpmn.taskdict``), worked out once per registry.
_CONVERTERS: dict[int, tuple[Any, Callable[[Task], dict[str, Any]]]] = {}


def _converter(registry: Any) -> Callable[[Task], dict[str, Any]]:
    known = _CONVERTERS.get(id(registry))
    if known is None or known[0] is not registry:
        known = _CONVERTERS[id(registry)] = (registry, taskdict.converter(registry))
    return known[1]


class _Entry:
    """A task's dict, and its text as a ``Member`` of the tasks' object (which holds no task: a state
    kept after its run ends must not keep the run's workflow alive). Only a parked task, the only
    kind reused, gets its ``Member`` at once; the others' text is made with their neighbours'
    (``_splice``) unless the tree is large enough to be stored a task a row (``_parted``)."""

    __slots__ = ("task", "sig", "key", "dct", "part", "keys", "parent_keys")

    def __init__(self, task: Task, sig: tuple[Any, ...], dct: dict[str, Any], keys: dict[str, str],
                 parent_keys: dict[str, str] | None, parked: bool):
        self.task, self.sig, self.key, self.dct = task, sig, str(task.id), dct
        self.part = Member(self.key, json.dumps(dct)) if parked else None  # '"<id>": {...}'
        #: ``repr`` of each value of the task's data, by key, in order; and its parent's when the dict was made.
        self.keys, self.parent_keys = keys, parent_keys


def _sig(task: Task) -> tuple[Any, ...]:
    return (task._state, task.last_state_change, task.triggered, task._parent, tuple(task._children))


def _parked(task: Task) -> bool:
    return task._state == _READY and bool(task.task_spec.manual)


def _tasks(workflow: Any, convert: Callable[[Task], dict[str, Any]]) -> Encoded:
    """The workflow's ``tasks`` mapping, each task's dict reused where it cannot have changed: a
    ``Parted`` when its text is long enough to be stored a task a row, else an ``Encoded``.

    Entries are found by ``id(task)`` (a UUID hashes in Python, an int in C); each holds its task,
    so the id stays that task's while the entry lives, and a task object replaced (a restore) is
    simply not found."""
    tasks: dict[UUID, Task] = workflow.tasks
    old: dict[int, _Entry] = getattr(workflow, _ATTR, None) or {}
    if len(tasks) < _FEW:
        small = _small_tree(workflow, tasks, old, convert)
        if small is not None:
            return small
    new: dict[int, _Entry] = {}
    # A parent's entry's ``keys`` by ``id()`` of the UUID its children hold (1,000 instances hold
    # their activity's): each UUID is held by a live task for the whole dump.
    parents: dict[int, dict[str, str] | None] = {}
    fresh: list[_Entry] = []

    def entry(task: Task) -> _Entry:
        done = new.get(id(task))
        if done is not None:
            return done
        before = old.get(id(task))
        sig = _sig(task)
        parent_id = task._parent
        if parent_id is None:
            parent_keys = None
        else:
            try:
                parent_keys = parents[id(parent_id)]
            except KeyError:
                parent = tasks.get(parent_id)
                parent_keys = parents[id(parent_id)] = None if parent is None else entry(parent).keys
        if before is not None and before.task is not task:
            before = None
        parked = _parked(task)
        if before is not None and before.sig == sig and parked \
                and same_delta(before.parent_keys, parent_keys, task.data):
            made = before
        else:
            dct = convert(task)
            keys = {key: repr(value) for key, value in task.data.items()}
            if before is not None and before.keys == keys and list(before.keys) == list(keys):
                keys = before.keys  # the same object: its children see an unchanged parent at once
            made = _Entry(task, sig, dct, keys, parent_keys, parked)
            fresh.append(made)
        new[id(task)] = made
        return made

    changes: dict[tuple[int, int], frozenset[str] | None] = {}

    def same_delta(was: dict[str, str] | None, now: dict[str, str] | None, data: dict[str, Any]) -> bool:
        """Whether a delta made against a parent's data with values ``was`` holds against ``now``
        (each pair of the parent's key dicts compared once: 1,000 instances share one parent)."""
        if was is now:
            return True
        if was is None or now is None:
            return False
        pair = (id(was), id(now))  # both held by entries for the whole dump
        if pair not in changes:
            changes[pair] = frozenset(k for k in now if now[k] != was[k]) if list(was) == list(now) else None
        changed = changes[pair]
        return changed is not None and changed.isdisjoint(data)

    entries = [entry(task) for task in tasks.values()]
    del entry, same_delta  # entry calls itself: its cell would hold it, and through it this dump's tasks, in a ring
    setattr(workflow, _ATTR, new)
    value = {e.key: e.dct for e in entries}
    if len(entries) < _FEW:  # a small tree's text in a few ``json.dumps`` calls, unless it is long after all
        text = _splice([(e.key, e.dct, e.part.member if e.part is not None else None) for e in entries])
        if len(text) < PARTED_MIN_TEXT:
            setattr(workflow, _TOKEN, None)
            return Encoded(value, text)
    for made in fresh:  # stored a task a row: every member has its own text
        if made.part is None:
            made.part = Member(made.key, json.dumps(made.dct))
    parted = Parted(value, [e.part for e in entries],  # type: ignore[misc]
                    base=getattr(workflow, _TOKEN, None) if old else None, fresh=[e.part for e in fresh])
    setattr(workflow, _TOKEN, parted.token)
    return parted


def _small_tree(workflow: Any, tasks: dict[UUID, Task], old: dict[int, _Entry],
                convert: Callable[[Task], dict[str, Any]]) -> Encoded | None:
    """``_tasks`` of a small tree that has nothing to reuse (no task parked now was parked, unchanged, at
    the last dump: a new run's tree, a restored one, one whose people's tasks were just run or just
    became ready), in one ``json.dumps``; None when it may have something to reuse, or its text is
    long enough to be stored in parts. Its parked tasks' entries are kept as ``_tasks`` keeps them,
    for the next dump."""
    parked = [task for task in tasks.values() if task._state == _READY and task.task_spec.manual]  # (``_parked``)
    for task in parked if old else ():
        before = old.get(id(task))
        if before is not None and before.task is task and before.sig == _sig(task):
            return None  # its dict may be reused
    # Each task's dict names it by ``str(task.id)`` (``TaskConverter.to_dict``, ``taskdict``): the key, made once.
    value = {dct["id"]: dct for dct in [convert(task) for task in tasks.values()]}
    text = json.dumps(value)
    if len(text) >= PARTED_MIN_TEXT:
        return None
    new: dict[int, _Entry] = {}
    for task in parked:
        parent = tasks.get(task._parent) if task._parent is not None else None
        parent_keys = None if parent is None else {k: repr(v) for k, v in parent.data.items()}
        keys = {k: repr(v) for k, v in task.data.items()}
        dct = value[str(task.id)]
        new[id(task)] = _Entry(task, _sig(task), dct, keys, parent_keys, True)
    setattr(workflow, _ATTR, new)
    setattr(workflow, _TOKEN, None)
    return Encoded(value, text)


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
            ("tasks", _tasks(workflow, _converter(registry))), ("root", str(workflow.task_tree.id))]


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
