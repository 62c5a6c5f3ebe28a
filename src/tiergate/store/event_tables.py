"""The tables of what reaches runs or leaves them on its own time: timer-cycle starts, signals, webhooks.

- ``ScheduledStart``: each run a timer-cycle start event started (``tiergate.schedules``).
- ``SignalBroadcast``, ``SignalDelivery``: the signals' outbox and whom each reached (``tiergate.signals``).
- ``WebhookDelivery``, ``WebhookScan``: the POSTs owed to webhooks, and how far the log was read for them
  (``tiergate.webhooks``).

Part of the schema ``tiergate.store.tables`` describes (and re-exports from here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel


# --- webhooks (tiergate.webhooks) ---


class WebhookDelivery(SQLModel, table=True):
    """One POST owed to one webhook for one log entry: pending, delivered or dead (retries used up)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("hook", "entry_id", name="uq_webhook_deliveries_hook_entry"),
                      Index("ix_webhook_deliveries_due", "status", "next_at"))

    id: Optional[int] = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    hook: str = Field(sa_column=Column(String(64), nullable=False))
    entry_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    event: str = Field(sa_column=Column(String(32), nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    next_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    delivered_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    last_error: Optional[str] = Field(default=None, sa_column=Column(String(500), nullable=True))


class WebhookScan(SQLModel, table=True):
    """How far the log was read for webhooks: every id up to ``high_water``, except ``holes``
    (ids not yet visible, as in ``SummaryFold``)."""

    __tablename__ = "webhook_scan"

    id: int = Field(sa_column=Column(Integer, primary_key=True))
    high_water: int = Field(sa_column=Column(BigInteger, nullable=False))
    holes: list[Any] = Field(sa_column=Column(JSON, nullable=False))


class ScheduledStart(SQLModel, table=True):
    """One run started by a timer-cycle start event at one due time (``tiergate.schedules``).

    The key (process, start event, due time) is the exactly-once guard: the row is inserted in the
    transaction that inserts the run, so two workers (or a worker that crashed mid-way) never start
    two runs for one due time. ``seq`` is the due time's place in the cycle (0 for the first), so a
    finite ``R3/...`` stops after its third."""

    __tablename__ = "scheduled_starts"

    process_id: str = Field(sa_column=Column(String(64), primary_key=True))
    start_event: str = Field(sa_column=Column(String(255), primary_key=True))
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    cycle: str = Field(sa_column=Column(String(255), nullable=False))
    seq: int = Field(sa_column=Column(Integer, nullable=False))
    run_id: str = Field(sa_column=Column(String(32), nullable=False))
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class SignalBroadcast(SQLModel, table=True):
    """A signal thrown inside a run (``run_id``) or sent from outside (``run_id`` None, with its ``data``),
    owed to the runs waiting for it (``tiergate.signals``: the outbox).

    Written in the transaction of the move that threw it, so a crash after that commit cannot lose
    it; ``delivered_at`` is set once every run waiting for it was reached. ``lease_until``: until
    then the one delivering it (the throwing move's process, or a worker that took it) holds it;
    after, a worker may take it over."""

    __tablename__ = "signal_broadcasts"
    __table_args__ = (Index("ix_signal_broadcasts_pending", "delivered_at", "lease_until"),)

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    signal: str = Field(sa_column=Column(String(200), nullable=False))
    run_id: Optional[str] = Field(default=None, sa_column=Column(String(32), nullable=True))
    element: Optional[str] = Field(default=None, sa_column=Column(String(255), nullable=True))
    sender: str = Field(sa_column=Column(String(160), nullable=False))
    door: Optional[str] = Field(default=None, sa_column=Column(String(80), nullable=True))
    depth: int = Field(sa_column=Column(Integer, nullable=False))
    thrown_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    lease_until: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    delivered_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    outcome: Optional[dict[str, Any]] = Field(default=None, sa_column=Column(JSON, nullable=True))
    data: Optional[dict[str, Any]] = Field(default=None, sa_column=Column(JSON, nullable=True))


class SignalDelivery(SQLModel, table=True):
    """One run a broadcast reached (``target`` its id) or one process it started (``process:<id>``).

    Inserted in the transaction of the receiving run's move (or of the started run's insert): the key
    makes each broadcast reach each run once, whoever delivers it and however often."""

    __tablename__ = "signal_deliveries"

    broadcast_id: str = Field(sa_column=Column(String(32), primary_key=True))
    target: str = Field(sa_column=Column(String(100), primary_key=True))
    run_id: str = Field(sa_column=Column(String(32), nullable=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
