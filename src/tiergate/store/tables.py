"""The database tables. Every row type of tiergate lives in this one module.

- ``Definition``: one snapshot per definition version (content hash). Runs point at it, so a
  run keeps working after its file changes or disappears.
- ``Run``: one row per run. ``state`` holds the runner's state, ``version`` is the optimistic
  concurrency counter, ``log_seq``/``log_head`` anchor the run's log chain so that removing the
  newest entries is detected too.
- ``LogEntry``: the append-only execution log shared by all tiers. Only ``tiergate.log``
  writes it.
- ``Gap``: a pattern in the log worth a process change (``tiergate.metrics.gaps`` keeps it),
  with when it was first and last seen.

Schema changes go through Alembic migrations in ``tiergate/store/migrations``; the tables here
and the migrations must agree (a test compares them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, DateTime, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class Definition(SQLModel, table=True):
    __tablename__ = "definitions"

    version: str = Field(sa_column=Column(String(64), primary_key=True))
    process_id: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_process_status", "process_id", "status"), Index("ix_runs_due_at", "due_at"))

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    process_id: str = Field(sa_column=Column(String(64), nullable=False))
    definition_version: str = Field(sa_column=Column(String(64), nullable=False))
    tier: int = Field(sa_column=Column(Integer, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    state: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    started_by: str = Field(sa_column=Column(String(128), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ended_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    log_seq: int = Field(sa_column=Column(Integer, nullable=False))
    log_head: str = Field(sa_column=Column(String(64), nullable=False))
    # Tier 1: when the run's next timer is due (tiergate.store.timers; NULL when nothing waits).
    due_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class LogEntry(SQLModel, table=True):
    __tablename__ = "log_entries"
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_log_entries_run_seq"),
        Index("ix_log_entries_process_event", "process_id", "event"),
        Index("ix_log_entries_at", "at"),
        # For metrics: migration 0003 says why each exists. The partial indexes' predicates are
        # spelled as in tiergate.metrics.deviations (a test checks).
        Index("ix_log_entries_event_step", "event", "process_id", "tier", "step", "actor_kind", "duration_s"),
        Index("ix_log_entries_event_run", "event", "process_id", "tier", "run_id", "step", "actor_kind", "at"),
        Index("ix_log_entries_off_path", "process_id", "tier", "step", "run_id",
              sqlite_where=text("json_type(detail, '$.off_path') = 'true'"),
              postgresql_where=text("((detail -> 'off_path')::text) = 'true'")),
        Index("ix_log_entries_refused_order", "process_id", "tier", "step", "actor_kind",
              sqlite_where=text("json_type(detail, '$.attempt') = 'text' AND json_extract(detail, '$.reason') IN "
                                "('not_ready', 'already_done', 'unknown_step', 'run_not_active')"),
              postgresql_where=text("(detail ->> 'attempt') IS NOT NULL AND (detail ->> 'reason') IN "
                                    "('not_ready', 'already_done', 'unknown_step', 'run_not_active')")),
        Index("ix_log_entries_refused_actor", "process_id", "tier", "step", "actor_kind",
              sqlite_where=text("json_type(detail, '$.attempt') = 'text' AND json_extract(detail, '$.reason') IN "
                                "('actor_not_allowed', 'same_actor')"),
              postgresql_where=text("(detail ->> 'attempt') IS NOT NULL AND (detail ->> 'reason') IN "
                                    "('actor_not_allowed', 'same_actor')")),
    )

    id: Optional[int] = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    run_id: str = Field(sa_column=Column(String(32), nullable=False))
    seq: int = Field(sa_column=Column(Integer, nullable=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    process_id: str = Field(sa_column=Column(String(64), nullable=False))
    definition_version: str = Field(sa_column=Column(String(64), nullable=False))
    tier: int = Field(sa_column=Column(Integer, nullable=False))
    step: Optional[str] = Field(default=None, sa_column=Column(String(128), nullable=True))
    event: str = Field(sa_column=Column(String(32), nullable=False))
    actor_kind: str = Field(sa_column=Column(String(16), nullable=False))
    actor_id: str = Field(sa_column=Column(String(128), nullable=False))
    duration_s: Optional[float] = Field(default=None, sa_column=Column(Float, nullable=True))
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))


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
