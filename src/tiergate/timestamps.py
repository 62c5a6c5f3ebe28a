"""Times as tiergate stores and shows them: aware UTC datetimes, ``2026-12-03T16:22:44.158141Z`` text.

Standard library only: the database layer (``store``, ``log``) and the light read path
(``store.direct``) share these spellings.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any


def utc(value: datetime) -> datetime:
    """Stored times come back naive from SQLite and in the session zone from PostgreSQL."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# A step formats the same moment several times (its state, each log entry, the answer).
@lru_cache(maxsize=64)
def format_time(value: datetime) -> str:
    """``2026-12-03T16:22:44.158141Z``. Hashed into the log: the spelling must never change."""
    value = utc(value)
    if value.year < 1000:  # strftime does not pad the year to 4 digits; isoformat does
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), in a fraction of its time.
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def read_time(value: Any) -> datetime:
    """A stored DateTime(timezone=True) as an aware UTC datetime (SQLite returns SQLAlchemy's text form)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return utc(value)
