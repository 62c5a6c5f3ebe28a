"""Rows of principals, tokens and credential events. Only ``tiergate.credentials`` calls this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from tiergate.log import utc
from tiergate.store.db import DriverSQL, driver_cursor, read_time
from tiergate.store.tables import CredentialEvent, Principal, Token

_principals = Principal.__table__  # type: ignore[attr-defined]
_tokens = Token.__table__  # type: ignore[attr-defined]
_events = CredentialEvent.__table__  # type: ignore[attr-defined]


def _times(row: Any, *names: str) -> dict[str, Any]:
    out = dict(row._mapping)
    for name in names:
        if out.get(name) is not None:
            out[name] = utc(out[name])
    return out


def get_principal(conn: Connection, principal_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(_principals).where(_principals.c.id == principal_id)).first()
    return None if row is None else _times(row, "created_at", "disabled_at")


def insert_principal(conn: Connection, **values: Any) -> None:
    conn.execute(insert(_principals).values(**values))


def list_principals(conn: Connection) -> list[dict[str, Any]]:
    return [_times(r, "created_at", "disabled_at") for r in conn.execute(select(_principals).order_by(_principals.c.id))]


def disable_principal(conn: Connection, principal_id: str, now: datetime) -> None:
    conn.execute(update(_principals).where(_principals.c.id == principal_id).values(disabled_at=now))


def insert_token(conn: Connection, **values: Any) -> None:
    conn.execute(insert(_tokens).values(**values))


def get_token(conn: Connection, token_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(_tokens).where(_tokens.c.id == token_id)).first()
    return None if row is None else _times(row, "created_at", "expires_at", "last_used_at", "revoked_at")


#: Every request through a server's doors runs it (``Credentials.authenticate``), so it goes
#: straight to the driver's cursor, spelled once per dialect (``tiergate.store.db.DriverSQL``).
_TOKEN_BY_HASH = DriverSQL(
    "SELECT t.id, t.principal_id, t.expires_at, t.last_used_at, t.revoked_at, p.kind, p.disabled_at "
    "FROM tokens t JOIN principals p ON p.id = t.principal_id WHERE t.secret_hash = {p}")
_TOKEN_COLUMNS = ("id", "principal_id", "expires_at", "last_used_at", "revoked_at", "kind",
                  "principal_disabled_at")
_TOKEN_TIMES = ("expires_at", "last_used_at", "revoked_at", "principal_disabled_at")


def token_by_hash(conn: Connection, secret_hash: str) -> dict[str, Any] | None:
    """The token with this hash (its id, principal and times) with its principal's kind and disabled time."""
    with driver_cursor(conn) as cursor:
        cursor.execute(_TOKEN_BY_HASH(conn.dialect.name), (secret_hash,))
        row = cursor.fetchone()
    if row is None:
        return None
    found = dict(zip(_TOKEN_COLUMNS, row))
    for name in _TOKEN_TIMES:
        if found[name] is not None:
            found[name] = read_time(found[name])
    return found


def list_tokens(conn: Connection, principal_id: str | None = None) -> list[dict[str, Any]]:
    query = select(_tokens).order_by(_tokens.c.created_at, _tokens.c.id)
    if principal_id is not None:
        query = query.where(_tokens.c.principal_id == principal_id)
    return [_times(r, "created_at", "expires_at", "last_used_at", "revoked_at") for r in conn.execute(query)]


def revoke_token(conn: Connection, token_id: str, now: datetime, by: str) -> None:
    conn.execute(update(_tokens).where(_tokens.c.id == token_id).values(revoked_at=now, revoked_by=by))


def revoke_tokens_of(conn: Connection, principal_id: str, now: datetime, by: str) -> list[str]:
    ids = [r.id for r in conn.execute(select(_tokens.c.id).where(_tokens.c.principal_id == principal_id,
                                                                  _tokens.c.revoked_at.is_(None)))]
    if ids:
        conn.execute(update(_tokens).where(_tokens.c.id.in_(ids)).values(revoked_at=now, revoked_by=by))
    return ids


def touch_token(conn: Connection, token_id: str, now: datetime) -> None:
    conn.execute(update(_tokens).where(_tokens.c.id == token_id).values(last_used_at=now))


def add_event(conn: Connection, **values: Any) -> None:
    conn.execute(insert(_events).values(**values))


def events(conn: Connection, principal_id: str | None = None) -> list[dict[str, Any]]:
    query = select(_events).order_by(_events.c.id)
    if principal_id is not None:
        query = query.where(_events.c.principal_id == principal_id)
    return [_times(r, "at") for r in conn.execute(query)]


def in_use_since(conn: Connection) -> datetime | None:
    """When the server came into use: the first principal's registration (None: not in use).

    A token needs a principal, so the first principal is the first credential of any kind.
    """
    first = conn.execute(select(func.min(_principals.c.created_at))).scalar()
    return None if first is None else utc(first)
