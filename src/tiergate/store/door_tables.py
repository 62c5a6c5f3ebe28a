"""The tables of who comes through the server's doors, and of what the doors refused.

- ``Principal``, ``Token``, ``CredentialEvent``: principals, their tokens and the record of changes to them
  (``tiergate.store.credentials``).
- ``Password``, ``WebSession``: people's passwords and the web pages' sessions (``tiergate.store.sessions``).
- ``DoorRefusal``: an attempt refused at a door before it reached a run (``tiergate.doorlog``).

Part of the schema ``tiergate.store.tables`` describes (and re-exports from here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel


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
