"""FEEL built-ins: conversion, temporal, boolean and context functions."""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal

from . import fardate as far
from . import ops
from .registry import BUILTINS, MISSING, Null, feel, integer, num, seq, text
from .types import (FEELFunction, Range, YearsMonthsDuration, format_timedelta, parse_date,
                    parse_date_and_time, parse_duration, parse_time)

_UTC = _dt.timezone.utc


# ---------------------------------------------------------------------------------------------
# conversion

@feel("date", "from", alt=(("year", "month", "day"),))
def date(a, month=MISSING, day=MISSING):
    if month is not MISSING or day is not MISSING:
        try:
            return far.make_date(integer(a), integer(month), integer(day))
        except ValueError:
            raise Null from None
    cls = a.__class__
    if cls is str:
        value = parse_date(a)
        if value is None:
            raise Null
        return value
    if cls is _dt.datetime or cls is far.FarDateTime:
        return a.date()
    if cls is _dt.date or cls is far.FarDate:
        return a
    raise Null


@feel("date and time", "from", alt=(("date", "time"),))
def date_and_time(a, t=MISSING):
    if t is not MISSING:
        if a.__class__ not in far.ANY_DATE or t.__class__ not in (_dt.time, far.NanoTime):
            raise Null
        return far.combine(a, t)
    cls = a.__class__
    if cls is str:
        value = parse_date_and_time(a)
        if value is None:
            raise Null
        return value
    if cls is _dt.datetime or cls is far.FarDateTime:
        return a
    if cls is _dt.date or cls is far.FarDate:
        return far.midnight(a)
    raise Null


@feel("time", "from", alt=(("hour", "minute", "second", "offset"),), nulls=False)
def time(a, minute=MISSING, second=MISSING, offset=MISSING):
    if a is None or minute is None or second is None:  # a null offset is no offset
        raise Null
    if minute is not MISSING:
        sec = num(second)
        whole = int(sec)
        micro = int((sec - whole) * 1000000)
        tz = None
        if offset is not MISSING and offset is not None:
            if offset.__class__ is not _dt.timedelta:
                raise Null
            tz = _dt.timezone(offset)
        return _dt.time(integer(a), integer(minute), whole, micro, tzinfo=tz)
    cls = a.__class__
    if cls is str:
        value = parse_time(a)
        if value is None:
            raise Null
        return value
    if cls is _dt.datetime or cls is far.FarDateTime:
        return a.timetz()
    if cls is _dt.date or cls is far.FarDate:
        return _dt.time(0, 0, 0, tzinfo=_UTC)
    if cls is _dt.time or cls is far.NanoTime:
        return a
    raise Null


@feel("duration", "from")
def duration(s):
    value = parse_duration(text(s))
    if value is None:
        raise Null
    return value


@feel("years and months duration", "from", "to")
def years_and_months_duration(start, end):
    if start.__class__ not in far.ANY_DATE or end.__class__ not in far.ANY_DATE:
        raise Null
    months = (end.year - start.year) * 12 + (end.month - start.month)
    start_rest, end_rest = start.day, end.day  # whole months between the dates; times do not count
    if months > 0 and end_rest < start_rest:
        months -= 1
    elif months < 0 and end_rest > start_rest:
        months += 1
    return YearsMonthsDuration(months)


_NUMBER_RE = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@feel("number", "from", "grouping separator", "decimal separator", nulls=False)
def number(s, grouping=MISSING, decimal=MISSING):
    s = text(s)
    grouping = None if grouping is MISSING else grouping
    decimal = None if decimal is MISSING else decimal
    if grouping is not None:
        if grouping not in (" ", ",", ".", "'"):
            raise Null
        s = s.replace(grouping, "")
    if decimal is not None:
        if decimal not in (",", ".") or decimal == grouping:
            raise Null
        s = s.replace(decimal, ".")
    if not _NUMBER_RE.match(s):
        raise Null
    return Decimal(s)


def _number_text(d: Decimal) -> str:
    if d == d.to_integral_value():
        return format(d.quantize(Decimal(1)), "f")
    return format(d.normalize(), "f")


def _time_text(t) -> str:
    out = f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    nano = far.nano_of(t)
    if t.microsecond or nano:
        out += f".{t.microsecond * 1000 + nano:09d}".rstrip("0")
    key = getattr(t.tzinfo, "key", None) if type(t.tzinfo).__name__ == "ZoneInfo" else None
    if key:
        return out + "@" + key
    off = t.utcoffset() if t.tzinfo is not None else None
    if off is None:
        return out
    if off == _dt.timedelta(0):
        return out + "Z"
    sign = "-" if off < _dt.timedelta(0) else "+"
    secs = abs(int(off.total_seconds()))
    out += f"{sign}{secs // 3600:02d}:{secs // 60 % 60:02d}"
    return out + (f":{secs % 60:02d}" if secs % 60 else "")


def to_string(v) -> str | None:
    """FEEL ``string(v)``."""
    cls = v.__class__
    if v is None:
        return None
    if cls is str:
        return v
    if cls is bool:
        return "true" if v else "false"
    if cls is Decimal:
        return _number_text(v)
    if cls is _dt.date or cls is far.FarDate:
        return v.isoformat()
    if cls is _dt.datetime or cls is far.FarDateTime:
        return v.date().isoformat() + "T" + _time_text(v.timetz())
    if cls is _dt.time or cls is far.NanoTime:
        return _time_text(v)
    if cls is _dt.timedelta:
        return format_timedelta(v)
    if cls is YearsMonthsDuration:
        return str(v)
    if cls is list:
        return "[" + ", ".join(_nested_text(x) for x in v) + "]"
    if cls is dict:
        return "{" + ", ".join(f"{_key_text(k)}: {_nested_text(x)}" for k, x in v.items()) + "}"
    if cls is Range:
        return (("[" if v.start_included else "(") + _nested_text(v.start) + ".."
                + _nested_text(v.end) + ("]" if v.end_included else ")"))
    if cls is FEELFunction:
        return f"function {v.name}"
    return None


_PLAIN_KEY = re.compile(r"(?:[^\W\d]|[\U00010000-\U000EFFFF])(?:[\w' ]|[\U00010000-\U000EFFFF])*")


def _key_text(key: str) -> str:
    """A context key as FEEL writes it: a name as is, anything else as a string literal."""
    if _PLAIN_KEY.fullmatch(key) and not key.endswith(" "):
        return key
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nested_text(v) -> str:
    if v is None:
        return "null"
    if v.__class__ is str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return to_string(v) or "null"


@feel("string", "from")
def string(v):
    return to_string(v)


# ---------------------------------------------------------------------------------------------
# temporal

@feel("now")
def now():
    return _dt.datetime.now(_UTC)


@feel("today")
def today():
    return _dt.date.today()


def _date_arg(d) -> _dt.date:
    if d.__class__ not in far.ANY_DATE:
        raise Null
    return d


_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]


@feel("day of week", "date")
def day_of_week(d):
    return _DAYS[_date_arg(d).weekday()]


@feel("day of year", "date")
def day_of_year(d):
    return Decimal(_date_arg(d).timetuple().tm_yday)


@feel("month of year", "date")
def month_of_year(d):
    return _MONTHS[_date_arg(d).month - 1]


@feel("week of year", "date")
def week_of_year(d):
    return Decimal(_date_arg(d).isocalendar()[1])


# ---------------------------------------------------------------------------------------------
# boolean and misc

@feel("not", "negand", nulls=False)
def not_(v):
    if v.__class__ is not bool:
        raise Null
    return not v


@feel("is", "value1", "value2", nulls=False)
def is_(a, b):
    if a is None or b is None:
        return a is None and b is None
    if a.__class__ is not b.__class__:
        return False
    if a.__class__ in (_dt.time, _dt.datetime, far.FarDateTime, far.NanoTime) and a.tzinfo != b.tzinfo:
        return False
    return ops.eq(a, b) is True


BUILTINS["is"].omitted_is_null = True  # type: ignore[attr-defined]


@feel("get or else", "value", "default", nulls=False)
def get_or_else(value, default):
    return default if value is None else value


# ---------------------------------------------------------------------------------------------
# contexts

def _context(m) -> dict:
    if m.__class__ is not dict:
        raise Null
    return m


@feel("get value", "m", "key")
def get_value(m, key):
    if key.__class__ is list:
        value = m
        for k in key:
            value = _context(value).get(text(k))
        return value
    return _context(m).get(text(key))


@feel("get entries", "m")
def get_entries(m):
    return [{"key": k, "value": v} for k, v in _context(m).items()]


@feel("context put", "context", "key", "value", nulls=False, alt=(("context", "keys", "value"),))
def context_put(m, key, value):
    m = dict(_context(m))
    if key.__class__ is list:
        keys = [text(k) for k in key]
        if not keys:
            raise Null
        if len(keys) == 1:
            m[keys[0]] = value
        else:
            m[keys[0]] = context_put(m.get(keys[0]), keys[1:], value)
        return m
    m[text(key)] = value
    return m


# ``key:`` names one key; a path of keys is passed as ``keys:``
BUILTINS["context put"].check_named = lambda named: named.get("key").__class__ is not list  # type: ignore[attr-defined]


@feel("context merge", "contexts")
def context_merge(contexts):
    out: dict = {}
    for m in ([contexts] if contexts.__class__ is dict else seq(contexts)):
        out.update(_context(m))
    return out


@feel("context", "entries")
def context(entries):
    out: dict = {}
    for entry in ([entries] if entries.__class__ is dict else seq(entries)):
        entry = _context(entry)
        if "key" not in entry or "value" not in entry:
            raise Null
        key = text(entry["key"])
        if key in out:
            raise Null
        out[key] = entry["value"]
    return out
