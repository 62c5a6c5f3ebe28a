"""The database tables. Every row type of tiergate lives in this one module.

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


# --- principals and their credentials (tiergate.store.credentials) ---


class Principal(SQLModel, table=True):
    """Someone who may come through the server's doors: ``human:alice`` or ``agent:triage-bot``."""

    __tablename__ = "principals"

    id: str = Field(sa_column=Column(String(160), primary_key=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    email: Optional[str] = Field(default=None, sa_column=Column(String(320), nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(sa_column=Column(String(160), nullable=False))
    disabled_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class Token(SQLModel, table=True):
    """A bearer token of a principal. Only the SHA-256 of the secret is kept (``secret_hash``)."""

    __tablename__ = "tokens"
    __table_args__ = (UniqueConstraint("secret_hash", name="uq_tokens_secret_hash"),
                      Index("ix_tokens_principal", "principal_id"))

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    principal_id: str = Field(sa_column=Column(String(160), nullable=False))
    secret_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_by: str = Field(sa_column=Column(String(160), nullable=False))
    expires_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    last_used_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    revoked_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    revoked_by: Optional[str] = Field(default=None, sa_column=Column(String(160), nullable=True))


class CredentialEvent(SQLModel, table=True):
    """Append-only: a principal added or disabled, a token issued or revoked, and who did it, through which door."""

    __tablename__ = "credential_events"

    id: Optional[int] = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    event: str = Field(sa_column=Column(String(32), nullable=False))
    principal_id: str = Field(sa_column=Column(String(160), nullable=False))
    token_id: Optional[str] = Field(default=None, sa_column=Column(String(32), nullable=True))
    actor: str = Field(sa_column=Column(String(160), nullable=False))
    door: str = Field(sa_column=Column(String(64), nullable=False))
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class Password(SQLModel, table=True):
    """A person's password, as an argon2id hash, and the failed sign-ins since the last good one."""

    __tablename__ = "passwords"

    principal_id: str = Field(sa_column=Column(String(160), primary_key=True))
    hash: str = Field(sa_column=Column(String(255), nullable=False))
    set_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    set_by: str = Field(sa_column=Column(String(160), nullable=False))
    failures: int = Field(sa_column=Column(Integer, nullable=False, server_default="0"))
    locked_until: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


class WebSession(SQLModel, table=True):
    """A signed-in person's session on the web pages. Only the SHA-256 of its secret is kept;
    ``id`` is not secret: log entries name the door ``session:<id>``."""

    __tablename__ = "web_sessions"
    __table_args__ = (UniqueConstraint("secret_hash", name="uq_web_sessions_secret_hash"),
                      Index("ix_web_sessions_principal", "principal_id"))

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    principal_id: str = Field(sa_column=Column(String(160), nullable=False))
    secret_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_seen_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    ended_at: Optional[datetime] = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


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


class DoorRefusal(SQLModel, table=True):
    """One attempt refused at a door before it reached a run; every field bounded, no content."""

    __tablename__ = "door_refusals"

    id: Optional[int] = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    door: str = Field(sa_column=Column(String(16), nullable=False))  # mcp-stdio | mcp | api | cli | engine
    credential: Optional[str] = Field(default=None, sa_column=Column(String(80), nullable=True))
    actor: Optional[str] = Field(default=None, sa_column=Column(String(128), nullable=True))
    attempt: str = Field(sa_column=Column(String(32), nullable=False))
    code: str = Field(sa_column=Column(String(32), nullable=False))
    problem: Optional[str] = Field(default=None, sa_column=Column(String(32), nullable=True))
    sha256: Optional[str] = Field(default=None, sa_column=Column(String(64), nullable=True))
    bytes: Optional[int] = Field(default=None, sa_column=Column(BigInteger, nullable=True))


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
