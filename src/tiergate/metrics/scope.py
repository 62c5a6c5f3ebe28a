"""Which runs a metrics answer covers: a process, a tier, runs started since a time, as of now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from tiergate.errors import UsageError


@dataclass(frozen=True)
class Scope:
    """The runs measured: every run with a ``started`` entry that matches all the filters given.

    ``now`` is the time the answer is computed as of (open runs older than their threshold are
    abandoned as of ``now``).
    """

    now: datetime
    process: str | None = None
    tier: int | None = None
    since: datetime | None = None

    def __post_init__(self) -> None:
        if self.tier is not None and self.tier not in (1, 2, 3):
            raise UsageError(f"tier {self.tier} does not exist. Use --tier 1, 2 or 3.", code="usage",
                             details={"tier": self.tier})

    def to_dict(self) -> dict[str, object]:
        return {"process": self.process, "tier": self.tier,
                "since": format_utc(self.since) if self.since else None, "as_of": format_utc(self.now)}


def format_utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(text: str | None) -> datetime | None:
    """``2025-03-01`` (midnight UTC), or an ISO 8601 time (``2025-03-01T09:30:00Z``; no zone means UTC)."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise UsageError(f"--since '{text}' is not a date. Give YYYY-MM-DD (midnight UTC) or an ISO 8601 time "
                         "such as 2025-03-01T09:30:00Z.", code="invalid_since", details={"since": text}) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
