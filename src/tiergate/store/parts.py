"""A run's state stored in parts, so that a step writes (and hashes) only what changed.

A Tier 1 run with a multi-instance task over 1,000 items holds 1,000 task dicts (about 500 kB of
JSON) and a step changes a few of them. Its task tree is a ``tiergate.jsontext.Parted`` object
(``tiergate.bpmn.dumping``); when one's text is ``MIN_TEXT`` or longer, its members are stored
one row each in ``run_parts`` (run, path, key, position, text) and the run row's ``state`` holds
the rest of the state (the *root*), with ``null`` where the object was and, under ``KEY``, each
such object's JSON pointer, member count and digest:

    {"workflow": {..., "tasks": null, ...}, "steps": {...}, ...,
     "stored_parts": {"/workflow/tasks": {"n": 1005, "sha256": "9c1e..."}}}

A member's *leaf* is ``sha256(key, 0x00, text)``; the object's digest is the SHA-256 of its
members' leaves in order. The root binds the digests, and the log binds the root's hash
(``tiergate.log.state_hash``), so every part is covered: ``log verify`` re-hashes the rows
(``digests``) against the root. A step writes the rows whose text changed, deletes the members
gone, and hashes the changed members' leaves, the leaves' concatenation (32 bytes a member) and
the root. A smaller state, or one with no ``Parted`` object, is stored whole exactly as before,
with no extra statement: ``split`` returns None.

What was stored is kept with the run's record (``Stored``: each member's position and text), so
the next step knows what changed without reading the rows back; ``get_run`` builds it from the
rows, re-hashing them against the root (a run whose parts were changed is not used). When the
``Parted`` says which one it followed and which members it made afresh (a partial dump does), a
step looks at those only and copies the rest; otherwise it compares every member's text.
Positions keep the members' order (SpiffWorkflow's task dictionary is in creation order, and a
restored run must list its tasks as the kept one does); a new member goes after the rest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tiergate import jsontext
from tiergate.errors import IntegrityError
from tiergate.jsontext import Encoded, Frozen, Member, Parted

#: The root's key that lists the objects stored apart. Runners never use it for state of their own.
KEY = "stored_parts"
#: A ``Parted`` object whose text is shorter is stored inline (a simple run's task tree is ≈ 3 kB).
MIN_TEXT = jsontext.PARTED_MIN_TEXT

#: ``{pointer: {key: (position, member)}}``, in the members' order, and the next free position.
Rows = dict[str, tuple[int, Member]]


@dataclass
class Stored:
    """One object as stored apart: its members by key, with their positions, in order; the next
    free position; each position's leaf (``b""`` where none is: the object's digest is that of
    their concatenation), None until needed; and the ``Parted.token`` it was written from."""

    rows: Rows
    next: int
    leaves: list[bytes] | None = None
    source: object | None = None


@dataclass
class Split:
    """A state ready to store: the root's text and what to do to ``run_parts``."""

    root: str
    stored: dict[str, Stored]
    #: Pointers whose rows all go first (an object no longer stored apart, or written anew).
    cleared: list[str] = field(default_factory=list)
    #: (pointer, key) of members gone.
    deleted: list[tuple[str, str]] = field(default_factory=list)
    #: (pointer, key, position, text) to insert or replace.
    written: list[tuple[str, str, int, str]] = field(default_factory=list)


def pointer(keys: list[str]) -> str:
    """The JSON pointer (RFC 6901) of nested keys."""
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


def _keys(path: str) -> list[str]:
    return [key.replace("~1", "/").replace("~0", "~") for key in path.split("/")[1:]]


def leaf(item: Member) -> bytes:
    """sha256 of a member's key, a zero byte and its text (kept with the member once worked out)."""
    found = item.leaf
    if found is None:
        found = item.leaf = hashlib.sha256(f"{item.key}\x00{item.text}".encode("utf-8")).digest()
    return found


def digest(leaves: list[bytes]) -> str:
    return hashlib.sha256(b"".join(leaves)).hexdigest()


def _find(value: Any, keys: list[str], found: dict[str, Parted]) -> None:
    """The large ``Parted`` objects in ``value``, looked for through ``Encoded`` objects only."""
    if isinstance(value, Parted):
        if value.reaches(MIN_TEXT):
            found[pointer(keys)] = value
        return
    if isinstance(value, Frozen):  # a Tier 1 run's step records (tiergate.bpmn.records): plain JSON inside
        return
    if len(value.text) < MIN_TEXT:  # an Encoded's text holds each Encoded's inside it: none is large enough
        return
    for key, item in value.items():
        if isinstance(item, Encoded):
            _find(item, [*keys, key], found)


def _at(state: dict[str, Any], path: str) -> Any:
    value: Any = state
    for key in _keys(path):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def split(state: dict[str, Any], before: dict[str, Stored] | None) -> Split | None:
    """The state as root and parts, against what was stored ``before`` (None: nothing is known to
    be stored apart). None: store the state whole, as it always was (nothing large, nothing stored
    apart before)."""
    found: dict[str, Parted] = {}
    for key, value in state.items():
        if isinstance(value, Encoded):
            _find(value, [key], found)
    for path in before or ():  # a state read back holds its parts in plain containers
        value = _at(state, path)
        if path not in found and isinstance(value, Parted) and value.reaches(MIN_TEXT):
            found[path] = value
    if not found:
        if not before:
            return None
        return Split(root=jsontext.dumps(state), stored={}, cleared=list(before))
    out = Split(root="", stored={}, cleared=[path for path in before or () if path not in found])
    summary: dict[str, dict[str, Any]] = {}
    for path, parted in found.items():
        stored = _diff(path, parted, (before or {}).get(path), out)
        out.stored[path] = stored
        summary[path] = {"n": len(stored.rows), "sha256": digest(stored.leaves or [])}
    if KEY in state:
        raise ValueError(f"a run's state may not use the key '{KEY}' (it lists the parts stored apart)")
    ancestors = {pointer(_keys(path)[:depth]) for path in found for depth in range(1, len(_keys(path)))}
    out.root = "{" + ", ".join([*_members(state, "", found, ancestors), jsontext.member(KEY, json.dumps(summary))]) + "}"
    return out


def _members(value: dict[str, Any], path: str, found: dict[str, Parted], ancestors: set[str]) -> list[str]:
    """The members of ``value``'s text (at ``path``), as ``json.dumps`` spells them, with ``null`` for
    each object stored apart. The members between two that are not plain JSON (an object stored apart,
    one of its ancestors, an ``Encoded``) are encoded together, in one call (``jsontext.dumps``)."""
    pieces: list[str] = []
    plain: dict[str, Any] = {}
    for key, item in value.items():
        here = path + _pointer(key)
        if here in found or (here in ancestors and isinstance(item, dict)) or isinstance(item, Encoded) \
                or jsontext.holds_encoded(item) or not isinstance(key, str):
            if plain:
                pieces.append(json.dumps(plain)[1:-1])
                plain = {}
            pieces.append(jsontext.member(key, _text(item, here, found, ancestors)))
        else:
            plain[key] = item
    if plain:
        pieces.append(json.dumps(plain)[1:-1])
    return pieces


@lru_cache(maxsize=4096)
def _pointer(key: str) -> str:
    return pointer([key])


def _text(value: Any, path: str, found: dict[str, Parted], ancestors: set[str]) -> str:
    if path in found:
        return "null"
    if path in ancestors and isinstance(value, dict):
        return "{" + ", ".join(_members(value, path, found, ancestors)) + "}"
    return jsontext.dumps(value)


def _diff(path: str, parted: Parted, old: Stored | None, out: Split) -> Stored:
    """The object's rows now; the members whose text changed go to ``out.written``."""
    if old is not None and old.next > 4 * len(old.rows) + 1024:
        old = None  # positions mostly of members long gone: written anew, from 0
    if old is not None and old.leaves is not None and parted.base is not None and parted.base is old.source:
        return _follow(path, parted, old, out)
    rows: Rows = {}
    written: list[tuple[str, str, int, str]] = []
    old_rows = old.rows if old is not None else {}
    next_free = old.next if old is not None else 0
    last, in_order = -1, True
    for item in parted.members:
        kept = old_rows.get(item.key)
        if kept is not None:
            position, stored = kept
            if stored.text is item.text or stored.text == item.text:
                rows[item.key] = kept
            else:
                rows[item.key] = (position, item)
                written.append((path, item.key, position, item.text))
        else:
            position, next_free = next_free, next_free + 1
            rows[item.key] = (position, item)
            written.append((path, item.key, position, item.text))
        if position <= last:
            in_order = False
        last = position
    if old is None or not in_order:  # written anew: every member, in order from 0
        out.cleared.append(path)
        rows = {key: (position, item) for position, (key, (_, item)) in enumerate(rows.items())}
        written = [(path, key, position, item.text) for key, (position, item) in rows.items()]
        next_free = len(rows)
    elif len(old_rows) + next_free - old.next != len(rows):  # some members are gone
        out.deleted.extend((path, key) for key in old_rows.keys() - rows.keys())
    out.written.extend(written)
    leaves = [b""] * next_free
    for position, item in rows.values():
        leaves[position] = leaf(item)
    return Stored(rows, next_free, leaves, parted.token)


def _follow(path: str, parted: Parted, old: Stored, out: Split) -> Stored:
    """``_diff`` for a ``Parted`` made from the one ``old`` was written from: only its fresh members
    and the members gone are looked at (a step's few), the rest is copied whole."""
    rows, leaves, next_free = dict(old.rows), list(old.leaves or ()), old.next
    gone = old.rows.keys() - parted.keys()
    for key in gone:
        position, _ = rows.pop(key)
        leaves[position] = b""
        out.deleted.append((path, key))
    for item in parted.fresh:
        kept = rows.get(item.key)
        if kept is not None:
            position, stored = kept
            if stored.text is item.text or stored.text == item.text:
                continue
            leaves[position] = leaf(item)
        else:
            position, next_free = next_free, next_free + 1
            leaves.append(leaf(item))
        rows[item.key] = (position, item)
        out.written.append((path, item.key, position, item.text))
    return Stored(rows, next_free, leaves, parted.token)


def assemble(run_id: str, root: dict[str, Any], rows: list[tuple[str, str, int, str]]) -> dict[str, Stored]:
    """Put the parts read back (pointer, key, position, text; in pointer and position order) into
    ``root`` (parsed from the run row), each object as a ``Parted``; what was stored, for the next
    write. Each object is re-hashed against the digest the root lists (its leaves are kept for the
    next write): ``IntegrityError`` if a part was changed in the database, and the run is not used."""
    listed = root.pop(KEY, None) or {}
    grouped: dict[str, list[tuple[int, Member]]] = {path: [] for path in listed}
    for path, key, position, text in rows:
        if path in grouped:
            grouped[path].append((position, Member(key, text)))
    stored: dict[str, Stored] = {}
    for path, found in grouped.items():
        members = [m for _, m in found]
        next_free = found[-1][0] + 1 if found else 0
        leaves = [b""] * next_free
        for position, item in found:
            leaves[position] = leaf(item)
        if {"n": len(members), "sha256": digest(leaves)} != listed[path]:
            raise IntegrityError(
                f"the part {path} of run {run_id}'s state no longer matches the digest its state lists: "
                "run_parts was changed in the database after it was stored, so the run is not moved. Restore "
                "the run's rows of run_parts from a backup (`tiergate log verify` names every such run).",
                details={"run": run_id, "part": path})
        keys = _keys(path)
        container: Any = root
        for key in keys[:-1]:
            container = container[key]
        container[keys[-1]] = Parted({m.key: json.loads(m.text) for m in members}, members)
        stored[path] = Stored({m.key: (position, m) for position, m in found}, next_free, leaves)
    return stored


def digests(rows: list[tuple[str, str, int, str]]) -> dict[str, dict[str, Any]]:
    """What the root should say of parts read back (pointer, key, position, text; in pointer and
    position order): per pointer, ``{"n": members, "sha256": digest}`` (for ``log verify``)."""
    leaves: dict[str, list[bytes]] = {}
    for path, key, _position, text in rows:
        leaves.setdefault(path, []).append(hashlib.sha256(f"{key}\x00{text}".encode("utf-8")).digest())
    return {path: {"n": len(found), "sha256": digest(found)} for path, found in leaves.items()}
