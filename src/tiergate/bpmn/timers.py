"""Timers: ISO 8601 values as modelers write them, on tiergate's clock.

SpiffWorkflow evaluates a timer's value as an expression, so the ``PT48H`` a modeler types is a
NameError there, and it compares due times with the machine's clock. Here:

* ``literal_or_expression`` turns a plain ISO 8601 literal (``PT48H``, ``P2D``,
  ``2026-12-01T09:00:00Z``, ``R3/PT1H``) into a quoted string before SpiffWorkflow sees it;
  anything else stays an expression for the restricted interpreter (``"PT" + str(hours) + "H"``).
* The timer event definitions below replace SpiffWorkflow's after parsing. They read the time
  from the workflow's script engine (``engine.now``), which is the engine's clock, so a worker
  run at 10:00 fires exactly the timers due by 10:00, and tests need no sleeping. A date
  without a zone is UTC. A cycle that was missed (the worker was down) fires once and the next
  one is scheduled one interval after it; missed cycles are not replayed. A cycle on the
  process's own start event is a schedule (``tiergate.schedules``): a run goes past it at once.
* Each firing is written to the engine's journal: the runner logs it as ``timer_fired``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (CycleTimerEventDefinition,
                                                              DurationTimerEventDefinition, TimeDateEventDefinition,
                                                              TimerEventDefinition)

from tiergate.bpmn.scripting import JournalEntry

_NUM = r"(?:\d+(?:[.,]\d+)?|[.,]\d+)"   # PT.5S as SpiffWorkflow reads it, besides PT0.5S
_DURATION = (rf"P(?=[\d.,]|T[\d.,])(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
             rf"(?:T(?=[\d.,])(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?")
_DATETIME = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
_PART = rf"(?:{_DURATION}|{_DATETIME})"
LITERALS = {
    "timeDuration": re.compile(rf"^{_DURATION}$", re.I),
    "timeDate": re.compile(rf"^{_DATETIME}$", re.I),
    "timeCycle": re.compile(rf"^R\d*/{_PART}(?:/{_PART})?$", re.I),
}


def is_literal(kind: str, text: str) -> bool:
    pattern = LITERALS.get(kind)
    return bool(pattern and pattern.match(text.strip()))


def literal_or_expression(kind: str, text: str) -> str:
    """The expression SpiffWorkflow will evaluate: a quoted literal, or the text as written."""
    stripped = (text or "").strip()
    return repr(stripped) if is_literal(kind, stripped) else stripped


def parse_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def add_duration(start: datetime, value: str) -> datetime:
    if not LITERALS["timeDuration"].match(value.strip()):
        raise ValueError(f"'{value}' is not an ISO 8601 duration such as PT48H or P2D")
    parsed = TimerEventDefinition.parse_iso_duration(value.strip())
    return start + TimerEventDefinition.get_timedelta_from_start(parsed, start)


def parse_cycle(value: str, now: datetime) -> tuple[int, datetime, timedelta]:
    """``R[n]/start/duration``, ``R[n]/duration/end`` or ``R[n]/duration`` -> (cycles, first, interval)."""
    text = value.strip()
    if not LITERALS["timeCycle"].match(text):
        raise ValueError(f"'{value}' is not an ISO 8601 repeating interval such as R3/PT1H")
    head, *parts = text.split("/")
    cycles = int(head[1:]) if len(head) > 1 else -1
    first, second = parts[0], parts[1] if len(parts) > 1 else None
    if first.upper().startswith("P"):
        interval = add_duration(now, first) - now
        if second is None:
            return cycles, now + interval, interval
        end = parse_datetime(second)
        return cycles, end - interval, interval
    start = parse_datetime(first)
    if second is None or not second.upper().startswith("P"):
        raise ValueError(f"'{value}': a cycle that starts at a date needs a duration after it (R3/START/PT1H)")
    return cycles, start, add_duration(start, second) - start


def _engine(my_task: Any) -> Any:
    return my_task.workflow.script_engine


def _value(my_task: Any, expression: str) -> Any:
    value = _engine(my_task).evaluate(my_task, expression)
    if not isinstance(value, (str, datetime, timedelta, tuple)):
        raise ValueError(f"the timer value must be ISO 8601 text, got {type(value).__name__} {value!r}")
    return value


def due_date(value: Any) -> datetime:
    """A timeDate's value: ISO 8601 text or a ``datetime`` (without a zone: UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if not isinstance(value, str):
        raise ValueError(f"a timeDate must be ISO 8601 text or a datetime, got {type(value).__name__} {value!r}")
    return parse_datetime(value)


def due_after(start: datetime, value: Any) -> datetime:
    """A timeDuration's due time: ISO 8601 text (``PT4H``) or a ``timedelta`` after ``start``."""
    if isinstance(value, timedelta):
        return start + value
    if not isinstance(value, str):
        raise ValueError(f"a timeDuration must be ISO 8601 text or a timedelta, got {type(value).__name__} "
                         f"{value!r}")
    return add_duration(start, value)


def cycle_of(value: Any, now: datetime) -> tuple[int, datetime, timedelta]:
    """A timeCycle's value: ISO 8601 text (``R3/PT1H``) or SpiffWorkflow's older ``(count, timedelta)``."""
    if isinstance(value, tuple):
        if (len(value) != 2 or not isinstance(value[0], int) or isinstance(value[0], bool)
                or not isinstance(value[1], timedelta) or value[1] <= timedelta(0)):
            raise ValueError(f"a timeCycle written as a pair must be (count, timedelta(...)) with a positive "
                             f"duration, not {value!r}")
        return value[0], now + value[1], value[1]
    if not isinstance(value, str):
        raise ValueError(f"a timeCycle must be ISO 8601 text or (count, timedelta), got {type(value).__name__}")
    return parse_cycle(value, now)


def _record(my_task: Any, due: str, cycle: bool = False) -> None:
    _engine(my_task).journal.append(JournalEntry("timer_fired", my_task.task_spec.bpmn_id,
                                                 {"due": due, **({"cycle": True} if cycle else {})}))


def _fail(my_task: Any, exc: Exception) -> None:
    from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

    if isinstance(exc, WorkflowTaskException):
        raise exc
    raise WorkflowTaskException(f"timer value: {exc}", task=my_task) from None


class ClockTimeDate(TimeDateEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        due = my_task._get_internal_data("event_value")
        if due is None:
            try:
                due = due_date(_value(my_task, self.expression)).isoformat()
            except Exception as exc:  # noqa: BLE001 - reported against the timer element
                _fail(my_task, exc)
            my_task._set_internal_data(event_value=due)
        if not my_task._get_internal_data("event_fired", False) and parse_datetime(due) <= _engine(my_task).now:
            my_task._set_internal_data(event_fired=True)
            _record(my_task, due)
        return bool(my_task._get_internal_data("event_fired", False))


class ClockDuration(DurationTimerEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        due = my_task._get_internal_data("event_value")
        if due is None:
            try:
                due = due_after(_engine(my_task).now, _value(my_task, self.expression)).isoformat()
            except Exception as exc:  # noqa: BLE001
                _fail(my_task, exc)
            my_task._set_internal_data(event_value=due)
        if not my_task._get_internal_data("event_fired", False) and parse_datetime(due) <= _engine(my_task).now:
            my_task._set_internal_data(event_fired=True)
            _record(my_task, due)
        return bool(my_task._get_internal_data("event_fired", False))


def _top_level_start(my_task: Any) -> bool:
    from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent

    return isinstance(my_task.task_spec, StartEvent) and my_task.workflow is my_task.workflow.top_workflow


class ClockCycle(CycleTimerEventDefinition):
    def has_fired(self, my_task: Any) -> bool:
        """A cycle on the process's own start event is the schedule runs are started on
        (``tiergate.schedules``), not a loop inside one run: a started run goes past it at once."""
        if _top_level_start(my_task):
            if not my_task._get_internal_data("event_fired", False):
                my_task._set_internal_data(event_fired=True)
                _record(my_task, _engine(my_task).now.isoformat(), cycle=True)
                if not my_task.children:  # a cycle's path is not predicted (SpiffWorkflow adds it per cycle)
                    from SpiffWorkflow.util.task import TaskState

                    for output in my_task.task_spec.outputs:
                        child = my_task._add_child(output, TaskState.FUTURE)
                        child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
            return True
        return bool(super().has_fired(my_task))

    def cycle_complete(self, my_task: Any) -> bool:
        now = _engine(my_task).now
        state = my_task._get_internal_data("event_value")
        if state is None:
            try:
                cycles, first, interval = cycle_of(_value(my_task, self.expression), now)
            except Exception as exc:  # noqa: BLE001
                _fail(my_task, exc)
            state = {"cycles": cycles, "next": first.isoformat(), "duration": interval.total_seconds()}
        fired = False
        if state["cycles"] == 0:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
            return False
        due = parse_datetime(state["next"])
        if due <= now:
            following = due + timedelta(seconds=state["duration"])
            if following <= now:
                following = now + timedelta(seconds=state["duration"])
            state = {**state, "next": following.isoformat(), "cycles": state["cycles"] - 1}
            fired = True
            _record(my_task, due.isoformat(), cycle=True)
        my_task._set_internal_data(event_value=state)
        return fired


REPLACEMENTS = {TimeDateEventDefinition: ClockTimeDate, DurationTimerEventDefinition: ClockDuration,
                CycleTimerEventDefinition: ClockCycle}


def clock_timer(definition: TimerEventDefinition) -> TimerEventDefinition:
    """The clock-aware replacement of a parsed SpiffWorkflow timer definition."""
    target = REPLACEMENTS.get(type(definition))
    if target is None:
        return definition
    replacement = target.__new__(target)
    replacement.__dict__.update(definition.__dict__)
    return replacement


def due_of(my_task: Any) -> datetime | None:
    """When a WAITING timer task is due, from its internal data."""
    value = my_task._get_internal_data("event_value")
    if value is None or my_task._get_internal_data("event_fired", False):
        return None
    if isinstance(value, dict):
        return parse_datetime(value["next"]) if value.get("cycles", 0) != 0 else None
    return parse_datetime(value)
