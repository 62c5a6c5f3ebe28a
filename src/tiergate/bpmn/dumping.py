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

**Which tasks are looked at.** A first dump looks at every task. It then leaves on the workflow
what the next one needs (``_Kept``: the parked tasks' entries grouped by parent, the tasks that are
not parked) and starts tracking it (``tiergate.bpmn.touched``: the tasks whose state, children or
parent changed, and new ones). The next dump looks only at the touched tasks, the tasks that are
not parked, and, for each parent of parked tasks whose data changed, its parked children whose
delta that change may reach; every other entry is taken as it is, and the tasks' order is
SpiffWorkflow's (``workflow.tasks``), found in one pass over the dictionary in C. A task that none
of these covers (which tracking would have missed) sends the dump back to looking at every task.
So a step of a multi-instance task over 1,000 items converts the activity and the few tasks the
step changed, not 1,000 checks.
"""

from __future__ import annotations

import json
from operator import attrgetter, is_
from typing import Any, Callable
from uuid import UUID

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import persistence, taskdict, touched
from tiergate.bpmn.touched import TOUCHED
from tiergate import jsontext
from tiergate.jsontext import PARTED_MIN_TEXT, Encoded, Member, Parted

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
    (``jsontext.splice``) unless the tree is large enough to be stored a task a row (``_parted``)."""

    __slots__ = ("task", "sig", "key", "dct", "part", "keys", "parent_keys", "parked", "group", "lists")

    def __init__(self, task: Task, sig: tuple[Any, ...], dct: dict[str, Any], keys: dict[str, str],
                 parent_keys: dict[str, str] | None, parked: bool):
        self.task, self.sig, self.key, self.dct, self.parked = task, sig, str(task.id), dct, parked
        self.part = Member(self.key, json.dumps(dct)) if parked else None  # '"<id>": {...}'
        #: ``repr`` of each value of the task's data, by key, in order; and its parent's when the dict was made.
        self.keys, self.parent_keys = keys, parent_keys
        self.group: int | None = None  # the key of the ``_Kept`` group it is in (a key, not the group: no ring)
        #: Long lists of plain items among the task's data, by key: ``(the list, a copy, its repr)`` (``_reprs``).
        self.lists: dict[str, tuple[list[Any], list[Any], str]] | None = None


class _Kept:
    """What one dump of a (sub)workflow leaves for the next: every task's entry by ``id(task)``; the
    entries of parked tasks in groups by their parent (by ``id`` of the parent task: ``[parent,
    members by id(task), the parent's keys every member's delta holds against, or None, the keys of
    every member's data]``), and the tasks that are not parked, by ``id``. The next dump, given the
    tasks touched since (``tiergate.bpmn.touched``), looks again only at those, at the tasks that are
    not parked (a few: the multi-instance activity, events, gateways) and at the parked tasks whose
    parent's data changed (``_follow``).

    A group's keys are the union of its members' data keys when each was placed (a member's data does
    not change while it is parked; a member that leaves takes nothing away, so the union may hold more
    than it needs, never less): when the parent's data changed only in keys none of them has, every
    member's delta still holds, found with one check instead of one per member. A member's own
    ``parent_keys`` is then left as it was: its delta holds against those and against the parent's keys
    now, so a later check from its own is as sound as one from the group's."""

    __slots__ = ("entries", "groups", "unparked")

    def __init__(self, entries: dict[int, _Entry], groups: dict[int, list[Any]], unparked: dict[int, Task]):
        self.entries, self.groups, self.unparked = entries, groups, unparked


def _sig(task: Task) -> tuple[Any, ...]:
    return (task._state, task.last_state_change, task.triggered, task._parent, tuple(task._children))


def _parked(task: Task) -> bool:
    return task._state == _READY and bool(task.task_spec.manual)


_ENTRY_KEY, _ENTRY_DCT, _ENTRY_PART = attrgetter("key"), attrgetter("dct"), attrgetter("part")


def _tasks(workflow: Any, convert: Callable[[Task], dict[str, Any]]) -> Encoded:
    """The workflow's ``tasks`` mapping, each task's dict reused where it cannot have changed: a
    ``Parted`` when its text is long enough to be stored a task a row, else an ``Encoded``.

    Entries are found by ``id(task)`` (a UUID hashes in Python, an int in C); each holds its task,
    so the id stays that task's while the entry lives, and a task object replaced (a restore) is
    simply not found. A workflow dumped before and tracked since (``tiergate.bpmn.touched``) has
    only its touched, unparked and doubtful tasks looked at (``_follow``); the others' entries are
    taken as they are."""
    tasks: dict[UUID, Task] = workflow.tasks
    kept: _Kept | None = getattr(workflow, _ATTR, None)
    old: dict[int, _Entry] = kept.entries if kept is not None else {}
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
            keys, lists = _reprs(task.data, before)
            if before is not None and before.keys == keys and list(before.keys) == list(keys):
                keys = before.keys  # the same object: its children see an unchanged parent at once
            made = _Entry(task, sig, dct, keys, parent_keys, parked)
            made.lists = lists
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

    touched_now: dict[int, Task] | None = getattr(workflow, TOUCHED, None)
    followed = _follow(tasks, kept, touched_now, new, entry, same_delta) \
        if kept is not None and touched_now is not None else None
    if followed is None:
        new.clear()
        entries, looked = [entry(task) for task in tasks.values()], None
    else:
        entries, looked = followed
    del entry, same_delta  # entry calls itself: its cell would hold it, and through it this dump's tasks, in a ring
    setattr(workflow, _ATTR, _kept_after(new, entries, kept, looked))
    touched.start(workflow)
    if len(entries) < _FEW:  # a small tree's text in a few ``json.dumps`` calls, unless it is long after all
        value = {e.key: e.dct for e in entries}
        text = jsontext.splice([(e.key, e.dct, e.part.member if e.part is not None else None) for e in entries])
        if len(text) < PARTED_MIN_TEXT:
            setattr(workflow, _TOKEN, None)
            return Encoded(value, text)
    for made in fresh:  # stored a task a row: every member has its own text
        if made.part is None:
            made.part = Member(made.key, taskdict.text(made.dct, made.task))
    value = dict(zip(map(_ENTRY_KEY, entries), map(_ENTRY_DCT, entries)))
    parted = Parted(value, list(map(_ENTRY_PART, entries)),
                    base=getattr(workflow, _TOKEN, None) if old else None, fresh=[e.part for e in fresh])
    setattr(workflow, _TOKEN, parted.token)
    return parted


#: The kinds of item whose ``repr`` is the item's alone and never changes.
_PLAIN = {str, int, float, bool, type(None)}
_LONG = 64  # a list this long or longer of such items keeps its repr (``_reprs``)


def _reprs(data: dict[str, Any], before: _Entry | None) -> tuple[dict[str, str], dict[str, Any] | None]:
    """``{key: repr(value)}`` of a task's data, and the long lists of plain items among it with their
    reprs. A list that is the same object as at the task's last dump, holding the same item objects
    (compared in C), has the same repr: a multi-instance activity's collection (1,000 items) is
    not spelled again on every step."""
    known = before.lists if before is not None else None
    keys: dict[str, str] = {}
    lists: dict[str, Any] | None = None
    for key, value in data.items():
        if type(value) is not list or len(value) < _LONG:
            keys[key] = repr(value)
            continue
        was = known.get(key) if known else None
        if was is not None and was[0] is value and len(value) == len(was[1]) and all(map(is_, value, was[1])):
            keys[key] = was[2]
        else:
            keys[key] = repr(value)
            was = (value, list(value), keys[key]) if set(map(type, value)) <= _PLAIN else None
        if was is not None:
            if lists is None:
                lists = {}
            lists[key] = was
    return keys, lists


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
    text = jsontext.encode(value)
    if len(text) >= PARTED_MIN_TEXT:
        return None
    new: dict[int, _Entry] = {}
    for task in parked:
        parent = tasks.get(task._parent) if task._parent is not None else None
        parent_keys = None if parent is None else {k: repr(v) for k, v in parent.data.items()}
        keys = {k: repr(v) for k, v in task.data.items()}
        dct = value[str(task.id)]
        new[id(task)] = _Entry(task, _sig(task), dct, keys, parent_keys, True)
    # Only parked tasks have entries, so the next dump looks at every task (not tracked: ``_follow`` would not cover them).
    setattr(workflow, _ATTR, _kept_after(new, list(new.values()), None, None))
    touched.stop(workflow)
    setattr(workflow, _TOKEN, None)
    return Encoded(value, text)


def _follow(tasks: dict[UUID, Task], kept: _Kept, touched_now: dict[int, Task], new: dict[int, _Entry],
            entry: Callable[[Task], _Entry], same_delta: Callable[..., bool]) -> tuple[list[_Entry], list[Task]] | None:
    """The entries of every task, in order, looking only at the touched tasks, the tasks that are
    not parked and the parked tasks whose parent's data changed (see ``_Kept``), and the tasks looked
    at; None when a task turns up that none of these covers (then every task is looked at, as on a
    first dump)."""
    groups = kept.groups
    for key in touched_now:  # a touched parked task is looked at below, like any other touched task
        made = kept.entries.get(key)
        if made is not None and made.group is not None:
            group = groups.get(made.group)
            if group is not None:
                group[1].pop(key, None)
            made.group = None
    for group in groups.values():  # the parked tasks' entries, unless found doubtful below
        new.update(group[1])
    doubtful: list[Task] = []
    for group_key, group in list(groups.items()):
        parent, members, basis, _ = group
        if not members:
            del groups[group_key]
            continue
        if tasks.get(parent.id) is not parent:
            del groups[group_key]
            gone = [made.task for made in members.values()]
        else:
            now = entry(parent).keys
            if basis is now:
                continue
            if basis is not None and same_delta(basis, now, group[3]):
                group[2] = now  # no changed key is any member's own: every member's delta holds (one check)
                continue
            gone = []
            for key, made in list(members.items()):
                if same_delta(made.parent_keys, now, made.task.data):
                    made.parent_keys = now  # its delta holds against the parent's data now
                else:
                    gone.append(made.task)
                    del members[key]
            group[2] = now
        for task in gone:
            new.pop(id(task), None)
            kept.entries[id(task)].group = None
        doubtful += gone
    looked = [task for task in (*kept.unparked.values(), *touched_now.values(), *doubtful)
              if tasks.get(task.id) is task]
    for task in looked:
        entry(task)
    try:
        return list(map(new.__getitem__, map(id, tasks.values()))), looked
    except KeyError:  # a task none of the above covers (not tracked): look at every task
        return None


def _place(made: _Entry, groups: dict[int, list[Any]], unparked: dict[int, Task]) -> None:
    """Put an entry of this dump in its parked task's group, or its task among those not parked."""
    task = made.task
    parent = task.parent if made.parked else None
    if parent is None:
        unparked[id(task)] = task
        return
    group = groups.get(id(parent))
    if group is None:
        group = groups[id(parent)] = [parent, {}, made.parent_keys, set()]
    elif group[2] is not made.parent_keys:
        group[2] = None if group[1] else made.parent_keys  # members checked against other keys: each is checked
    group[1][id(task)] = made
    group[3].update(made.keys)
    made.group = id(parent)


def _kept_after(new: dict[int, _Entry], entries: list[_Entry], kept: _Kept | None,
                looked: list[Task] | None) -> _Kept:
    """What this dump leaves for the next (``_Kept``): kept's groups brought up to date with the
    tasks looked at, or made anew."""
    if kept is None or looked is None or len(new) != len(entries):  # (entries of tasks gone: sorted anew)
        groups: dict[int, list[Any]] = {}
        unparked: dict[int, Task] = {}
        for made in entries:
            made.group = None
            _place(made, groups, unparked)
        return _Kept(new, groups, unparked)
    unparked = {}
    for task in looked:
        made = new[id(task)]
        if made.group is not None:  # a parked task's entry kept as it was: where it was
            continue
        _place(made, kept.groups, unparked)
    return _Kept(new, kept.groups, unparked)


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
        subprocesses.append((str(owner_id), jsontext.spliced(items)))
    items = [("format", fmt), *_workflow_items(workflow, registry), ("subprocesses", jsontext.spliced(subprocesses)),
             ("bpmn_events", registry.convert(workflow.bpmn_events)), ("typename", registry.typenames[type(workflow)])]
    return jsontext.spliced(items)


def existed(task: Task) -> bool | None:
    """Whether ``task`` was in its workflow's tree at its last dump; None when that is not known
    (never dumped, or its kept dicts forgotten)."""
    kept: _Kept | None = getattr(task.workflow, _ATTR, None)
    if kept is None:
        return None
    made = kept.entries.get(id(task))
    return made is not None and made.task is task


def forget(workflow: Any) -> None:
    """Drop the kept task dicts (of the workflow and its subprocesses): the next dump converts every task."""
    for owner in (workflow, *workflow.subprocesses.values()):
        if hasattr(owner, _ATTR):
            delattr(owner, _ATTR)
