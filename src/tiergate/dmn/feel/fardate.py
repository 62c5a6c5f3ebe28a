"""FEEL dates, times and dates and times that Python's ``datetime`` cannot hold: years outside
1..9999, and nanoseconds.

FEEL allows years from -999,999,999 to 999,999,999 (``@"-2021-01-01"``, ``date(99999, 12, 31)``).
Such a value is a :class:`FarDate` or :class:`FarDateTime`: a Python ``date``/``datetime`` whose
year lies in 2000..2399 (``base``), plus a count of 400-year ``cycles``. The Gregorian calendar
repeats every 400 years (146,097 days, a whole number of weeks), so leap days, weekdays, day of
year and ISO weeks of the base are those of the real date; arithmetic works on the base and moves
whole cycles. Values inside 1..9999 are always plain ``date``/``datetime`` (the common path keeps
its speed); a result that crosses the boundary changes class.

A time or a date and time with digits past the microsecond (``10:15:30.123456789``) keeps the
extra nanoseconds (0..999) in ``nano``: a :class:`NanoTime`, or a :class:`FarDateTime` whatever its
year. Durations stay microsecond ``timedelta`` values, so a difference drops the nanoseconds.

A zone id (``@Australia/Melbourne``) on a far date and time keeps its name; its offset is the
zone's rule in the base year, as no time zone database knows the rules of year -2021.
"""

from __future__ import annotations

import calendar
import datetime as _dt
from dataclasses import dataclass
from typing import Any

CYCLE_YEARS = 400
CYCLE_DAYS = 146097
MAX_YEAR = 999_999_999
_BASE_YEAR = 2000
_DATE, _DATETIME = _dt.date, _dt.datetime


def year_text(year: int) -> str:
    """ISO 8601 year: at least four digits, a minus sign before a year before 1 (0 is 1 BCE)."""
    return ("-" if year < 0 else "") + f"{abs(year):04d}"


@dataclass(frozen=True)
class FarDate:
    """A FEEL date whose year is outside 1..9999 (see the module docstring)."""

    cycles: int
    base: _dt.date

    @property
    def year(self) -> int:
        return self.base.year + CYCLE_YEARS * self.cycles

    @property
    def month(self) -> int:
        return self.base.month

    @property
    def day(self) -> int:
        return self.base.day

    def weekday(self) -> int:
        return self.base.weekday()

    def isoweekday(self) -> int:
        return self.base.isoweekday()

    def timetuple(self):
        return self.base.timetuple()

    def isocalendar(self):
        return self.base.isocalendar()

    def isoformat(self) -> str:
        return f"{year_text(self.year)}-{self.month:02d}-{self.day:02d}"

    __str__ = isoformat


@dataclass(frozen=True)
class FarDateTime:
    """A FEEL date and time whose year is outside 1..9999 (see the module docstring)."""

    cycles: int
    base: _dt.datetime
    nano: int = 0  # nanoseconds past base.microsecond, 0..999

    year = FarDate.year
    month = FarDate.month
    day = FarDate.day
    weekday = FarDate.weekday
    isoweekday = FarDate.isoweekday
    timetuple = FarDate.timetuple
    isocalendar = FarDate.isocalendar

    @property
    def hour(self) -> int:
        return self.base.hour

    @property
    def minute(self) -> int:
        return self.base.minute

    @property
    def second(self) -> int:
        return self.base.second

    @property
    def microsecond(self) -> int:
        return self.base.microsecond

    @property
    def tzinfo(self) -> _dt.tzinfo | None:
        return self.base.tzinfo

    def utcoffset(self) -> _dt.timedelta | None:
        return self.base.utcoffset()

    def date(self) -> Any:
        return join(self.cycles, self.base.date())

    def timetz(self) -> Any:
        t = self.base.timetz()
        return NanoTime(t, self.nano) if self.nano else t

    def isoformat(self) -> str:
        """ISO 8601 with the offset the base has (a zone's rule in the base year)."""
        text = self.base.replace(microsecond=0).isoformat()  # base years have four digits
        frac = self.base.microsecond * 1000 + self.nano
        return (year_text(self.year) + text[4:19] + (f".{frac:09d}".rstrip("0") if frac else "")
                + text[19:])

    __str__ = isoformat


@dataclass(frozen=True)
class NanoTime:
    """A FEEL time with nanoseconds: ``base`` to the microsecond, ``nano`` the 0..999 beyond."""

    base: _dt.time
    nano: int

    hour = FarDateTime.hour
    minute = FarDateTime.minute
    second = FarDateTime.second
    microsecond = FarDateTime.microsecond
    tzinfo = FarDateTime.tzinfo
    utcoffset = FarDateTime.utcoffset

    def isoformat(self) -> str:
        text = self.base.replace(microsecond=0).isoformat()  # HH:MM:SS and the offset, if any
        return text[:8] + f".{self.base.microsecond * 1000 + self.nano:09d}".rstrip("0") + text[8:]

    __str__ = isoformat


def nano_of(value: Any) -> int:
    """The nanoseconds past the microsecond of a time or date and time (0 for plain ones)."""
    cls = value.__class__
    return value.nano if cls is FarDateTime or cls is NanoTime else 0


FAR = (FarDate, FarDateTime)
DATES = (_DATE, FarDate)
DATETIMES = (_DATETIME, FarDateTime)
ANY_DATE = (_DATE, _DATETIME, FarDate, FarDateTime)


def _split_year(year: int) -> tuple[int, int]:
    """(cycles, base year in 2000..2399) of a real year."""
    cycles = (year - _BASE_YEAR) // CYCLE_YEARS
    return cycles, year - CYCLE_YEARS * cycles


def join(cycles: int, base: Any, nano: int = 0) -> Any:
    """The value ``base`` moved by ``cycles`` 400-year cycles (and ``nano`` nanoseconds past its
    microsecond): plain when Python can hold it."""
    year = base.year + CYCLE_YEARS * cycles
    if 1 <= year <= 9999 and not nano:
        return base.replace(year=year) if cycles else base
    if abs(year) > MAX_YEAR:
        raise OverflowError(f"year {year} is outside FEEL's -999999999..999999999")
    k, base_year = _split_year(year)
    if base.__class__ is _DATETIME:
        return FarDateTime(k, base.replace(year=base_year), nano)
    return FarDate(k, base.replace(year=base_year))


def split(value: Any) -> tuple[int, Any]:
    """(cycles, base) of a date or date and time, the base's year in 2000..2399."""
    if value.__class__ in FAR:
        return value.cycles, value.base
    k, base_year = _split_year(value.year)
    return k, value.replace(year=base_year)


def make_date(year: int, month: int, day: int) -> Any:
    """A FEEL date; ValueError for a day that does not exist or a year beyond FEEL's range."""
    if 1 <= year <= 9999:
        return _DATE(year, month, day)
    if abs(year) > MAX_YEAR:
        raise ValueError(f"year {year} is outside FEEL's -999999999..999999999")
    k, base_year = _split_year(year)
    return FarDate(k, _DATE(base_year, month, day))


def combine(d: Any, t: Any) -> Any:
    """The date and time of date ``d`` (plain or far) at time ``t`` (its zone kept)."""
    nano = 0
    if t.__class__ is NanoTime:
        t, nano = t.base, t.nano
    if d.__class__ is FarDate or d.__class__ is FarDateTime or nano:
        cycles, base = split(d)
        day = base if base.__class__ is _DATE else base.date()
        return join(cycles, _DATETIME.combine(day, t, tzinfo=t.tzinfo), nano)
    return _DATETIME.combine(_DATE(d.year, d.month, d.day), t, tzinfo=t.tzinfo)


def midnight(d: Any) -> Any:
    """The local date and time at the start of date ``d``."""
    return combine(d, _dt.time(0, 0))


def to_date(v: Any) -> Any:
    """The date part of a date and time (plain or far)."""
    return v.date()


def add_delta(value: Any, delta: _dt.timedelta) -> Any:
    """A date or date and time (either kind) plus a days-and-time duration. A date gains the
    duration from its midnight and stays a date."""
    cycles, base = split(value)
    is_date = base.__class__ is _DATE
    if is_date:
        base = _DATETIME(base.year, base.month, base.day)
    q, r = divmod(delta.days, CYCLE_DAYS)
    moved = base + _dt.timedelta(days=r, seconds=delta.seconds, microseconds=delta.microseconds)
    out = join(cycles + q, moved, nano_of(value))
    return out.date() if is_date else out


def add_months(value: Any, months: int) -> Any:
    """A date or date and time plus whole months, the day clamped to the month's last."""
    total = value.year * 12 + (value.month - 1) + months
    year, month0 = divmod(total, 12)
    if abs(year) > MAX_YEAR:
        return None
    cycles, base_year = _split_year(year)
    day = min(value.day, calendar.monthrange(base_year, month0 + 1)[1])
    base = value.base if value.__class__ in FAR else value
    return join(cycles, base.replace(year=base_year, month=month0 + 1, day=day), nano_of(value))


def _micros(value: Any, zoned: bool) -> int:
    """Microseconds since 0001-01-01T00:00 (negative before); with ``zoned``, at UTC."""
    cycles, base = split(value)
    days = base.toordinal() + CYCLE_DAYS * cycles
    if base.__class__ is _DATE:
        return days * 86_400_000_000
    out = ((days * 86400 + base.hour * 3600 + base.minute * 60 + base.second) * 1_000_000
           + base.microsecond)
    if zoned and base.tzinfo is not None:
        off = base.utcoffset()
        out -= (off.days * 86400 + off.seconds) * 1_000_000 + off.microseconds
    return out


def _zoned(value: Any) -> bool:
    """A date counts as midnight UTC; a date and time is zoned when it has a zone or offset."""
    return value.__class__ in DATES or value.tzinfo is not None


def subtract(a: Any, b: Any) -> _dt.timedelta | None:
    """``a - b`` for dates and dates and times when either is far; None between local and zoned."""
    if _zoned(a) != _zoned(b):
        return None
    nanos = nano_of(a) - nano_of(b)  # the difference to the microsecond below
    return _dt.timedelta(microseconds=_micros(a, True) - _micros(b, True) + nanos // 1000)


def compare(a: Any, b: Any) -> int | None:
    """-1/0/1 between two dates or two dates and times, either far; None across kinds."""
    if (a.__class__ in DATES) != (b.__class__ in DATES):
        return None
    zoned = _zoned(a) and _zoned(b)
    x, y = (_micros(a, zoned), nano_of(a)), (_micros(b, zoned), nano_of(b))
    return -1 if x < y else (1 if x > y else 0)


def equal(a: Any, b: Any) -> bool | None:
    """``a = b``, to the second as for plain values (DMN TCK 0068)."""
    if (a.__class__ in DATES) != (b.__class__ in DATES):
        return None
    if _zoned(a) != _zoned(b):
        return False
    return _micros(a, True) // 1_000_000 == _micros(b, True) // 1_000_000


def time_compare(a: Any, b: Any) -> int | None:
    """-1/0/1 between two times, either with nanoseconds; None between local and zoned."""
    if (a.tzinfo is None) != (b.tzinfo is None):
        return None
    x, y = _time_micros(a), _time_micros(b)
    return -1 if x < y else (1 if x > y else 0)


def time_equal(a: Any, b: Any) -> bool:
    if (a.tzinfo is None) != (b.tzinfo is None):
        return False
    return _time_micros(a)[0] // 1_000_000 == _time_micros(b)[0] // 1_000_000


def _time_micros(t: Any) -> tuple[int, int]:
    out = ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond
    off = t.utcoffset() if t.tzinfo is not None else None
    if off is not None:
        out -= (off.days * 86400 + off.seconds) * 1_000_000 + off.microseconds
    return out, nano_of(t)
