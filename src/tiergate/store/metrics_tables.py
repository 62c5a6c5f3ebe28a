"""The metrics' tables: the gaps found in the log, and the log summary.

- ``Gap``: a pattern in the log worth a process change (``tiergate.metrics.gaps`` keeps it).
- ``SummaryRun``, ``SummaryGroup``, ``SummaryStep``, ``SummaryBucket``, ``SummaryAgentFailure``,
  ``SummaryFold``: the log summary (``tiergate.metrics.summary``), derived from log entries only.

Part of the schema ``tiergate.store.tables`` describes (and re-exports from here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Gap(SQLModel, table=True):
    __tablename__ = "gaps"
    __table_args__ = (UniqueConstraint("key", name="uq_gaps_key"),)

    id: Optional[int] = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    key: str = Field(sa_column=Column(String(300), nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    process_id: str = Field(sa_column=Column(String(64), nullable=False))
    tier: int = Field(sa_column=Column(Integer, nullable=False))
    step: Optional[str] = Field(default=None, sa_column=Column(String(128), nullable=True))
    category: str = Field(sa_column=Column(String(32), nullable=False))
    owner: str = Field(sa_column=Column(String(64), nullable=False))
    matched_rule: Optional[str] = Field(default=None, sa_column=Column(String(128), nullable=True))
    occurrences: int = Field(sa_column=Column(Integer, nullable=False))
    measure: float = Field(sa_column=Column(Float, nullable=False))
    threshold: float = Field(sa_column=Column(Float, nullable=False))
    summary: str = Field(sa_column=Column(Text, nullable=False))
    evidence: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    first_seen: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_seen: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    times_seen: int = Field(sa_column=Column(Integer, nullable=False))
    resolved_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


# --- the log summary (tiergate.metrics.summary folds log entries into these; nothing else writes them) ---


class SummaryRun(SQLModel, table=True):
    """One run as the metrics see it, from its log entries. Flags are 0/1 integers (summed in SQL)."""

    __tablename__ = "summary_runs"
    # Covering indexes: the runs' counts by start time, their times to completion (with the start,
    # for staleness), and the few runs that were cancelled or failed, without reading the table.
    __table_args__ = (Index("ix_summary_runs_group", "process_id", "tier", "at", "completed_ms"),
                      Index("ix_summary_runs_completed", "process_id", "tier", "completed_ms", "at"),
                      Index("ix_summary_runs_ended", "ended", "process_id", "tier", "cancelled", "cancelled_by_human",
                            "failed", "started_by_kind", "at", "completed_at", "run_id"))

    run_id: str = Field(sa_column=Column(String(32), primary_key=True))
    process_id: str = Field(sa_column=Column(String(64), nullable=False))
    tier: int = Field(sa_column=Column(Integer, nullable=False))
    # The run's `started` entry: its time and who started it (NULL until that entry is folded).
    at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    started_by_kind: Optional[str] = Field(default=None, sa_column=Column(String(16), nullable=True))
    completed_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    # Time to completion in whole milliseconds (tiergate.metrics.sql.whole_ms), once both are known.
    completed_ms: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    cancelled: int = Field(sa_column=Column(Integer, nullable=False))
    cancelled_by_human: int = Field(sa_column=Column(Integer, nullable=False))
    failed: int = Field(sa_column=Column(Integer, nullable=False))
    deviated: int = Field(sa_column=Column(Integer, nullable=False))
    flagged: int = Field(sa_column=Column(Integer, nullable=False))
    ended: int = Field(sa_column=Column(Integer, nullable=False))  # cancelled or failed


class SummaryGroup(SQLModel, table=True):
    """Per process and tier: counts of runs that only a run's whole history decides, kept as runs change."""

    __tablename__ = "summary_groups"

    process_id: str = Field(sa_column=Column(String(64), primary_key=True))
    tier: int = Field(sa_column=Column(Integer, primary_key=True))
    runs_with_deviation: int = Field(sa_column=Column(Integer, nullable=False))
    intervened: int = Field(sa_column=Column(Integer, nullable=False))  # completed runs with a deviation or failure
    last_completed_run: Optional[str] = Field(default=None, sa_column=Column(String(32), nullable=True))


class SummaryStep(SQLModel, table=True):
    """Entries per (process, tier, step, event, actor kind, refusal kind), with their recorded seconds.

    ``step`` and ``refusal`` are '' where the entry has none (key columns cannot be NULL).
    """

    __tablename__ = "summary_steps"

    process_id: str = Field(sa_column=Column(String(64), primary_key=True))
    tier: int = Field(sa_column=Column(Integer, primary_key=True))
    step: str = Field(sa_column=Column(String(128), primary_key=True))
    event: str = Field(sa_column=Column(String(32), primary_key=True))
    actor_kind: str = Field(sa_column=Column(String(16), primary_key=True))
    refusal: str = Field(sa_column=Column(String(32), primary_key=True))
    entries: int = Field(sa_column=Column(Integer, nullable=False))
    seconds: float = Field(sa_column=Column(Float, nullable=False))
    off_path: int = Field(sa_column=Column(Integer, nullable=False))
    # Entries that are ``direct_door`` deviations (metrics.deviations; migration 0015).
    direct_door: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


class SummaryBucket(SQLModel, table=True):
    """A group's values counted per bucket of ``tiergate.metrics.ranks``: how many, their sum, and
    ``counts``, how many fall into each bucket that has any (``[[bucket, values], ...]`` in order).

    ``measure`` is ``step`` (``duration_s`` of step completions, seconds; the group is process,
    tier, step and actor kind) or ``run`` (time to completion, whole milliseconds; step and
    actor kind are '').
    """

    __tablename__ = "summary_buckets"

    measure: str = Field(sa_column=Column(String(8), primary_key=True))
    process_id: str = Field(sa_column=Column(String(64), primary_key=True))
    tier: int = Field(sa_column=Column(Integer, primary_key=True))
    step: str = Field(sa_column=Column(String(128), primary_key=True))
    actor_kind: str = Field(sa_column=Column(String(16), primary_key=True))
    entries: int = Field(sa_column=Column(Integer, nullable=False))
    total: float = Field(sa_column=Column(Float, nullable=False))
    counts: list[list[int]] = Field(sa_column=Column(JSON, nullable=False))


class SummaryAgentFailure(SQLModel, table=True):
    """A step of a run whose gate an agent failed, and the greatest actor kind that completed it since."""

    __tablename__ = "summary_agent_failures"
    __table_args__ = (Index("ix_summary_agent_failures_step", "process_id", "tier", "step", "finisher"),
                      Index("ix_summary_agent_failures_finisher", "finisher", "run_id", "process_id", "tier", "step"))

    run_id: str = Field(sa_column=Column(String(32), primary_key=True))
    step: str = Field(sa_column=Column(String(128), primary_key=True))
    process_id: str = Field(sa_column=Column(String(64), nullable=False))
    tier: int = Field(sa_column=Column(Integer, nullable=False))
    finisher: Optional[str] = Field(default=None, sa_column=Column(String(16), nullable=True))


class SummaryFold(SQLModel, table=True):
    """How far the summary has read the log: one row (id 1).

    ``high_water``: every entry with an id up to it was folded, except ``holes``: ids below it
    that were not visible yet (PostgreSQL transactions may commit out of id order), each with
    the transaction horizon after which a still-missing id is known to have been rolled back.
    """

    __tablename__ = "summary_fold"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    high_water: int = Field(sa_column=Column(Integer, nullable=False))
    holes: list[Any] = Field(sa_column=Column(JSON, nullable=False))
    entries: int = Field(sa_column=Column(Integer, nullable=False))
    updated_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
