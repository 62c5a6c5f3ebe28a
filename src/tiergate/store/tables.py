"""The database tables. Every row type of tiergate is imported from this one module; the run's
and the log's live here, the others by area in ``tiergate.store.metrics_tables`` (gaps, the log
summary), ``tiergate.store.door_tables`` (principals, credentials, sessions, door refusals) and
``tiergate.store.event_tables`` (scheduled starts, signals, webhooks).

- ``Definition``: one snapshot per definition version (content hash). Runs point at it, so a
  run keeps working after its file changes or disappears.
- ``Run``: one row per run. ``state`` holds the runner's state, ``version`` is the optimistic
  concurrency counter, ``log_seq``/``log_head`` anchor the run's log chain so that removing the
  newest entries is detected too.
- ``RunPart``: a part of a run's state stored apart (a task of a large Tier 1 task tree), bound
  by the digest the run's state lists (``tiergate.store.parts``).
- ``LogEntry``: the append-only execution log shared by all tiers. Only ``tiergate.log``
  writes it.
- ``LogTree``: the Merkle tree over the whole log, kept as its compact range (``tiergate.logtree``),
  extended by the log summary's fold; checkpoints sign its size and root.
- ``Principal``, ``Token``, ``CredentialEvent``: who may come through the server's doors, their
  credentials (only a hash of each token), and the append-only record of who added, disabled,
  issued or revoked them (``tiergate.store.credentials``).
- ``Password``, ``WebSession``: people's passwords (argon2id hashes) with their failed sign-ins, and
  the web pages' sessions (only a hash of each session secret) (``tiergate.store.sessions``).
- ``Claim``: who has claimed a ready step (``tiergate.claims``); gone once the step is done.
- ``Gap``: a pattern in the log worth a process change (``tiergate.metrics.gaps`` keeps it),
  with when it was first and last seen.
- ``SummaryRun``, ``SummaryGroup``, ``SummaryStep``, ``SummaryBucket``, ``SummaryAgentFailure``,
  ``SummaryFold``: the log summary
  (``tiergate.metrics.summary``), what the metrics need of the log folded into a few rows per
  run and per step. Derived from log entries only, by one folding function, and rebuilt from the
  log on demand; never written by the runners.

- ``ScheduledStart``: each run a timer-cycle start event started, keyed by its due time (``tiergate.schedules``).

- ``SignalBroadcast``, ``SignalDelivery``: the outbox of signals thrown inside runs, written with the
  throwing move, and the key of each run a broadcast reached (``tiergate.signals``).

- ``DataStore``: the current value of each BPMN data store of a process (``tiergate.datastores``),
  with its version counter; every write is also a ``data_store_written`` log entry.

- ``DoorRefusal``: an attempt refused at a door before it reached a run (a message that cannot be
  read, start data refused for its shape, a run that does not exist): what, where and by whom,
  with the content's sha256 and size only, never the content (``tiergate.doorlog``).

- ``Deployment``, ``DeploymentFile``: the home's definition files as deployed (``tiergate deploy``),
  numbered; each file's text is stored once by its SHA-256 (``tiergate.deployments``).

Schema changes go through Alembic migrations in ``tiergate/store/migrations``; the tables here
and the migrations must agree (a test compares them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Index, Integer, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# The tables of other areas, re-exported: importing this module registers every table with
# SQLModel's metadata (what Alembic's comparison and the tests' create_all see).
from tiergate.store.door_tables import (CredentialEvent, DoorRefusal, Password, Principal, Token,  # noqa: F401
                                        WebSession)
from tiergate.store.event_tables import (ScheduledStart, SignalBroadcast, SignalDelivery,  # noqa: F401
                                         WebhookDelivery, WebhookScan)
from tiergate.store.metrics_tables import (Gap, SummaryAgentFailure, SummaryBucket, SummaryFold,  # noqa: F401
                                           SummaryGroup, SummaryRun, SummaryStep)


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
    # Who the run's ready steps are for, as the inbox looks them up (tiergate.claims.ready_key; NULL:
    # not known, written before migration 0021). Kept in the same UPDATE as the state.
    ready_for: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class RunPart(SQLModel, table=True):
    __tablename__ = "run_parts"

    run_id: str = Field(sa_column=Column(String(32), primary_key=True))
    # The JSON pointer of the object in the run's state ("/workflow/tasks"), and the member's key.
    path: str = Field(sa_column=Column(String(255), primary_key=True))
    key: str = Field(sa_column=Column(String(255), primary_key=True))
    # The member's place in its object (members are read back in this order).
    pos: int = Field(sa_column=Column(Integer, nullable=False))
    # The member's JSON text, exactly as hashed.
    body: str = Field(sa_column=Column(Text, nullable=False))


#: The entries ``ix_log_entries_completed_steps`` holds: step completions, with their durations.
COMPLETED_STEPS_SQL = "event = 'step_completed'"
#: The events metrics look up per run: its routing, start and end, its deviations and decisions.
#: ``ix_log_entries_run_events`` holds these only. Most entries are a step's ``step_completed``
#: and the next step's ``step_ready``; left out of this index, a step completion writes one
#: metrics index page instead of four (migration 0007).
RUN_EVENTS = ("routed", "started", "completed", "cancelled", "failed", "refused", "gate_failed", "escalated",
              "step_skipped", "decision_evaluated")
#: Spelled as OR-ed equalities: SQLite uses a partial index only for a query that has one of
#: the predicate's terms word for word (``event = 'completed'``), and an IN list never matches.
RUN_EVENTS_SQL = " OR ".join(f"event = '{event}'" for event in RUN_EVENTS)


class LogEntry(SQLModel, table=True):
    __tablename__ = "log_entries"
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_log_entries_run_seq"),
        # For metrics: migrations 0003 and 0007 say why each exists. The partial indexes' predicates are
        # spelled as in tiergate.metrics.deviations and the constants above (a test checks).
        Index("ix_log_entries_completed_steps", "event", "process_id", "tier", "step", "actor_kind", "duration_s",
              sqlite_where=text(COMPLETED_STEPS_SQL), postgresql_where=text(COMPLETED_STEPS_SQL)),
        Index("ix_log_entries_run_events", "event", "process_id", "tier", "run_id", "step", "actor_kind", "at",
              sqlite_where=text(RUN_EVENTS_SQL), postgresql_where=text(RUN_EVENTS_SQL)),
        Index("ix_log_entries_off_path", "process_id", "tier", "step", "run_id",
              sqlite_where=text("json_type(detail, '$.off_path') = 'true'"),
              postgresql_where=text("((detail -> 'off_path')::text) = 'true'")),
        Index("ix_log_entries_refused_order", "process_id", "tier", "step", "actor_kind",
              sqlite_where=text("+event = 'refused' AND json_type(detail, '$.attempt') = 'text' AND "
                                "json_extract(detail, '$.reason') IN "
                                "('not_ready', 'already_done', 'unknown_step', 'run_not_active')"),
              postgresql_where=text("event = 'refused' AND (detail ->> 'attempt') IS NOT NULL AND "
                                    "(detail ->> 'reason') IN "
                                    "('not_ready', 'already_done', 'unknown_step', 'run_not_active')")),
        Index("ix_log_entries_refused_actor", "process_id", "tier", "step", "actor_kind",
              sqlite_where=text("+event = 'refused' AND json_type(detail, '$.attempt') = 'text' AND "
                                "json_extract(detail, '$.reason') IN ('actor_not_allowed', 'same_actor')"),
              postgresql_where=text("event = 'refused' AND (detail ->> 'attempt') IS NOT NULL AND "
                                    "(detail ->> 'reason') IN ('actor_not_allowed', 'same_actor')")),
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
    # sha256 of the run's state after the change this entry belongs to (NULL: the entry changed no
    # state, e.g. a refusal, or was written before migration 0008). Part of the entry's hash.
    state_hash: Optional[str] = Field(default=None, sa_column=Column(String(64), nullable=True))
    # The door the entry came through: ``direct``, ``token:<id>`` or ``session:<id>`` (NULL before 0010).
    door: Optional[str] = Field(default=None, sa_column=Column(String(64), nullable=True))


class LogTree(SQLModel, table=True):
    """The Merkle tree over the log's entry hashes in id order (RFC 9162), one row (id 1).

    ``size`` leaves, the newest being entry ``last_id``; ``frontier`` is the compact range (the
    roots of the perfect subtrees, largest first, as hex), enough to extend the tree and compute
    its ``root``. Derived from the log only (``tiergate.logtree``); never trusted by ``log verify``.
    """

    __tablename__ = "log_tree"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    frontier: list[Any] = Field(sa_column=Column(JSON, nullable=False))
    root: str = Field(sa_column=Column(String(64), nullable=False))
    updated_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class Claim(SQLModel, table=True):
    """A ready step someone took on (or was assigned): others are refused it until it is released
    or the claim times out. Deleted when the step is completed or skipped."""

    __tablename__ = "claims"

    run_id: str = Field(sa_column=Column(String(32), primary_key=True))
    step: str = Field(sa_column=Column(String(128), primary_key=True))
    claimed_by: str = Field(sa_column=Column(String(160), nullable=False))
    claimed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    assigned_by: Optional[str] = Field(default=None, sa_column=Column(String(160), nullable=True))


class Deployment(SQLModel, table=True):
    """One numbered deployment of the home's definition files: what runs start from."""

    __tablename__ = "deployments"

    number: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(sa_column=Column(String(128), nullable=False))
    #: {"kind": "bootstrap" | "direct" | "rollback", ...}: what allowed it.
    approval: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    #: {relative path: SHA-256 of its text}
    manifest: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    #: what changed against the deployment before it: files and decision rules
    changes: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    redeploy_of: Optional[int] = Field(default=None, sa_column=Column(Integer, nullable=True))


class DeploymentFile(SQLModel, table=True):
    __tablename__ = "deployment_files"

    sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    body: str = Field(sa_column=Column(Text, nullable=False))


class DataStore(SQLModel, table=True):
    """The current value of one BPMN data store of a process, shared by its runs (``tiergate.datastores``).

    ``value`` is canonical JSON and ``digest`` its SHA-256 (the ``data_store_written`` entry that
    wrote it names the same digest); ``version`` counts the writes, for compare-and-set."""

    __tablename__ = "data_stores"

    process_id: str = Field(sa_column=Column(String(64), primary_key=True))
    store: str = Field(sa_column=Column(String(255), primary_key=True))
    name: Optional[str] = Field(default=None, sa_column=Column(String(255), nullable=True))
    value: str = Field(sa_column=Column(Text, nullable=False))
    digest: str = Field(sa_column=Column(String(64), nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))
    run_id: str = Field(sa_column=Column(String(32), nullable=False))
    step: Optional[str] = Field(default=None, sa_column=Column(String(255), nullable=True))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
