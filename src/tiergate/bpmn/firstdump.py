"""A first move's dump, spelled from the shape of its template's (``tiergate.bpmn.firstmove``).

A new run whose first passes came from a template (``firstmove``) has a tree that is the same
for every run but for its tasks' ids, their last state changes and the start data its tasks hold.
So is its dump (``dumping.dump``: SpiffWorkflow's dict of the workflow and of each task, and its
JSON text): each task's dict is its id, its parent's and children's, its last state change, the
members that are the same for every copy (state, spec, flags, internal data, type), and its data
(the root's whole, every other task's as a delta against its parent's: the keys whose values
differ, the parent's keys it lacks). ``shape_of`` takes those constant members, and the text of
the workflow around its tasks, from a real dump of a copy, once per template; ``dump`` spells a
copy's dump from them: its values, and its text in one join instead of converting each task and
encoding the tree. The dump is made only if a real dump of two copies with different start data
gives exactly the same values, types and text; a copy whose text is long enough to be stored in
parts (``jsontext.PARTED_MIN_TEXT``) is dumped the usual way.

What this leaves out is what the usual dump keeps on the workflow for the next one (the parked
tasks' dicts, to reuse): the next dump then converts every task, as after a restore, with the same
result.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tiergate.bpmn import dumping, fresh
from tiergate.jsontext import PARTED_MIN_TEXT, Encoded, member

#: A task dict's keys, in the order SpiffWorkflow's ``TaskConverter.to_dict`` (and ``taskdict``) makes them.
_KEYS = ("id", "parent", "children", "last_state_change", "state", "task_spec", "triggered", "internal_data",
         "data", "delta", "typename")
_CONSTANT = ("state", "task_spec", "triggered", "internal_data")
_ID_TEXT = re.compile(r'"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"')
_MOST = 32  # tasks: a larger tree is dumped the usual way
_ATOMS = frozenset({str, int, float, bool, type(None)})
_NO_DELTA = '{"updates": {}, "deletions": []}'


@dataclass(frozen=True)
class Shape:
    #: Per task: the text of its constant members, their values, and its type's name.
    constants: tuple[tuple[str, dict[str, Any], str], ...]
    #: The workflow's text before and after its tasks' text: literal pieces, and indexes of tasks whose id goes there.
    head: tuple[str | int, ...]
    tail: tuple[str | int, ...]
    #: The workflow's members: key, what it is (``_SAME``: a value the same for every copy, ``_ID``: the id of
    #: the task at an index, ``_TASKS``: the tasks) and that value or index.
    items: tuple[tuple[str, int, Any], ...]


_SAME, _ID, _TASKS = 0, 1, 2


def dump(template: fresh.Template, shape: Shape, workflow: Any) -> Encoded | None:
    """``dumping.dump(workflow)`` for a copy of ``template`` as its first move left it; None if its text is
    long enough to be stored in parts, or its tasks are not the template's (dump it the usual way)."""
    tasks = list(workflow.tasks.values())
    if len(tasks) != len(shape.constants):
        return None
    ids = [str(task.id) for task in tasks]
    value: dict[str, Any] = {}
    pieces: list[str] = []
    for task, own, (parent, children), (text, constants, typename) in zip(tasks, ids, template.links,
                                                                           shape.constants):
        if parent is None:  # (the root) its data whole, no delta
            data: dict[str, Any] = task.data
            delta: dict[str, Any] = {}
            data_text, delta_text, parent_text = json.dumps(data), "{}", "null"
        else:
            above, mine = tasks[parent].data, task.data
            data, data_text, parent_text = {}, "{}", f'"{ids[parent]}"'
            if not mine:  # (most tasks: their own, empty, data; the same delta as below, without going through it)
                deletions = list(above)
                delta = {"updates": {}, "deletions": deletions}
                delta_text = f'{{"updates": {{}}, "deletions": {json.dumps(deletions)}}}' if deletions \
                    else _NO_DELTA
            else:
                updates = {key: mine[key] for key in mine if key not in above or mine[key] != above[key]}
                deletions = [key for key in above if key not in mine]
                delta = {"updates": updates, "deletions": deletions}
                delta_text = (f'{{"updates": {json.dumps(updates) if updates else "{}"}, '
                              f'"deletions": {json.dumps(deletions) if deletions else "[]"}}}')
        internal = constants["internal_data"]
        if children:
            kids = [ids[child] for child in children]
            kids_text = f'["{kids[0]}"]' if len(kids) == 1 else '["' + '", "'.join(kids) + '"]'
        else:
            kids, kids_text = [], "[]"
        value[own] = {"id": own, "parent": None if parent is None else ids[parent], "children": kids,
                      "last_state_change": task.last_state_change, **constants,
                      "internal_data": fresh.copied(internal) if internal else {}, "data": data, "delta": delta,
                      "typename": typename}
        pieces.append(f'"{own}": {{"id": "{own}", "parent": {parent_text}, "children": {kids_text}, '
                      f'"last_state_change": {float.__repr__(task.last_state_change)}, {text}, '
                      f'"data": {data_text}, "delta": {delta_text}, "typename": "{typename}"}}')
    tasks_text = "{" + ", ".join(pieces) + "}"
    if len(tasks_text) >= PARTED_MIN_TEXT:
        return None
    text = "".join([ids[piece] if type(piece) is int else piece for piece in shape.head]) + tasks_text \
        + "".join([ids[piece] if type(piece) is int else piece for piece in shape.tail])
    members = {key: (kept if type(kept) in _ATOMS else _copied(kept)) if kind == _SAME else ids[kept]
               if kind == _ID else Encoded(value, tasks_text) for key, kind, kept in shape.items}
    return Encoded(members, text)


def shape_of(template: fresh.Template, copies: list[Any]) -> Shape | None:
    """The shape of the first of ``copies`` (of ``template``, as their first move left them), if it gives their
    real dumps exactly; else None."""
    made = _shape(template, copies[0])
    if made is None:
        return None
    for copy in copies:
        real, mine = dumping.dump(copy), dump(template, made, copy)
        if mine is None or _kinds(mine) != _kinds(real):
            return None
    return made


def _shape(template: fresh.Template, copy: Any) -> Shape | None:
    tasks = list(copy.tasks.values())
    if len(tasks) > _MOST or len(tasks) != len(template.tasks):
        return None
    real = dumping.dump(copy)
    dicts = real.get("tasks")
    if type(real) is not Encoded or type(dicts) is not Encoded or list(dicts) != [str(task.id) for task in tasks]:
        return None
    ids = {str(task.id): index for index, task in enumerate(tasks)}
    constants = []
    for made in dicts.values():
        if tuple(made) != _KEYS or not isinstance(made["typename"], str) or json.dumps(made["typename"]) != \
                f'"{made["typename"]}"':
            return None
        kept = {key: made[key] for key in _CONSTANT}
        constants.append((", ".join(member(key, json.dumps(kept[key])) for key in _CONSTANT), kept, made["typename"]))
    if real.text.count(dicts.text) != 1:
        return None
    before, after = real.text.split(dicts.text)
    items: list[tuple[str, int, Any]] = []
    for key, found in real.items():
        if key == "tasks":
            items.append((key, _TASKS, None))
        elif isinstance(found, str) and found in ids:
            items.append((key, _ID, ids[found]))
        else:
            items.append((key, _SAME, _copied(found)))
    return Shape(constants=tuple(constants), head=_pieces(before, ids), tail=_pieces(after, ids), items=tuple(items))


def _pieces(text: str, ids: dict[str, int]) -> tuple[str | int, ...]:
    """``text`` as literal pieces and the indexes of the tasks whose quoted id it spells."""
    found: list[str | int] = []
    at = 0
    for quoted in _ID_TEXT.finditer(text):
        if quoted.group(1) in ids:
            found += [text[at:quoted.start(1)], ids[quoted.group(1)]]
            at = quoted.end(1)
    return (*found, text[at:])


def _copied(value: Any) -> Any:
    """A new copy of a dump's constant member (JSON values; an ``Encoded`` stays one, with its text)."""
    if isinstance(value, Encoded):  # (a ``Parted`` among them is not one: the dumps then differ, and no shape is made)
        return Encoded({key: _copied(item) for key, item in value.items()}, value.text)
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


def _kinds(value: Any) -> Any:
    """A value with its types spelled out (an ``Encoded`` with its text), to compare two dumps exactly."""
    if isinstance(value, Encoded):
        return (type(value).__name__, value.text, {key: _kinds(item) for key, item in value.items()})
    if isinstance(value, dict):
        return ("dict", [(key, _kinds(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [_kinds(item) for item in value])
    return (type(value).__name__, repr(value))
