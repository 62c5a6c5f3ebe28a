"""JSON helpers shared by the log, the store and the definition snapshots.

FEEL values a decision can answer get these JSON forms: numbers as numbers, dates, times and
date-times as ISO 8601 text, days-and-time durations as seconds, years-and-months durations as
ISO 8601 text (``P1Y2M``), ranges as ``{"start", "end", "start_included", "end_included"}``
(an unbounded end is null). A function has none: :class:`NoJSONForm` (a TypeError) names it.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import json
from typing import Any


class NoJSONForm(TypeError):
    """A value with no JSON form (a FEEL function); ``what`` says what it is, for messages."""

    def __init__(self, what: str):
        super().__init__(f"{what} has no JSON form")
        self.what = what


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 10**18 else float(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if type(value).__name__ in ("FarDate", "FarDateTime", "NanoTime"):  # FEEL dates past Python's
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    name = type(value).__name__
    if name == "YearsMonthsDuration":  # tiergate.dmn.feel.types, named here so the log needs no DMN import
        return str(value)
    if name == "Range":
        return {"start": value.start, "end": value.end, "start_included": value.start_included,
                "end_included": value.end_included}
    if name == "FEELFunction" or callable(value):
        raise NoJSONForm(repr(value).strip("<>") if name == "FEELFunction" else f"the function {name}")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# Built once: json.dumps with non-default options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default,
                              allow_nan=False)
_decode = json.JSONDecoder().decode


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8. Hashes are taken over this."""
    return _CANONICAL.encode(value)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types only (Decimal, dates and durations converted)."""
    return _decode(canonical_json(value))


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
