"""Rows of passwords and web sessions. Only ``tiergate.passwords`` and ``tiergate.sessions`` call this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from tiergate.store.credentials import _times  # one reading of a row with its times in UTC
from tiergate.store.tables import Password, Principal, WebSession

_passwords = Password.__table__  # type: ignore[attr-defined]
_sessions = WebSession.__table__  # type: ignore[attr-defined]
_principals = Principal.__table__  # type: ignore[attr-defined]


def get_password(conn: Connection, principal_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(_passwords).where(_passwords.c.principal_id == principal_id)).first()
    return None if row is None else _times(row, "set_at", "locked_until")


def put_password(conn: Connection, principal_id: str, hash: str, now: datetime, by: str) -> None:
    values = {"hash": hash, "set_at": now, "set_by": by, "failures": 0, "locked_until": None}
    if conn.execute(update(_passwords).where(_passwords.c.principal_id == principal_id).values(**values)).rowcount == 0:
        conn.execute(insert(_passwords).values(principal_id=principal_id, **values))


def count_failure(conn: Connection, principal_id: str) -> int:
    """One more failed sign-in; returns the count of failures in a row."""
    conn.execute(update(_passwords).where(_passwords.c.principal_id == principal_id)
                 .values(failures=_passwords.c.failures + 1))
    return int(conn.execute(select(_passwords.c.failures).where(_passwords.c.principal_id == principal_id))
               .scalar() or 0)


def lock(conn: Connection, principal_id: str, until: datetime) -> None:
    """Locked out until ``until``; the count starts again after it."""
    conn.execute(update(_passwords).where(_passwords.c.principal_id == principal_id)
                 .values(locked_until=until, failures=0))


def clear_failures(conn: Connection, principal_id: str) -> None:
    conn.execute(update(_passwords).where(_passwords.c.principal_id == principal_id)
                 .values(failures=0, locked_until=None))


def insert_session(conn: Connection, **values: Any) -> None:
    conn.execute(insert(_sessions).values(**values))


def session_by_hash(conn: Connection, secret_hash: str) -> dict[str, Any] | None:
    """The session with this hash joined with its principal's disabled time."""
    query = (select(_sessions, _principals.c.disabled_at.label("principal_disabled_at"))
             .join(_principals, _principals.c.id == _sessions.c.principal_id)
             .where(_sessions.c.secret_hash == secret_hash))
    row = conn.execute(query).first()
    return None if row is None else _times(row, "created_at", "expires_at", "last_seen_at", "ended_at",
                                           "principal_disabled_at")


def touch_session(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(update(_sessions).where(_sessions.c.id == session_id).values(last_seen_at=now))


def end_session(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(update(_sessions).where(_sessions.c.id == session_id, _sessions.c.ended_at.is_(None))
                 .values(ended_at=now))


def end_sessions_of(conn: Connection, principal_id: str, now: datetime) -> int:
    return int(conn.execute(update(_sessions).where(_sessions.c.principal_id == principal_id,
                                                    _sessions.c.ended_at.is_(None))
                            .values(ended_at=now)).rowcount or 0)


def forget_expired(conn: Connection, before: datetime) -> None:
    """Sessions that ended or expired before ``before`` carry nothing anyone needs: gone."""
    conn.execute(delete(_sessions).where(_sessions.c.expires_at < before))
