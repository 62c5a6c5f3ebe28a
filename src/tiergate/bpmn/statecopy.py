"""Copying a Tier 1 run's state for a move to change (``copy_state``): the parts a move replaces
whole are shared, the step records copied by ``tiergate.bpmn.records``, the rest one JSON value at a time."""

from __future__ import annotations

import copy
from typing import Any

from tiergate.bpmn import records


def copy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy to change. The workflow is only ever replaced whole, and a step's record is only
    changed key by key (its values are replaced, never changed in place), so a run with many
    steps (multi-instance) shares its frozen records and copies the others one level deep
    (``tiergate.bpmn.records``) instead of deep-copying them. The data view is shared too: it
    is only read during a move, and replaced whole by every move that returns a state
    (``Move.run``, ``Move.failed``; a cancel keeps it as it is); it holds a multi-instance
    collection (1,000 items)."""
    copied: dict[str, Any] = {}
    for key, value in state.items():
        if key in ("workflow", "data"):
            copied[key] = value
        elif key == "steps" and isinstance(value, dict):
            copied[key] = records.copied(value)
        else:
            copied[key] = _copied(value)
    return copied


_ATOMS = frozenset({str, int, float, bool, type(None)})


def _copied(value: Any) -> Any:
    """``copy.deepcopy`` of a state's part, the JSON kinds (dicts, lists, text, numbers) copied directly."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    return copy.deepcopy(value)
