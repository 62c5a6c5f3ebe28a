"""A Tier 1 run's data as people see it (``state["data"]``), kept per workflow between moves.

**What the view is.** The data of each open task of an element (ready or failed; with none, the
waiting ones; with none, the tree's root), merged in the tree's order: an instance of a
multi-instance or loop task first takes its activity's data (the collection its own data leaves
out), then its own. The result goes through ``to_jsonable`` (canonical JSON, keys sorted), so a
key's place does not count, only the last value merged for it.

With a multi-instance task over 1,000 items open, that is 1,000 tasks merged on every move, and a
view holding the 1,000-item collection decoded, encoded again for the state's text and parsed again
by ``store.RecentRuns`` for the next move. Instead:

* **The open tasks are kept with the workflow** (``_Kept``) when it is tracked
  (``tiergate.bpmn.touched``: the tasks whose state, parent or children changed since its last
  dump) and every open task is a person's ready task, in order, each with its data's keys and its
  activity. The next move's view starts from them and looks at the tasks that move touched only: a
  task no longer open (run, cancelled, removed) leaves; a touched task still open has its keys read
  again; a newly open task joins at its place, which is after every task open before when it is
  found from the end of the task dictionary before any of those (SpiffWorkflow adds new tasks at
  the end). Anything else (a failed or waiting task, an older task open again, a subprocess, a
  workflow not tracked) makes the view whole, as before, every time it happens. A person's ready
  task's data does not change until it is run, which changes its state (the partial dump,
  ``tiergate.bpmn.dumping``, relies on that too); ``tiergate retry``, which may write beside one,
  drops what is kept (``forget``).
* **Each key's value is the last one merged for it**: going through the open tasks from the last
  one back (its own data, then its activity's), the merge stops once every key any of them or
  their activities holds has its value. With 1,000 instances of one activity: the last instance
  and the activity.
* **The view carries its text** (a ``tiergate.jsontext.Frozen``): each key's value is encoded in
  canonical form and decoded (a new object every move), and spelled as ``json.dumps`` spells it
  again only when its canonical text changed since the last view. The state's text takes the
  view's, and ``store.RecentRuns`` shares the view instead of parsing it again.

The view and its text are the same, byte for byte, as ``json.dumps(to_jsonable(merged))`` of the
whole merge (``tests/test_tier1_dataview.py`` compares them after every move).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from tiergate.bpmn import persistence
from tiergate.bpmn.touched import TOUCHED
from tiergate.jsontext import Frozen, encode, member
from tiergate.jsonutil import _decode, canonical_json, to_jsonable

if TYPE_CHECKING:
    from tiergate.bpmn.moves import Move

#: The attribute of a workflow with its kept view (``_Kept``).
_ATTR = "_tiergate_data_view"
_OPEN = (TaskState.READY, TaskState.ERROR)
_READY = TaskState.READY
#: How far from the end of the task dictionary a newly open task is looked for (more: made whole).
_NEAR_END = 256


class _Entry:
    """An open task of the view, the activity whose data it takes first (None: it is not an instance),
    and its data's keys when it was looked at."""

    __slots__ = ("task", "parent", "keys")

    def __init__(self, task: Task, parent: Task | None, keys: tuple[str, ...]):
        self.task, self.parent, self.keys = task, parent, keys


class _Kept:
    """What the next move's view starts from: the open tasks by ``id()`` in the tree's order, how
    many of them hold each key, their activities (by ``id()``: task and count), the touched dict
    that collects the tasks changed since, and each key's canonical and ``json.dumps`` texts. No
    entries: only the texts are kept (the view is made whole next time)."""

    __slots__ = ("entries", "counts", "parents", "touched", "texts")

    def __init__(self, entries: dict[int, _Entry] | None, counts: Counter[str], parents: dict[int, list[Any]],
                 texts: dict[str, tuple[str, str]] | None):
        self.entries, self.counts, self.parents, self.texts = entries, counts, parents, texts
        self.touched: Any = None


def view(move: Move) -> dict[str, Any]:
    """The data view of ``move``'s workflow as it is now. Call it before the workflow is dumped (the
    dump starts collecting the next move's touched tasks), then ``keep`` once it is."""
    from tiergate.bpmn.taskkinds import element_of, is_step

    workflow = move.workflow
    assert workflow is not None
    kept: _Kept | None = workflow.__dict__.pop(_ATTR, None)
    if persistence.is_completed(workflow):
        return to_jsonable(workflow.data or (workflow.last_task.data if workflow.last_task else {}))
    made = None
    if kept is not None and kept.entries is not None and not workflow.subprocesses \
            and kept.touched is not None and getattr(workflow, TOUCHED, None) is kept.touched:
        made = _follow(kept, workflow, element_of, is_step)
    if made is None:
        merged, made = _whole(move, element_of, is_step)
    else:
        merged = _merged(made)
    value, texts = _frozen(merged, kept.texts if kept is not None else None)
    if texts is not None:
        made = made or _Kept(None, Counter(), {}, None)
        made.texts = texts
        workflow.__dict__[_ATTR] = made
    return value


def keep(workflow: Any) -> None:
    """The workflow was just dumped: its kept view (if any) follows the touched tasks from now on."""
    kept: _Kept | None = workflow.__dict__.get(_ATTR)
    if kept is not None:
        kept.touched = getattr(workflow, TOUCHED, None)  # None (a small tree, not tracked): made whole next time


def forget(workflow: Any) -> None:
    """Data may have been written into parked tasks (``tiergate retry``): the next view is made whole."""
    workflow.__dict__.pop(_ATTR, None)


def _whole(move: Move, element_of: Any, is_step: Any) -> tuple[dict[str, Any], _Kept | None]:
    """The view merged from every task, as it always was; what to keep, when every open task is parked."""
    workflow = move.workflow
    assert workflow is not None
    tasks = persistence.all_tasks(workflow)
    # Each chosen task with its element (looked up once: ``element_of`` of the tree's root may be None).
    chosen = [(t, e) for t in tasks if t._state in _OPEN and (e := element_of(t)) is not None]
    keep = bool(chosen) and not workflow.subprocesses
    if not chosen:
        waiting = TaskState.WAITING
        chosen = [(t, e) for t in tasks if t._state == waiting and (e := element_of(t)) is not None]
    merged: dict[str, Any] = {}
    seen: tuple[Any, Any, Task | None] = (None, None, None)  # the last parent looked up: instances share one
    step_of = move.step_of
    entries: dict[int, _Entry] = {}
    for task, element in chosen or [(workflow.task_tree, element_of(workflow.task_tree))]:
        parent = None
        # An instance is a task whose step id carries a key (``step_of``, kept per task).
        if element is not None and step_of(task) != element:
            if seen[0] is not task.workflow or seen[1] is not task._parent:
                seen = (task.workflow, task._parent, task.parent)
            parent = seen[2]
            if parent is not None:
                merged.update(parent.data)  # an instance's data leaves out the collection its activity has
        merged.update(task.data)
        if keep:
            if task._state != _READY or not is_step(task):
                keep = False
            else:
                entries[id(task)] = _Entry(task, parent, tuple(task.data))
    if not keep:
        return merged, None
    counts: Counter[str] = Counter()
    parents: dict[int, list[Any]] = {}
    for entry in entries.values():
        _count(entry, counts, parents, 1)
    return merged, _Kept(entries, counts, parents, None)


def _count(entry: _Entry, counts: Counter[str], parents: dict[int, list[Any]], by: int) -> None:
    counts.update(dict.fromkeys(entry.keys, by))
    if by < 0:
        for key in entry.keys:
            if counts[key] <= 0:
                del counts[key]
    if entry.parent is not None:
        held = parents.setdefault(id(entry.parent), [entry.parent, 0])
        held[1] += by
        if held[1] <= 0:
            del parents[id(entry.parent)]


def _follow(kept: _Kept, workflow: Any, element_of: Any, is_step: Any) -> _Kept | None:
    """The kept open tasks brought up to date from the tasks touched since; None: make it whole."""
    marked: dict[int, Task] = getattr(workflow, TOUCHED)
    assert kept.entries is not None
    entries, counts = dict(kept.entries), Counter(kept.counts)
    parents = {key: list(held) for key, held in kept.parents.items()}
    tasks = workflow.tasks
    joining: dict[int, Task] = {}
    for key, task in marked.items():
        entry = entries.get(key)
        is_open = task._state in _OPEN and tasks.get(task.id) is task and element_of(task) is not None
        if is_open and (task._state != _READY or not is_step(task)):
            return None  # a failed task, or another open task that is not a person's: made whole
        if entry is not None:
            if entry.task is not task:
                return None
            _count(entry, counts, parents, -1)
            if is_open:  # still open: its keys and activity read again, in its place
                entry = entries[key] = _Entry(task, _parent(task), tuple(task.data))
                _count(entry, counts, parents, 1)
            else:
                del entries[key]
        elif is_open:
            joining[key] = task
    if joining:
        found: list[Task] = []
        for looked, task in enumerate(reversed(tasks.values())):
            key = id(task)
            if key in joining:
                found.append(task)
                if len(found) == len(joining):
                    break
            elif key in entries or looked > _NEAR_END:
                return None  # an older open task comes after it, or it is far from the end
        else:
            return None
        for task in reversed(found):
            entry = entries[id(task)] = _Entry(task, _parent(task), tuple(task.data))
            _count(entry, counts, parents, 1)
    if not entries:
        return None
    for parent, _ in parents.values():  # an activity gone from the tree: made whole
        if tasks.get(parent.id) is not parent:
            return None
    return _Kept(entries, counts, parents, None)


def _parent(task: Task) -> Task | None:
    """The activity whose data an instance takes first (None for a task that is not an instance)."""
    from tiergate.bpmn.moves import Move
    from tiergate.bpmn.taskkinds import element_of

    element = element_of(task)
    if element is None or Move.step_of(task) == element:
        return None
    return task.parent


def _merged(kept: _Kept) -> dict[str, Any]:
    """Each key's last value: the open tasks gone through from the last one back, until every key
    that any of them or their activities holds has one."""
    wanted = set(kept.counts)
    for parent, _ in kept.parents.values():
        wanted.update(parent.data)
    merged: dict[str, Any] = {}
    assert kept.entries is not None
    for entry in reversed(kept.entries.values()):
        merged = {**entry.task.data, **merged}
        if entry.parent is not None:
            merged = {**entry.parent.data, **merged}
        if len(merged) >= len(wanted) and merged.keys() >= wanted:
            break
    return merged


def _frozen(merged: dict[str, Any], before: dict[str, tuple[str, str]] | None
            ) -> tuple[dict[str, Any], dict[str, tuple[str, str]] | None]:
    """``to_jsonable(merged)`` as a ``Frozen`` with ``json.dumps``'s text, a key's text spelled again
    only when its canonical text is not the one in ``before``; each key's texts. A key that is not
    text: the plain view (None)."""
    for key in merged:
        if type(key) is not str:
            return to_jsonable(merged), None
    value: dict[str, Any] = {}
    texts: dict[str, tuple[str, str]] = {}
    members: list[str] = []
    for key in sorted(merged):
        canonical = canonical_json(merged[key])
        item = value[key] = _decode(canonical)
        old = before.get(key) if before is not None else None
        dumped = old[1] if old is not None and old[0] == canonical else encode(item)
        texts[key] = (canonical, dumped)
        members.append(member(key, dumped))
    return Frozen(value, "{" + ", ".join(members) + "}"), texts
