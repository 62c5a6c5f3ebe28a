"""Timer-cycle start events as schedules: when the next run of a process is due.

A process whose own start event has a ``timeCycle`` (``R/PT1H``, ``R3/2026-12-01T09:00:00Z/P1D``)
is started by ``tiergate worker`` at each due time of the cycle (``tiergate.schedules`` keeps what
was started). This module is the arithmetic, without I/O:

* The due times lie on a fixed grid: ``first + k * interval`` for k = 0, 1, ... (fewer than n for
  ``Rn``). A cycle with a start date begins there; one without (``R/PT1H``) begins one interval
  after ``anchor`` (when the process's file was deployed as it is), and after a start goes on
  from its due time.
* A pass at ``now`` starts the latest due time that has passed, once: due times missed while no
  worker ran are skipped, not replayed (they count toward ``Rn``).
* A schedule that replaced another on its start event (a changed cycle), or came back after it was
  removed, starts no due time from before it went live (``floor``).

Only ISO 8601 literals are schedules (no run exists yet whose data an expression could read), of at
most ``MAX_TEXT`` characters; so nothing a definition supplies is evaluated here beyond a bounded
regular expression and date arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from tiergate.bpmn.model import ProcessModel
from tiergate.bpmn.timers import LITERALS, parse_cycle

#: The longest timeCycle text a schedule may have.
MAX_TEXT = 120


@dataclass(frozen=True)
class CycleStart:
    """A timer-cycle start event at the top level of a process."""

    start_event: str
    cycle: str
    line: int


@dataclass(frozen=True)
class Cycle:
    repeats: int            # -1: for ever
    first: datetime | None  # None: one interval after the anchor
    interval: timedelta


def cycle_starts(model: ProcessModel) -> list[CycleStart]:
    """The top-level start events of ``model`` with a timeCycle, in document order."""
    return [CycleStart(node.id, node.timer.text.strip(), node.timer.line) for node in model.nodes.values()
            if node.kind == "startEvent" and node.container == model.id and node.timer is not None
            and node.timer.kind == "timeCycle" and list(node.event_definitions) == ["timerEventDefinition"]]


def parse(text: str, anchor: datetime) -> Cycle:
    """The cycle of an ISO 8601 repeating interval, or ValueError saying what is wrong."""
    value = (text or "").strip()
    if len(value) > MAX_TEXT:
        raise ValueError(f"the timeCycle is {len(value)} characters long; a schedule has at most {MAX_TEXT}")
    if not LITERALS["timeCycle"].match(value):
        raise ValueError(f"'{value}' is not an ISO 8601 repeating interval such as R/PT1H, R3/P1D or "
                         "R3/2026-12-01T09:00:00Z/P1D (a start event's cycle must be written out: no run "
                         "exists yet whose data an expression could read)")
    try:
        repeats, first, interval = parse_cycle(value, anchor)
    except (ValueError, OverflowError) as err:
        raise ValueError(str(err) if isinstance(err, ValueError) else f"'{value}' is out of range") from None
    if interval <= timedelta(0):
        raise ValueError(f"'{value}': the interval must be longer than zero")
    dated = not value.split("/")[1].upper().startswith("P") or value.count("/") == 2
    return Cycle(repeats, first if dated else None, interval)


def due_times(cycle: Cycle, anchor: datetime, last: tuple[datetime, int] | None,
              now: datetime, floor: datetime | None = None) -> tuple[tuple[datetime, int] | None, datetime | None]:
    """(the due time to start now and its place in the cycle, or None; the next due time after it, or None).

    ``last`` is the due time and place of the latest run started for this cycle, if any. ``floor``: no due
    time before it is started (a schedule that replaced another, or came back, begins when it went live);
    the due times before it count toward ``Rn`` as missed ones do."""
    try:
        if last is not None:
            due, seq = last[0] + cycle.interval, last[1] + 1
        elif cycle.first is not None:
            due, seq = cycle.first, 0
        else:
            due, seq = anchor + cycle.interval, 0
        if floor is not None and due < floor:
            behind = -((due - floor) // cycle.interval)  # whole intervals up to the floor, rounded up
            due, seq = due + behind * cycle.interval, seq + behind
    except OverflowError:
        return None, None
    if 0 <= cycle.repeats <= seq:
        return None, None
    if due > now:
        return None, due
    skipped = (now - due) // cycle.interval
    if cycle.repeats >= 0:
        skipped = min(skipped, cycle.repeats - 1 - seq)
    due, seq = due + skipped * cycle.interval, seq + skipped
    following: datetime | None
    try:
        following = due + cycle.interval if cycle.repeats < 0 or seq + 1 < cycle.repeats else None
    except OverflowError:
        following = None
    return (due, seq), following


def problems(model: ProcessModel, anchor: datetime) -> Iterable[tuple[CycleStart, str]]:
    """Each timer-cycle start event of ``model`` whose cycle is not a schedule, with what is wrong."""
    for start in cycle_starts(model):
        try:
            parse(start.cycle, anchor)
        except ValueError as err:
            yield start, str(err)
