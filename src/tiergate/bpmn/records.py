"""A Tier 1 run's step records (``state["steps"]``), shared between moves and copied only where changed.

A multi-instance task over 1,000 items has 1,000 step records, of which a step changes one or
two. A move ends by freezing its records (``freeze``): each becomes a ``tiergate.jsontext.Frozen``,
a dict that carries its own JSON text and refuses to be changed. The next move's copy of the state
(``copied``) shares the frozen records instead of copying them, and a record the move changes is
copied first (``editable``); so a step copies, encodes and (in ``tiergate.store.RecentRuns``)
hands over only the records it changed. The state's text is the same, byte for byte, as a plain
``json.dumps`` of it. Once every record is frozen, so are the records themselves
(``FrozenRecords``): their text is spliced from the members of the records the move copied, with
only the changed records' members spelled again, so neither the next copy (``copied``: one dict
copy), the state's text nor ``RecentRuns`` goes through the 1,000 records one by one.

Records read from the database are plain dicts: ``copied`` copies them one level deep, as before.
"""

from __future__ import annotations

from itertools import compress
from operator import is_not
from typing import Any

from tiergate.jsontext import Frozen, member


class FrozenRecords(Frozen):
    """A run's records once a move has frozen every one of them: itself frozen, with its text spliced
    from theirs. ``members`` are the object's members as its text spells them, by position
    (``where``); the next move's frozen records copy the list and replace the members of the records
    it changed, so a step spells two or three members instead of 1,000."""

    __slots__ = ("members", "where")

    def __init__(self, value: dict[str, Any], members: list[str], where: dict[str, int]):
        super().__init__(value, "{" + ", ".join(members) + "}")
        self.members, self.where = members, where

    @classmethod
    def spliced(cls, steps: dict[str, Any], base: FrozenRecords | None, edited: Any = None) -> FrozenRecords:
        """``steps`` (every record frozen, text keys) frozen; ``base``: the frozen records it was copied from;
        ``edited``: the only keys set since, when known (the same keys, in the same order, as ``base``)."""
        if base is not None and edited is not None:
            members = list(base.members)
            for key in edited:
                record = steps[key]
                if record is not base[key]:
                    members[base.where[key]] = member(key, record.text)
            return cls(steps, members, base.where)
        keys = list(steps)
        if base is not None and len(keys) == len(base.where) and keys == list(base):
            members, values = list(base.members), list(steps.values())
            for key in compress(keys, map(is_not, values, base.values())):
                position = base.where[key]
                members[position] = member(key, values[position].text)
            return cls(steps, members, base.where)
        return cls(steps, [member(key, record.text) for key, record in steps.items()],
                   {key: position for position, key in enumerate(keys)})


class Records(dict):  # type: ignore[type-arg]
    """A move's copy of a run's frozen records (``copied``), with the ones it was copied from (``base``)
    and the keys set since (``edited``; None once any other change was made: then ``freeze`` compares
    every record with ``base``'s)."""

    __slots__ = ("base", "edited")

    def __init__(self, base: FrozenRecords):
        super().__init__(base)
        self.base = base
        self.edited: set[str] | None = set()

    def __setitem__(self, key: str, value: Any) -> None:
        if self.edited is not None:
            self.edited.add(key)
        super().__setitem__(key, value)

    def _unsure(name: str) -> Any:  # type: ignore[misc]  # (not a method: it builds the ones below)
        method = getattr(dict, name)

        def changed(self: Records, *args: Any, **kwargs: Any) -> Any:
            self.edited = None
            return method(self, *args, **kwargs)

        return changed

    update = _unsure("update")
    setdefault = _unsure("setdefault")
    pop = _unsure("pop")
    popitem = _unsure("popitem")
    clear = _unsure("clear")
    __delitem__ = _unsure("__delitem__")
    __ior__ = _unsure("__ior__")
    del _unsure


def copied(steps: dict[str, Any]) -> dict[str, Any]:
    """A copy of the records to change: frozen ones shared, plain ones copied one level deep (a
    record's values are replaced, never changed in place)."""
    if type(steps) is FrozenRecords:
        return Records(steps)
    return {step: record if type(record) is Frozen else dict(record) for step, record in steps.items()}


def editable(state: dict[str, Any], step_id: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of ``step_id`` in ``state``, ready to change: a frozen one is replaced by a copy;
    a missing one is added (``default``, or empty)."""
    steps = state.setdefault("steps", {})
    record = steps.get(step_id)
    if record is None:
        record = steps[step_id] = dict(default or {})
    elif type(record) is Frozen:
        record = steps[step_id] = dict(record)
    return record  # type: ignore[no-any-return]


def freeze(state: dict[str, Any]) -> None:
    """Freeze the records a move changed or added (the others are frozen already), then the records
    themselves (``FrozenRecords``) when every one of them is."""
    steps = state.get("steps")
    if not isinstance(steps, dict) or type(steps) is FrozenRecords:
        return
    base, edited = getattr(steps, "base", None), getattr(steps, "edited", None)
    if base is not None and edited is not None and len(steps) == len(base):
        # copied from frozen records and only records set since (none added): the others are theirs, frozen
        candidates: Any = [(step, steps[step]) for step in edited]
    elif base is not None and len(steps) == len(base) and list(steps) == list(base):
        edited = None  # the records not replaced are the frozen ones copied, found in C
        candidates = compress(steps.items(), map(is_not, steps.values(), base.values()))
    else:
        edited, candidates = None, steps.items()
    changed = [(step, record) for step, record in candidates if type(record) is not Frozen]
    frozen = all(isinstance(step, str) for step, _ in changed)
    for step, record in changed:
        if isinstance(record, dict) and all(isinstance(key, str) for key in record):
            steps[step] = Frozen.of(record)
        else:
            frozen = False
    if frozen:
        state["steps"] = FrozenRecords.spliced(steps, base, edited)
