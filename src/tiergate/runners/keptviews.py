"""A Tier 1 run's step views, kept from one answer to the next: only the steps whose records changed
are made and rendered again.

With a multi-instance task over 1,000 items open, every answer lists 1,000 steps, and a step
changes the records of one or two. A run's records are frozen after each move
(``tiergate.bpmn.records``): a record that is the same object as in the last answer is the same
record, so its view is the same, as long as the run has the same steps in the same order (the
views' order and each instance's four eyes follow from the record ids) and the same pinned
definition. Anything else (a record added or gone, another definition) makes every view again,
as before; records that are not frozen as a whole (read from the database by a door or the
inbox) are made whole and leave the kept views as they were.

The views handed out are shared between answers: nobody changes one in place. The views'
instructions are rendered here too (``render``), each template once, as ``render_ready`` does;
a ready step keeps its rendered view while its template renders to the same text. A template
that reads ``steps`` (every step: its context changes with any record) is rendered for the
whole list each time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from itertools import compress
from operator import is_not
from typing import Any

from tiergate.jsontext import Frozen
from tiergate.runview import (
    StepList,
    StepView,
    render_ready,
    render_templates,
    rendered_view,
)

#: A record that is not frozen never counts as unchanged (nothing stops its owner changing it).
_UNKNOWN = object()


class _Kept:
    """One run's views as last made (``views``: as the runner makes them, instructions unrendered) and
    as last shown (``shown``: rendered), with what tells which are still right."""

    __slots__ = ("at", "definition", "dirty", "handed", "keys", "made", "pairs", "ready", "records", "shown",
                 "texts", "views", "where")

    def __init__(self, definition: Any, stored: dict[str, Any], made: list[tuple[Any, str, str | None]],
                 views: list[StepView]):
        self.definition, self.made, self.views = definition, made, views
        self.keys = list(stored)
        self.records = [record if type(record) is Frozen else _UNKNOWN for record in stored.values()]
        self.where = {key: index for index, key in enumerate(self.keys)}
        self.at = {view.id: index for index, view in enumerate(views)}
        #: Rendered views by position (None: not rendered yet), and the positions to render again.
        self.shown: list[StepView] | None = None
        self.dirty: set[int] = set()
        #: Each template's text as last rendered, and the ready steps that show it (positions by template).
        self.texts: dict[str, str] = {}
        self.ready: dict[str, set[int]] = {}
        #: How many ready steps have each (roles, actors): what the inbox key is made of (``claims.ready_key``).
        self.pairs: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        for index, view in enumerate(views):
            self._note(index, view)
        self.handed: list[StepView] | None = None

    def _note(self, index: int, view: StepView) -> None:
        if view.state == "ready" and view.instructions:
            self.ready.setdefault(view.instructions, set()).add(index)
        if view.state == "ready" and view.decide is None:
            pair = (tuple(view.roles), tuple(view.actors))
            self.pairs[pair] = self.pairs.get(pair, 0) + 1

    def _forget(self, index: int, view: StepView) -> None:
        if view.state == "ready" and view.instructions:
            positions = self.ready.get(view.instructions)
            if positions is not None:
                positions.discard(index)
                if not positions:
                    del self.ready[view.instructions]
                    self.texts.pop(view.instructions, None)
        if view.state == "ready" and view.decide is None:
            pair = (tuple(view.roles), tuple(view.actors))
            if self.pairs[pair] == 1:
                del self.pairs[pair]
            else:
                self.pairs[pair] -= 1

    def follow(self, stored: dict[str, Any], make: Callable[[Any, str, str | None], StepView]) -> bool:
        """Bring the views in line with ``stored``; False if they cannot be (made whole again instead)."""
        if len(stored) != len(self.keys) or list(stored) != self.keys:
            return False
        values = list(stored.values())
        changed = list(compress(self.keys, map(is_not, values, self.records)))
        for key in changed:
            position = self.where[key]
            record = values[position]
            self.records[position] = record if type(record) is Frozen else _UNKNOWN
            index = self.at.get(key)
            if index is None:
                continue  # a record no view shows (a multi-instance task's own, once it has instances)
            view = make(*self.made[index])
            self._forget(index, self.views[index])
            self.views[index] = view
            self._note(index, view)
            self.dirty.add(index)
        return True


class KeptViews:
    """The views of the runs a runner answered for last (``size`` runs), by run id."""

    def __init__(self, size: int = 64):
        self.size = size
        self._runs: OrderedDict[str, _Kept] = OrderedDict()
        self._lock = threading.Lock()  # a program may share its engine between threads

    def _take(self, run_id: str) -> _Kept | None:
        with self._lock:
            return self._runs.pop(run_id, None)

    def _put(self, run_id: str, kept: _Kept) -> None:
        with self._lock:
            self._runs[run_id] = kept
            if len(self._runs) > self.size:
                self._runs.popitem(last=False)

    def steps(self, run_id: str | None, definition: Any, stored: dict[str, Any],
              made: Callable[[], list[tuple[Any, str, str | None]]],
              make: Callable[[Any, str, str | None], StepView]) -> list[StepView]:
        """The run's views: those of ``made()`` (rules, step id, instance key), each made by ``make``,
        or the kept ones where their records did not change. A new list; its views are shared."""
        if not run_id or not isinstance(stored, Frozen):
            # Records as read from the database (a door's read, the inbox): made whole, and the views
            # kept from the run's last move stay for its next one.
            return [make(*spec) for spec in made()]
        kept = self._take(run_id)
        if kept is None or kept.definition is not definition or not kept.follow(stored, make):
            specs = made()
            views = [make(*spec) for spec in specs]
            kept = _Kept(definition, stored, specs, views)
            if len(kept.at) != len(views):  # a step shown twice: its position is not known by its id
                return views
        handed = StepList(kept.views)
        handed.ready_pairs = frozenset(kept.pairs)
        kept.handed = handed
        self._put(run_id, kept)
        return handed

    def render(self, run_id: str, views: list[StepView], data: dict[str, Any], *, process_id: str,
               bare_names: dict[str, dict[str, Any]] | None = None) -> None:
        """``render_ready`` for views this runner made (shared: replaced, never changed in place). Steps
        with names of their own (``bare_names``: an instance's item its template reads) are rendered
        one by one, over the whole list."""
        kept = self._take(run_id)
        try:
            if kept is None or kept.handed is not views or bare_names:
                render_ready(views, data, run_id=run_id, process_id=process_id, bare_names=bare_names, shared=True)
                if kept is not None and kept.handed is views:
                    kept.handed, kept.shown, kept.dirty = None, None, set()
                return
            kept.handed = None
            self._render(kept, views, data, run_id=run_id, process_id=process_id, bare=bare_names is not None)
        finally:
            if kept is not None:
                self._put(run_id, kept)

    @staticmethod
    def _render(kept: _Kept, views: list[StepView], data: dict[str, Any], *, run_id: str, process_id: str,
                bare: bool) -> None:
        firsts = {kept.views[index].instructions: kept.views[index].id
                  for index in sorted(min(positions) for positions in kept.ready.values())}
        texts = render_templates(firsts, data, run_id=run_id, process_id=process_id, bare=bare)
        if texts is None:  # a template reads every step: the whole list, each time
            render_ready(views, data, run_id=run_id, process_id=process_id, bare_names={} if bare else None,
                         shared=True)
            kept.shown, kept.dirty = None, set()
            return
        if kept.shown is None:
            kept.shown, dirty = list(kept.views), set(range(len(kept.views)))
        else:
            dirty = kept.dirty
            for template, text in texts.items():
                if kept.texts.get(template) != text:
                    dirty |= kept.ready[template]
        shown = kept.shown
        for index in dirty:
            view = kept.views[index]
            shown[index] = rendered_view(view, texts[view.instructions] if view.state == "ready" and view.instructions
                                         else "")
        kept.texts, kept.dirty = texts, set()
        views[:] = shown
