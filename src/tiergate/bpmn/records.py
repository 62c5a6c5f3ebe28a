"""A Tier 1 run's step records (``state["steps"]``), shared between moves and copied only where changed.

A multi-instance task over 1,000 items has 1,000 step records, of which a step changes one or
two. A move ends by freezing its records (``freeze``): each becomes a ``tiergate.jsontext.Frozen``,
a dict that carries its own JSON text and refuses to be changed. The next move's copy of the state
(``copied``) shares the frozen records instead of copying them, and a record the move changes is
copied first (``editable``); so a step copies, encodes and (in ``tiergate.store.RecentRuns``)
hands over only the records it changed. The state's text is the same, byte for byte, as a plain
``json.dumps`` of it: ``tiergate.jsontext.dumps`` splices each record's text.

Records read from the database are plain dicts: ``copied`` copies them one level deep, as before.
"""

from __future__ import annotations

from typing import Any

from tiergate.jsontext import Frozen


def copied(steps: dict[str, Any]) -> dict[str, Any]:
    """A copy of the records to change: frozen ones shared, plain ones copied one level deep (a
    record's values are replaced, never changed in place)."""
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
    """Freeze the records a move changed or added (the others are frozen already)."""
    steps = state.get("steps")
    if not isinstance(steps, dict):
        return
    changed = [(step, record) for step, record in steps.items() if type(record) is not Frozen]
    for step, record in changed:
        if isinstance(record, dict) and all(isinstance(key, str) for key in record):
            steps[step] = Frozen.of(record)
