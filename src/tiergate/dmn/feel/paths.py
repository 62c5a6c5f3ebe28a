"""FEEL path steps (``a.b``): context entries, list mapping, and the documented properties of
dates, times, durations and ranges. Python attributes are never read."""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

from .fardate import FarDate, FarDateTime, NanoTime, nano_of
from .types import Range, YearsMonthsDuration

_DATE_PROPS = {"year": lambda d: d.year, "month": lambda d: d.month, "day": lambda d: d.day,
               "weekday": lambda d: d.isoweekday()}
_TIME_PROPS = {"hour": lambda t: t.hour, "minute": lambda t: t.minute,
               "second": lambda t: Decimal(t.second) + Decimal(t.microsecond * 1000 + nano_of(t)) / 1000000000}


def _offset(t):
    off = t.utcoffset()
    return off if off is not None else None


def _zone(t):
    tz = t.tzinfo
    key = getattr(tz, "key", None) if tz is not None and type(tz).__name__ == "ZoneInfo" else None
    return key


def get_path(value: Any, name: str) -> Any:
    """FEEL path step: a context entry, each list item's entry, or a temporal property."""
    cls = value.__class__
    if cls is dict:
        return value.get(name)
    if cls is list:
        return [get_path(item, name) for item in value]
    prop = None
    if cls is _dt.date or cls is _dt.datetime or cls is FarDate or cls is FarDateTime:
        prop = _DATE_PROPS.get(name)
    if prop is None and (cls is _dt.time or cls is _dt.datetime or cls is FarDateTime or cls is NanoTime):
        prop = _TIME_PROPS.get(name)
        if name == "time offset":
            return _offset(value)
        if name == "timezone":
            return _zone(value)
    if prop is not None:
        out = prop(value)
        return Decimal(out) if isinstance(out, int) else out
    if cls is _dt.timedelta:
        return _duration_prop(value, name)
    if cls is YearsMonthsDuration:
        if name == "years":
            return Decimal(value.years)
        if name == "months":
            return Decimal(value.months)
        return None
    if cls is Range:
        return {"start": value.start, "end": value.end, "start included": value.start_included,
                "end included": value.end_included}.get(name)
    return None


def _duration_prop(td: _dt.timedelta, name: str) -> Any:
    sign = -1 if td < _dt.timedelta(0) else 1
    td = abs(td)
    if name == "days":
        return Decimal(sign * td.days)
    if name == "hours":
        return Decimal(sign * (td.seconds // 3600))
    if name == "minutes":
        return Decimal(sign * (td.seconds // 60 % 60))
    if name == "seconds":
        return sign * (Decimal(td.seconds % 60) + Decimal(td.microseconds) / 1000000)
    return None
