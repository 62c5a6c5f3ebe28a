"""Dates and durations in Tier 1 expressions and scripts: ``datetime``, ``timedelta``, ``timezone``.

SpiffWorkflow's processes compute due dates and waits with Python's types::

    futuredate = (datetime.now() + timedelta(days=2)).isoformat()
    timedelta(hours=4)                         # a timer's timeDuration
    datetime.fromisoformat(due) < datetime.now(timezone.utc)

The restricted interpreter (``tiergate.bpmn.interpreter``) offers them as values, never as the
modules: the three constructors, the class methods and fields of ``CLASS_CALLS`` and
``CLASS_FIELDS``, and the methods and fields of ``VALUE_METHODS`` and ``VALUE_FIELDS`` on the
values; arithmetic and comparison are Python's own (a result out of range is an error, as in
Python). ``datetime.now()`` is the move's clock (the engine's ``now``, which the worker and the
tests set), in UTC: without a zone, as Python gives it, unless one is asked for. ``strftime`` and ``strptime`` take a short format with no widths, so no
value turns into more text than its fields.

The task data is JSON: a date or duration a script leaves in it is stored as ISO 8601 text
(``as_data``: ``2026-12-07T09:00:00+00:00``, ``2026-12-07``, ``P2DT4H``); read it back with
``datetime.fromisoformat(...)``.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

from tiergate.bpmn.language import ExpressionError

#: The move's clock while a script or expression runs (``RestrictedScriptEngine`` sets it): ``datetime.now()``.
CLOCK: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("tiergate_clock", default=None)
_MAX_FORMAT = 100
_WIDTH = re.compile(r"%[-_0^#]*\d")


def _now(tz: Any = None) -> datetime:
    """Python's: without a zone when none is asked for. Its clock is UTC (tiergate reads a date
    without a zone as UTC), never the machine's zone."""
    current = CLOCK.get() or datetime.now(timezone.utc)
    if tz is None:
        return current.astimezone(timezone.utc).replace(tzinfo=None)
    if not isinstance(tz, timezone):
        raise TypeError("datetime.now() takes a timezone, such as timezone.utc")
    return current.astimezone(tz)


def _format(fmt: Any) -> str:
    if not isinstance(fmt, str) or len(fmt) > _MAX_FORMAT or _WIDTH.search(fmt):
        raise ExpressionError(f"a date format must be text of at most {_MAX_FORMAT} characters without widths "
                              "(such as %Y-%m-%d)")
    return fmt


def _fromisoformat(text: Any) -> datetime:
    if not isinstance(text, str) or len(text) > 64:
        raise ValueError(f"datetime.fromisoformat() takes ISO 8601 text, not {str(text)[:40]!r}")
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def _strptime(text: Any, fmt: Any) -> datetime:
    if not isinstance(text, str) or len(text) > 200:
        raise ValueError("datetime.strptime() takes text of at most 200 characters")
    return datetime.strptime(text, _format(fmt))


#: The class methods that may be called: ``datetime.now()``, ``datetime.fromisoformat(text)``, ...
CLASS_CALLS: dict[tuple[type, str], Callable[..., Any]] = {
    (datetime, "now"): _now, (datetime, "fromisoformat"): _fromisoformat, (datetime, "strptime"): _strptime,
}
#: The class fields that may be read: ``timezone.utc``, ...
CLASS_FIELDS: dict[type, frozenset[str]] = {timezone: frozenset({"utc"}),
                                            datetime: frozenset({"min", "max"}), timedelta: frozenset({"max"})}

_DATE_METHODS = frozenset({"isoformat", "weekday", "isoweekday", "strftime", "replace", "isocalendar"})
#: The methods of the values (each gives a new value: none changes one).
VALUE_METHODS: dict[type, frozenset[str]] = {
    datetime: _DATE_METHODS | {"date", "astimezone", "timestamp"},
    date: _DATE_METHODS,
    timedelta: frozenset({"total_seconds"}),
    timezone: frozenset({"utcoffset", "tzname"}),
}
_DATE_FIELDS = frozenset({"year", "month", "day"})
#: The fields of the values that may be read: ``due.year``, ``wait.days``, ...
VALUE_FIELDS: dict[type, frozenset[str]] = {
    datetime: _DATE_FIELDS | {"hour", "minute", "second", "microsecond", "tzinfo"},
    date: _DATE_FIELDS,
    timedelta: frozenset({"days", "seconds", "microseconds"}),
}
#: Every method name above, for ``tiergate check`` (which sees names, not values).
METHOD_NAMES = frozenset({name for _cls, name in CLASS_CALLS}).union(*VALUE_METHODS.values())


def class_call(target: Any, name: str) -> Callable[..., Any] | None:
    """The function behind ``datetime.now`` and the like, or None when ``target.name`` is not one."""
    return CLASS_CALLS.get((target, name)) if isinstance(target, type) else None


def read_field(target: Any, name: str) -> tuple[bool, Any]:
    """(True, value) for an allowed field of a class or value of these types, (False, None) otherwise."""
    if isinstance(target, type):
        if name in CLASS_FIELDS.get(target, ()):
            return True, getattr(target, name)
        return False, None
    if name in VALUE_FIELDS.get(type(target), ()):
        return True, getattr(target, name)
    return False, None


def check_method(target: Any, name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse what would cost more than the value (a long format, a width: ``%99999Y``) or read the host's
    time zone (``astimezone()`` without one, ``timestamp()`` of a date without one)."""
    if name == "strftime" and args:
        _format(args[0])
    if name == "astimezone" and not args and not kwargs.get("tz"):
        raise ExpressionError("astimezone() needs a time zone here, such as timezone.utc: the machine's own is "
                              "not offered")
    if name == "timestamp" and isinstance(target, datetime) and target.tzinfo is None:
        raise ExpressionError("timestamp() of a date without a time zone would read the machine's: give it one, "
                              "as in d.replace(tzinfo=timezone.utc).timestamp()")


def is_time(value: Any) -> bool:
    return isinstance(value, (date, timedelta, timezone))


def holds_time(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is, or holds, a date, duration or zone (which the data keeps as text)."""
    if is_time(value):
        return True
    if depth > 50:
        return False
    if isinstance(value, dict):
        return any(holds_time(item, depth + 1) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(holds_time(item, depth + 1) for item in value)
    return False


def iso_duration(value: timedelta) -> str:
    """``timedelta(days=2, hours=4)`` -> ``P2DT4H``; negative durations get a leading ``-``."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds, micro = value.days, value.seconds, value.microseconds
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs}.{micro:06d}".rstrip("0").rstrip(".") if micro else str(secs)
    clock_part = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    clock_part += f"{text}S" if (secs or micro) else ""
    out = sign + "P" + (f"{days}D" if days else "") + (f"T{clock_part}" if clock_part else "")
    return out if out.rstrip("-") != "P" else "PT0S"


def as_data(value: Any) -> Any:
    """``value`` with every date, time of day or duration in it turned into ISO 8601 text (JSON)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, timezone):
        return str(value)
    if isinstance(value, dict):
        return {key: as_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_data(item) for item in value]
    return value
