"""A task's dict as SpiffWorkflow's serializer makes it, made in one function.

``registry.convert(task)`` reaches SpiffWorkflow's ``TaskConverter.to_dict`` through the
registry's generic dispatch (clean the object, look its type up, call a partial that adds the
``typename``), looks the task's parent up twice by its UUID (hashed in Python each time) and
compares its data with the parent's through ``DeepMerge``: about half of dumping a small run's
tree. ``task_dict`` makes the same dict, key for key and in the same order: the task's ids as
text, its state, spec name and flags, its internal data converted by the registry (as
``to_dict`` does; an empty one is an empty dict either way), and its data whole for the root or
as a delta against its parent's data (the keys it changed, the keys it lacks).

Used only where it is that converter: ``converter(registry)`` gives ``task_dict`` bound to the
registry when the registry converts ``Task`` with SpiffWorkflow 3.2's ``TaskConverter.to_dict``,
and the registry's own ``convert`` otherwise; a task of another class goes to the registry too.
``tests/test_tier1_taskdict.py`` compares the two on every task of many runs at every move.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
from SpiffWorkflow.bpmn.serializer.helpers.dictionary import DictionaryConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.task import Task


def task_dict(task: Task, registry: Any, typename: str) -> dict[str, Any]:
    """``registry.convert(task)`` for a ``Task`` (see the module docstring)."""
    if type(task) is not Task:
        return registry.convert(task)  # type: ignore[no-any-return]
    parent = task.workflow.tasks.get(task._parent)
    data = task.data
    if parent is None:
        whole, delta = data, {}
    else:
        above = parent.data
        whole = {}
        delta = {"updates": {key: data[key] for key in data if key not in above or data[key] != above[key]},
                 "deletions": [key for key in above if key not in data]}
    internal = task.internal_data
    children = task._children
    return {"id": str(task.id), "parent": str(task._parent) if parent is not None else None,
            "children": [str(child) for child in children] if len(children) < _MANY else _children_text(task),
            "last_state_change": task.last_state_change,
            "state": task._state, "task_spec": task.task_spec.name, "triggered": task.triggered,
            "internal_data": registry.convert(internal) if internal else {}, "data": whole, "delta": delta,
            "typename": typename}


#: A task with this many children or more keeps their ids' text (``_children_text``).
_MANY = 16
_CHILDREN = "_tiergate_children_text"


def _children_text(task: Task) -> list[str]:
    """``[str(child) for child in task._children]``, kept on the task with the ids it was made from:
    a multi-instance activity has 1,000 children, of which a step removes one, and a UUID's text is
    made in Python. Each id's text is taken from the last list by the id object's identity (the last
    list holds those objects, so an ``id()`` is not reused while it is looked up)."""
    children = task._children
    kept: tuple[list[Any], list[str]] | None = task.__dict__.get(_CHILDREN)
    if kept is not None and kept[0] == children:
        texts = kept[1]
    else:
        known: dict[int, str] = dict(zip(map(id, kept[0]), kept[1])) if kept is not None else {}
        found: list[str | None] = list(map(known.get, map(id, children)))
        texts = [text if text is not None else str(child) for text, child in zip(found, children)] \
            if None in found else found  # type: ignore[assignment]
        task.__dict__[_CHILDREN] = (list(children), texts)
    return list(texts)


def converter(registry: Any) -> Callable[[Task], dict[str, Any]]:
    """How to convert a task for ``registry``: ``task_dict`` if it converts tasks as SpiffWorkflow 3.2 does."""
    typename = registry.typenames.get(Task)
    kind = type(registry)
    to_dict = registry.convert_to_dict.get(typename)
    bound = to_dict.args[1] if isinstance(to_dict, partial) and len(to_dict.args) == 2 else None
    ours = (bound is not None and to_dict.func is DictionaryConverter._obj_to_dict and to_dict.args[0] == typename
            and not to_dict.keywords and getattr(bound, "__func__", None) is TaskConverter.to_dict
            and getattr(getattr(bound, "__self__", None), "registry", None) is registry
            and kind.convert is DefaultRegistry.convert)
    if not ours:
        return registry.convert  # type: ignore[no-any-return]
    return partial(task_dict, registry=registry, typename=typename)

