"""FEEL values as plain Python objects, temporal literal parsing and type checks.

Mapping of FEEL kinds to Python (what ``result.value`` contains):

=========================  ================================================
FEEL                       Python
=========================  ================================================
null                       ``None``
boolean                    ``bool``
number                     ``decimal.Decimal`` (34 digits, half-even)
string                     ``str``
date                       ``datetime.date`` (:class:`FarDate` for a year outside 1..9999)
time                       ``datetime.time`` (``tzinfo`` set when the literal has one)
date and time              ``datetime.datetime`` (:class:`FarDateTime` outside 1..9999)
days and time duration     ``datetime.timedelta``
years and months duration  :class:`YearsMonthsDuration` (whole months)
list                       ``list``
context                    ``dict`` with ``str`` keys, in entry order
range                      :class:`Range`
function                   :class:`FEELFunction`
=========================  ================================================
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation, ROUND_HALF_EVEN, localcontext
from typing import Any, Callable, Sequence

from .fardate import FarDate, FarDateTime, NanoTime, add_delta, combine, make_date, midnight

#: The one decimal context of FEEL arithmetic: IEEE 754 decimal128 (34 digits, half-even).
DECIMAL_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN, Emax=6144, Emin=-6143)

_UTC = _dt.timezone.utc


@dataclass(frozen=True, order=True)
class YearsMonthsDuration:
    """A FEEL *years and months duration*, kept as a signed count of months."""

    months_total: int

    @property
    def years(self) -> int:
        return _trunc_div(self.months_total, 12)

    @property
    def months(self) -> int:
        return self.months_total - 12 * self.years

    def __str__(self) -> str:
        total = abs(self.months_total)
        sign = "-" if self.months_total < 0 else ""
        years, months = divmod(total, 12)
        if not total:
            return "P0M"
        return sign + "P" + (f"{years}Y" if years else "") + (f"{months}M" if months else "")


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


@dataclass(frozen=True)
class Range:
    """A FEEL range such as ``[1..10)``; ``None`` as an end means unbounded (``< 10``)."""

    start: Any
    end: Any
    start_included: bool
    end_included: bool
    #: "=" for the range of the test ``(= 10)``: its ends are 10 and 10, closed, yet it is not
    #: the range ``[10..10]`` (DMN TCK 0068 range_010, 0074 range_011)
    test: str = ""


@dataclass(eq=False)
class FEELFunction:
    """A callable FEEL value: a built-in, a ``function(..)`` literal or a business knowledge model.

    ``impl`` takes the positional argument list (already matched to ``params``) and returns a
    FEEL value. ``varargs`` means the last parameter collects the remaining positional arguments.
    """

    name: str
    params: Sequence[str]
    impl: Callable[[list], Any]
    varargs: bool = False
    min_args: int | None = None
    max_args: int | None = None

    def __repr__(self) -> str:
        return f"<FEEL function {self.name}({', '.join(self.params)})>"


# ---------------------------------------------------------------------------------------------
# temporal literals

_DATE_RE = re.compile(r"(-?(?:[1-9]\d{4,8}|\d{4}))-(\d\d)-(\d\d)$")  # no leading 0 past 4 digits
_TIME_RE = re.compile(
    r"(\d\d):(\d\d):(\d\d)(\.\d+)?(?:(Z|z)|([+-])(\d\d):(\d\d)(?::(\d\d))?|@([A-Za-z_][\w/+\-]*))?$"
)
_DURATION_RE = re.compile(
    r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?)S)?)?$"
)


def parse_date(text: str) -> Any:
    """A date (a :class:`FarDate` for a year outside 1..9999), or None."""
    m = _DATE_RE.match(text)
    if not m:
        return None
    try:
        return make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _tz(m: re.Match, base: int) -> _dt.tzinfo | None | bool:
    """Time zone of a time match; ``False`` when the zone is invalid."""
    if m.group(base):
        return _UTC
    if m.group(base + 1):
        sign = 1 if m.group(base + 1) == "+" else -1
        hours, minutes = int(m.group(base + 2)), int(m.group(base + 3))
        seconds = int(m.group(base + 4) or 0)
        if hours > 14 or minutes > 59:
            return False
        return _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes, seconds=seconds))
    if m.group(base + 5):
        try:
            from zoneinfo import ZoneInfo

            return ZoneInfo(m.group(base + 5))
        except Exception:  # unknown zone id, or no tz database
            return False
    return None


def parse_time(text: str) -> _dt.time | None:
    m = _TIME_RE.match(text)
    if not m:
        return None
    tz = _tz(m, 5)
    if tz is False:
        return None
    try:
        frac = m.group(4)
        micro = int((frac[1:] + "000000")[:6]) if frac else 0
        nano = int((frac[7:] + "000")[:3]) if frac and len(frac) > 7 else 0
        hour = int(m.group(1))
        if hour == 24 and m.group(2) == "00" and m.group(3) == "00" and not micro and not nano:
            hour = 0
        t = _dt.time(hour, int(m.group(2)), int(m.group(3)), micro, tzinfo=tz)
        return NanoTime(t, nano) if nano else t
    except ValueError:
        return None


def parse_date_and_time(text: str) -> Any:
    """``date and time`` string to datetime (a :class:`FarDateTime` for a year outside 1..9999);
    a plain date string gives midnight."""
    if "T" not in text:
        d = parse_date(text)
        return None if d is None else midnight(d)
    date_part, _, time_part = text.partition("T")
    d, t = parse_date(date_part), parse_time(time_part)
    if d is None or t is None:
        return None
    value = combine(d, t)
    if time_part.startswith("24"):  # 24:00:00 is the end of the day: midnight of the next one
        try:
            value = add_delta(value, _dt.timedelta(days=1))
        except OverflowError:
            return None
    return value


def parse_duration(text: str) -> _dt.timedelta | YearsMonthsDuration | None:
    m = _DURATION_RE.match(text)
    if not m or text.endswith(("P", "T")):
        return None
    neg, years, months, days, hours, minutes, seconds = m.groups()
    ym = years is not None or months is not None
    dt = days is not None or hours is not None or minutes is not None or seconds is not None
    sign = -1 if neg else 1
    if ym and dt:
        return None  # FEEL has no mixed durations
    if ym:
        return YearsMonthsDuration(sign * (int(years or 0) * 12 + int(months or 0)))
    if not dt:
        return None
    try:
        secs = Decimal(seconds or 0)
        delta = _dt.timedelta(
            days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
            seconds=int(secs), microseconds=int((secs % 1) * 1000000),
        )
    except OverflowError:
        return None
    return -delta if neg else delta


def format_timedelta(delta: _dt.timedelta) -> str:
    """ISO 8601 text of a days-time duration, e.g. ``P1DT2H`` or ``-PT0.5S``."""
    sign = "-" if delta < _dt.timedelta(0) else ""
    delta = abs(delta)
    days, rest = delta.days, delta.seconds
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    secs = str(seconds) if not delta.microseconds else f"{seconds}.{delta.microseconds:06d}".rstrip("0")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    clock += f"{secs}S" if (seconds or delta.microseconds) else ""
    if clock:
        out += "T" + clock
    return sign + (out if out != "P" else "PT0S")


# ---------------------------------------------------------------------------------------------
# kinds and conversions

def is_number(v: Any) -> bool:
    return v.__class__ is Decimal


def kind(v: Any) -> str:
    """FEEL kind name of a value (``"Null"`` for null)."""
    if v is None:
        return "Null"
    cls = v.__class__
    if cls is bool:
        return "boolean"
    if cls is Decimal:
        return "number"
    if cls is str:
        return "string"
    if cls is _dt.datetime:
        return "date and time"
    if cls is _dt.date or cls is FarDate:
        return "date"
    if cls is FarDateTime:
        return "date and time"
    if cls is _dt.time or cls is NanoTime:
        return "time"
    if cls is _dt.timedelta:
        return "days and time duration"
    if cls is YearsMonthsDuration:
        return "years and months duration"
    if cls is list:
        return "list"
    if cls is dict:
        return "context"
    if cls is Range:
        return "range"
    if cls is FEELFunction:
        return "function"
    return "unknown"


#: typeRef spellings of the FEEL built-in types, normalised.
BUILTIN_TYPES = {
    "number": "number", "string": "string", "boolean": "boolean", "date": "date", "time": "time",
    "date and time": "date and time", "datetime": "date and time",
    "days and time duration": "days and time duration", "daytimeduration": "days and time duration",
    "years and months duration": "years and months duration",
    "yearmonthduration": "years and months duration",
    "duration": "duration", "list": "list", "context": "context", "range": "range",
    "function": "function", "any": "Any", "null": "Null",
    "integer": "number", "decimal": "number", "double": "number", "long": "number", "int": "number",
}


def builtin_type(name: str) -> str | None:
    """The FEEL type a typeRef names (prefixes such as ``feel:`` dropped), or None."""
    local = name.split(":", 1)[1] if ":" in name and not name.startswith("date and") else name
    return BUILTIN_TYPES.get(" ".join(local.split()).lower())


def conforms_builtin(value: Any, type_name: str) -> bool:
    if value is None or type_name == "Any":
        return True
    k = kind(value)
    if type_name == "duration":
        return k in ("days and time duration", "years and months duration")
    return k == type_name


def to_feel(value: Any) -> Any:
    """A host value as a FEEL value; raises TypeError naming what cannot be represented."""
    if value is None or value.__class__ in (bool, str, Decimal):
        if value.__class__ is Decimal and not value.is_finite():
            raise TypeError(f"the number {value} is not finite")
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return Decimal(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"the number {value} is not finite")
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return Decimal(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, _dt.datetime):
        return _dt.datetime.combine(value.date(), value.timetz())
    if isinstance(value, _dt.date):
        return _dt.date(value.year, value.month, value.day)
    if isinstance(value, (_dt.time, _dt.timedelta, YearsMonthsDuration, Range, FEELFunction, FarDate,
                          FarDateTime, NanoTime)):
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"context keys must be strings, got {type(key).__name__}")
            out[key] = to_feel(item)
        return out
    if isinstance(value, (list, tuple)):
        return [to_feel(item) for item in value]
    raise TypeError(f"a Python {type(value).__name__} has no FEEL equivalent")


def to_number(text: str) -> Decimal | None:
    try:
        d = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def normalise(d: Decimal) -> Decimal:
    """Round a computed number to 34 significant digits."""
    with localcontext(DECIMAL_CONTEXT):
        return +d
