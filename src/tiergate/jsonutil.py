"""JSON helpers shared by the log, the store and the definition snapshots."""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import json
from typing import Any


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
