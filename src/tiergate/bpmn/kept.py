"""Workflows kept in memory after a move, so that the next move of the run need not rebuild them.

Restoring a SpiffWorkflow task tree from JSON costs time in proportion to its open tasks: a
multi-instance task over 1,000 items has 1,000 of them. A move that ends with the run still
going stamps the state it returns with a new random ``move`` id and keeps the workflow it
dumped that state from under that id. The next move of the run, in the same process, is given
that state back (from the engine's remembered runs, or the database) and takes the workflow
instead of restoring it.

Safe because the kept workflow is exactly the one the stamped state was dumped from: only the
move that made the state can have put it here, nothing changes the workflow after the dump, and
a kept workflow is *taken* (used once): a move that then fails, is refused, or whose result is
not saved leaves nothing behind, and the run's next move restores from JSON as before. A state
changed by any other move (another process, the worker) carries another id.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any

#: How many workflows one process keeps (least recently kept go first).
SIZE = 64

_kept: OrderedDict[tuple[str, str], Any] = OrderedDict()
_lock = threading.Lock()


def keep(state: dict[str, Any], version: str, workflow: Any) -> None:
    """Stamp ``state`` with a new move id and keep ``workflow`` (which it was just dumped from)."""
    move_id = secrets.token_hex(12)
    state["move"] = move_id
    with _lock:
        _kept[(move_id, version)] = workflow
        while len(_kept) > SIZE:
            _kept.popitem(last=False)


def take(state: dict[str, Any], version: str) -> Any | None:
    """The workflow ``state`` was dumped from, if this process kept it; it is kept no longer."""
    move_id = state.get("move")
    if not isinstance(move_id, str):
        return None
    with _lock:
        return _kept.pop((move_id, version), None)


def forget(state: dict[str, Any]) -> None:
    """A state that will not be moved from again (finished): drop its stamp."""
    state.pop("move", None)
