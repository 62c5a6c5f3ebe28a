"""The database tables. Every row type of tiergate lives in this one module.

- ``Definition``: one snapshot per definition version (content hash). Runs point at it, so a
  run keeps working after its file changes or disappears.
- ``Run``: one row per run. ``state`` holds the runner's state, ``version`` is the optimistic
  concurrency counter, ``log_seq``/``log_head`` anchor the run's log chain so that removing the
  newest entries is detected too.
- ``LogEntry``: the append-only execution log shared by all tiers. Only ``tiergate.log``
  writes it.

Schema changes go through Alembic migrations in ``tiergate/store/migrations``; the tables here
and the migrations must agree (a test compares them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
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
    __table_args__ = (Index("ix_runs_process_status", "process_id", "status"),)

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


class LogEntry(SQLModel, table=True):
    __tablename__ = "log_entries"
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_log_entries_run_seq"),
        Index("ix_log_entries_process_event", "process_id", "event"),
        Index("ix_log_entries_at", "at"),
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
