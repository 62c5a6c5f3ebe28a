"""FEEL operator semantics: arithmetic, equality, ordering, ranges.

Every operator returns ``None`` (FEEL null) for operands outside its domain instead of raising,
as the FEEL specification requires (``"a" + 1`` is null, ``1 / 0`` is null).
"""

from __future__ import annotations

import calendar
import datetime as _dt
from decimal import ROUND_DOWN, Decimal, DecimalException
from typing import Any

from . import fardate as far
from .limits import FEEL_LIMITS, over
from .types import DECIMAL_CONTEXT as _C
from .types import FEELFunction, Range, YearsMonthsDuration

_DATE, _DATETIME, _TIME, _TD = _dt.date, _dt.datetime, _dt.time, _dt.timedelta
_YM = YearsMonthsDuration
_ZERO_TD = _dt.timedelta(0)
_FAR = far.FAR
_FAR_DATE, _FAR_DATETIME, _NANO_TIME = far.FarDate, far.FarDateTime, far.NanoTime
_TIMES = (_TIME, _NANO_TIME)


def add_months(value: Any, months: int) -> Any:
    total = value.year * 12 + (value.month - 1) + months
    year, month = divmod(total, 12)
    if value.__class__ in _FAR or not 1 <= year <= 9999:
        return far.add_months(value, months)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def _as_datetime(d: _dt.date) -> _dt.datetime:
    return d if d.__class__ is _DATETIME else _DATETIME(d.year, d.month, d.day, tzinfo=_dt.timezone.utc)


def _time_delta_seconds(t: _dt.time) -> _dt.timedelta:
    return _dt.timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def add(a: Any, b: Any) -> Any:
    ca, cb = a.__class__, b.__class__
    try:
        if ca is Decimal and cb is Decimal:
            return _C.add(a, b)
        if ca is str and cb is str:
            if len(a) + len(b) > FEEL_LIMITS.string_chars:
                raise over("string_chars", FEEL_LIMITS.string_chars, "a string concatenation too long")
            return a + b
        if ca is _TD and cb is _TD:
            return a + b
        if ca is _YM and cb is _YM:
            return _YM(a.months_total + b.months_total)
        if cb in (_DATE, _DATETIME, _TIME, _FAR_DATE, _FAR_DATETIME, _NANO_TIME) and ca in (_TD, _YM):
            a, b, ca, cb = b, a, cb, ca
        if ca is _DATETIME and cb is _TD:
            try:
                return a + b
            except OverflowError:  # past year 9999 or before year 1
                return far.add_delta(a, b)
        if ca is _DATE and cb is _TD:  # date + days-time duration: a date (time part dropped)
            try:
                return (_DATETIME(a.year, a.month, a.day) + b).date()
            except OverflowError:
                return far.add_delta(a, b)
        if ca in (_DATE, _DATETIME, _FAR_DATE, _FAR_DATETIME) and cb is _YM:
            return add_months(a, b.months_total)
        if ca in _FAR and cb is _TD:
            return far.add_delta(a, b)
        if ca is _NANO_TIME and cb is _TD:
            moved = add(a.base, b)
            return None if moved is None else _NANO_TIME(moved, a.nano)
        if ca is _TIME and cb is _TD:
            base = _DATETIME(2000, 1, 1, a.hour, a.minute, a.second, a.microsecond)
            return (base + b).time().replace(tzinfo=a.tzinfo)
    except (DecimalException, OverflowError, ValueError):
        return None
    return None


def neg(a: Any) -> Any:
    ca = a.__class__
    if ca is Decimal:
        return _C.minus(a)
    if ca is _TD:
        return -a
    if ca is _YM:
        return _YM(-a.months_total)
    return None


def sub(a: Any, b: Any) -> Any:
    ca, cb = a.__class__, b.__class__
    try:
        if ca is Decimal and cb is Decimal:
            return _C.subtract(a, b)
        if ca is _TD and cb is _TD:
            return a - b
        if ca is _YM and cb is _YM:
            return _YM(a.months_total - b.months_total)
        if ca in (_DATE, _DATETIME, _TIME, _FAR_DATE, _FAR_DATETIME, _NANO_TIME) and cb in (_TD, _YM):
            return add(a, neg(b))
        if (ca is _NANO_TIME and cb in _TIMES) or (cb is _NANO_TIME and ca in _TIMES):
            d = sub(a.base if ca is _NANO_TIME else a, b.base if cb is _NANO_TIME else b)
            nanos = far.nano_of(a) - far.nano_of(b)  # to the microsecond below
            return None if d is None else d + _dt.timedelta(microseconds=nanos // 1000)
        if (ca in _FAR and cb in far.ANY_DATE) or (cb in _FAR and ca in far.ANY_DATE):
            return far.subtract(a, b)
        if ca in (_DATE, _DATETIME) and cb in (_DATE, _DATETIME):  # a date is its midnight UTC
            x, y = _as_datetime(a), _as_datetime(b)
            if (x.tzinfo is None) != (y.tzinfo is None):
                return None  # a local and a zoned date and time: no defined difference
            return x - y
        if ca is _TIME and cb is _TIME:
            if (a.tzinfo is None) != (b.tzinfo is None):
                return None
            base = _DATE(2000, 1, 1)
            return _DATETIME.combine(base, a) - _DATETIME.combine(base, b)
    except (DecimalException, OverflowError, ValueError, TypeError):
        return None
    return None


def mul(a: Any, b: Any) -> Any:
    ca, cb = a.__class__, b.__class__
    try:
        if ca is Decimal and cb is Decimal:
            return _C.multiply(a, b)
        if ca is Decimal and cb in (_TD, _YM):
            a, b, ca, cb = b, a, cb, ca
        if ca is _TD and cb is Decimal:
            return _micro_td(_C.multiply(_td_micros(a), b))
        if ca is _YM and cb is Decimal:
            return _YM(int(_C.multiply(Decimal(a.months_total), b).to_integral_value(ROUND_DOWN)))
    except (DecimalException, OverflowError, ValueError):
        return None
    return None


def div(a: Any, b: Any) -> Any:
    ca, cb = a.__class__, b.__class__
    try:
        if ca is Decimal and cb is Decimal:
            return None if not b else _C.divide(a, b)
        if ca is _TD and cb is Decimal:
            return None if not b else _micro_td(_C.divide(_td_micros(a), b))
        if ca is _YM and cb is Decimal:
            return None if not b else _YM(int(_C.divide(Decimal(a.months_total), b).to_integral_value(ROUND_DOWN)))
        if ca is _TD and cb is _TD:
            return None if not b else _C.divide(_td_micros(a), _td_micros(b))
        if ca is _YM and cb is _YM:
            return None if not b.months_total else _C.divide(Decimal(a.months_total), Decimal(b.months_total))
    except (DecimalException, OverflowError, ValueError):
        return None
    return None


def power(a: Any, b: Any) -> Any:
    if a.__class__ is Decimal and b.__class__ is Decimal:
        try:
            if b == b.to_integral_value() and abs(b) <= 999999999:
                return _C.power(a, int(b))
            return _C.power(a, b)
        except (DecimalException, OverflowError, ValueError):
            return None
    return None


def _td_micros(td: _dt.timedelta) -> Decimal:
    return Decimal((td.days * 86400 + td.seconds) * 1000000 + td.microseconds)


def _micro_td(micros: Decimal) -> _dt.timedelta:
    return _dt.timedelta(microseconds=int(micros.to_integral_value()))


# ---------------------------------------------------------------------------------------------
# equality and ordering

_SCALARS = {bool, Decimal, str, _DATE, _TD, _YM}


def eq(a: Any, b: Any) -> bool | None:
    """FEEL ``=``: true/false for values of one kind, null for different kinds."""
    if a is None or b is None:
        return a is None and b is None
    ca, cb = a.__class__, b.__class__
    if ca is not cb:
        if (ca in _FAR and cb in far.ANY_DATE) or (cb in _FAR and ca in far.ANY_DATE):
            return far.equal(a, b)
        if ca in _TIMES and cb in _TIMES:
            return far.time_equal(a, b)
        return None
    if ca in _SCALARS:
        try:
            return a == b
        except TypeError:
            return None
    if ca in _FAR:
        return far.equal(a, b)
    if ca is _NANO_TIME:
        return far.time_equal(a, b)
    if ca is _DATETIME:
        if a.microsecond or b.microsecond:  # equality resolves to the second (DMN TCK 0068)
            a, b = a.replace(microsecond=0), b.replace(microsecond=0)
        return a == b
    if ca is _TIME:
        if (a.tzinfo is None) != (b.tzinfo is None):
            return False
        if a.microsecond or b.microsecond:
            a, b = a.replace(microsecond=0), b.replace(microsecond=0)
        return a == b
    if ca is list:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            r = eq(x, y)
            if r is not True:
                return r
        return True
    if ca is dict:
        if a.keys() != b.keys():
            return False
        for key, x in a.items():
            r = eq(x, b[key])
            if r is not True:
                return r
        return True
    if ca is Range:
        return (a.start_included == b.start_included and a.end_included == b.end_included
                and a.test == b.test
                and eq(a.start, b.start) is True and eq(a.end, b.end) is True)
    if ca is FEELFunction:
        return a is b
    return None


_ORDERED = {Decimal, str, _DATE, _DATETIME, _TIME, _TD, _YM}


def compare(a: Any, b: Any) -> int | None:
    """-1/0/1 when ``a`` and ``b`` are ordered FEEL values of one kind, else None."""
    ca = a.__class__
    if ca is not b.__class__ or ca not in _ORDERED:
        cb = b.__class__
        if (ca in _FAR and cb in far.ANY_DATE) or (cb in _FAR and ca in far.ANY_DATE):
            return far.compare(a, b)
        if ca in _TIMES and cb in _TIMES:
            return far.time_compare(a, b)
        return None
    try:
        if ca is _DATETIME and (a.tzinfo is None) != (b.tzinfo is None):
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
        if ca is _TIME:
            if (a.tzinfo is None) != (b.tzinfo is None):
                return None
            if a.tzinfo is not None:
                base = _DATE(2000, 1, 1)
                a, b = _DATETIME.combine(base, a), _DATETIME.combine(base, b)
        return -1 if a < b else (1 if a > b else 0)
    except TypeError:
        return None


def lt(a: Any, b: Any) -> bool | None:
    c = compare(a, b)
    return None if c is None else c < 0


def le(a: Any, b: Any) -> bool | None:
    c = compare(a, b)
    return None if c is None else c <= 0


def gt(a: Any, b: Any) -> bool | None:
    c = compare(a, b)
    return None if c is None else c > 0


def ge(a: Any, b: Any) -> bool | None:
    c = compare(a, b)
    return None if c is None else c >= 0


def ne(a: Any, b: Any) -> bool | None:
    r = eq(a, b)
    return None if r is None else not r


COMPARATORS = {"=": eq, "!=": ne, "<": lt, "<=": le, ">": gt, ">=": ge}


def in_range(value: Any, r: Range) -> bool | None:
    """Whether ``value`` lies in ``r``; null when it cannot be compared with an end."""
    if r.start is not None:
        c = compare(value, r.start)
        if c is None:
            return None
        if c < 0 or (c == 0 and not r.start_included):
            return False
    if r.end is not None:
        c = compare(value, r.end)
        if c is None:
            return None
        if c > 0 or (c == 0 and not r.end_included):
            return False
    return True


def truth_and(a: Any, b: Any) -> bool | None:
    if a is False or b is False:
        return False
    if a is True and b is True:
        return True
    return None


def truth_or(a: Any, b: Any) -> bool | None:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return None
