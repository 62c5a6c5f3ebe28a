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

import json
from collections.abc import Callable
from functools import partial
from itertools import compress, count
from operator import is_not
from typing import Any

from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
from SpiffWorkflow.bpmn.serializer.helpers.dictionary import DictionaryConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.task import Task

from tiergate.jsontext import member


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
            "internal_data": _internal(internal, registry) if internal else {}, "data": whole, "delta": delta,
            "typename": typename}


_PLAIN = (str, int, float, bool, type(None))


def _internal(internal: dict[str, Any], registry: Any) -> Any:
    """``registry.convert(internal)``: for a dict of plain values and lists of strings (a multi-instance
    activity's ``merged``: one id a completed instance), a copy made in C; the registry converts each
    list item in Python. (``converter`` hands out ``task_dict`` only for a registry that converts
    these types as themselves.)"""
    if registry._encoder_mode:
        return registry.convert(internal)
    out = {}
    for key, value in internal.items():
        kind = type(value)
        if kind is list:
            if not set(map(type, value)) <= _STR:
                return registry.convert(internal)
            out[key] = list(value)
        elif kind in _PLAIN:
            out[key] = value
        else:
            return registry.convert(internal)
    return out


_STR = {str}
#: A task with this many children or more keeps their ids' text (``_children_text``).
_MANY = 16
_CHILDREN = "_tiergate_children_text"


def _children_text(task: Task) -> list[str]:
    """``[str(child) for child in task._children]``, kept on the task with the ids it was made from:
    a multi-instance activity has 1,000 children, of which a step removes one, and a UUID's text is
    made in Python. The ids the list shares with the last one at its start and at its end (the same
    objects, compared in C) keep their texts; only those between are made again."""
    children = task._children
    kept: tuple[list[Any], list[str]] | None = task.__dict__.get(_CHILDREN)
    if kept is not None and kept[0] == children:
        return list(kept[1])
    if kept is None:
        texts = [str(child) for child in children]
    else:
        old, old_texts = kept
        least = min(len(old), len(children))
        head = next(compress(count(), map(is_not, children, old)), least)
        tail = next(compress(count(), map(is_not, reversed(children), reversed(old))), least)
        tail = min(tail, least - head)  # (the two may overlap where ids repeat)
        texts = [*old_texts[:head], *[str(child) for child in children[head:len(children) - tail]],
                 *old_texts[len(old) - tail:]]
    task.__dict__[_CHILDREN] = (list(children), texts)
    return list(texts)


def text(dct: dict[str, Any], task: Task | None = None) -> str:
    """``json.dumps(dct)`` of a task's dict, with each long list of strings among its members (and its
    members' members: ``internal_data``'s list of merged instances) spelled by one join in C (a
    multi-instance activity's 1,000 children's ids: ``json.dumps`` escapes each string in turn). Given
    the task the dict was made from, its children's ids, which need no escaping, are not checked."""
    pieces: list[str] = []
    plain: dict[str, Any] = {}
    for key, value in dct.items():
        spelled = None
        if type(key) is str:
            if type(value) is list and len(value) >= _MANY:
                spelled = _ids(value) if key == "children" and _known_ids(task, value) else _strings(value)
            elif type(value) is dict and any(type(v) is list and len(v) >= _MANY for v in value.values()) \
                    and all(type(k) is str for k in value):
                spelled = text(value)
        if spelled is None:
            plain[key] = value
            continue
        if plain:
            pieces.append(json.dumps(plain)[1:-1])
            plain = {}
        pieces.append(member(key, spelled))
    if plain:
        pieces.append(json.dumps(plain)[1:-1])
    return "{" + ", ".join(pieces) + "}"


def _known_ids(task: Task | None, value: list[Any]) -> bool:
    """Whether ``value`` is the task's children's ids as ``_children_text`` made them (compared in C)."""
    kept = task.__dict__.get(_CHILDREN) if task is not None else None
    return kept is not None and kept[1] == value


def _ids(texts: list[str]) -> str:
    """``json.dumps`` of ids' texts (``str(UUID)``: hex digits and dashes, nothing to escape)."""
    return '["' + '", "'.join(texts) + '"]'


def _strings(items: list[Any]) -> str | None:
    """``json.dumps(items)`` for a list of strings none of which ``json.dumps`` escapes (printable
    ASCII without a quote or a backslash), by one join; None for any other list."""
    if not items:
        return "[]"
    try:
        joined = '", "'.join(items)
    except TypeError:  # an item that is not a string
        return None
    # What is left once the characters json.dumps keeps as they are are deleted (in C): the quotes of
    # the separators only, or something it escapes.
    if joined.isascii() and len(joined.encode("ascii").translate(None, _KEPT)) == 2 * (len(items) - 1):
        return '["' + joined + '"]'
    return None


#: The characters ``json.dumps`` (ensure_ascii) writes as they are in a string: printable ASCII but ``"`` and ``\``.
_KEPT = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')


def converter(registry: Any) -> Callable[[Task], dict[str, Any]]:
    """How to convert a task for ``registry``: ``task_dict`` if it converts tasks as SpiffWorkflow 3.2 does."""
    typename = registry.typenames.get(Task)
    kind = type(registry)
    typenames, known = registry.typenames, registry.convert_to_dict
    to_dict = registry.convert_to_dict.get(typename)
    bound = to_dict.args[1] if isinstance(to_dict, partial) and len(to_dict.args) == 2 else None
    ours = (bound is not None and to_dict.func is DictionaryConverter._obj_to_dict and to_dict.args[0] == typename
            and not to_dict.keywords and getattr(bound, "__func__", None) is TaskConverter.to_dict
            and getattr(getattr(bound, "__self__", None), "registry", None) is registry
            and kind.convert is DefaultRegistry.convert and kind.clean is DefaultRegistry.clean
            and getattr(registry, "_encoder_mode", None) is False
            and not any(typenames.get(plain) in known for plain in _PLAIN))
    if not ours:
        return registry.convert  # type: ignore[no-any-return]
    return partial(task_dict, registry=registry, typename=typename)

