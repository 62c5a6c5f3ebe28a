"""Principals and their tokens: who may come through the server's doors, and with what.

    credentials = Credentials(engine)
    credentials.add_principal("human:alice", name="Alice Example", by=operator())
    issued = credentials.issue_token("agent:triage-bot", expires="30d", by=operator())
    issued["token"]                      # 'tg_...': shown once, never stored
    credentials.authenticate(issued["token"]).door        # 'token:<id>'

A token is ``tg_`` and 43 URL-safe characters (256 bits from ``secrets``). Only its SHA-256 is
stored (a secret of 256 random bits needs no slow hash), so neither the database nor a log can
give it back. Every change is recorded in ``credential_events`` with who made it and through
which door; operators on the database directly are ``os:<user>`` through the ``direct`` door.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tiergate.actors import Actor
from tiergate.errors import NotFoundError, RefusedError, UnauthorizedError, UsageError
from tiergate.log import format_time
from tiergate.store import credentials as store

if TYPE_CHECKING:
    from tiergate.engine import Engine

TOKEN_PREFIX = "tg_"
DIRECT = "direct"
DEFAULT_EXPIRY = "90d"
_EXPIRY = re.compile(r"^(?P<n>[1-9][0-9]{0,5})(?P<unit>[mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# last_used_at is written at most this often per token: a request must not cost a write.
_TOUCH_EVERY = timedelta(seconds=60)


def canonical_principal(text: str | None) -> Actor:
    """A principal id in its one spelling. The one place that parses them (canonical ids: actors.py)."""
    return Actor.parse(text)


def operator() -> str:
    """Who acts on the database directly: the operating-system user."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "os:unknown"


def check_shape(token: str | None) -> str:
    """``token``, or ``UnauthorizedError`` unless it looks like a token (no database read: a door
    may answer 401 before it reads anything else of a request)."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise UnauthorizedError("no valid token. Send `Authorization: Bearer tg_...` with a token from "
                                "`tiergate tokens issue`.")
    return token


def secret_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Credential:
    """Who came through a door, and the door: ``token:<id>``, ``session:<id>`` or ``direct``."""

    principal: Actor
    door: str


def parse_expiry(text: str | None, now: datetime) -> datetime | None:
    """``30d``, ``12h``, ``45m``, ``2w``; ``never`` for a token that does not expire."""
    value = (text or DEFAULT_EXPIRY).strip()
    if value == "never":
        return None
    match = _EXPIRY.match(value)
    if match is None:
        raise UsageError(f"--expires '{text}' is not a duration. Write a number and a unit: 45m, 12h, 30d, 2w, "
                         "or 'never'.", code="usage", details={"expires": text})
    return now + timedelta(**{_UNITS[match.group("unit")]: int(match.group("n"))})


def _principal_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "name": row["name"], "email": row["email"],
            "created_at": format_time(row["created_at"]), "created_by": row["created_by"],
            "disabled_at": format_time(row["disabled_at"]) if row["disabled_at"] else None,
            "active": row["disabled_at"] is None}


def _token_view(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A token as `tokens list` shows it: never its secret or its hash."""
    expired = row["expires_at"] is not None and row["expires_at"] <= now
    state = "revoked" if row["revoked_at"] else "expired" if expired else "active"
    return {"id": row["id"], "principal": row["principal_id"], "state": state,
            "created_at": format_time(row["created_at"]), "created_by": row["created_by"],
            **{name: format_time(row[name]) if row[name] else None
               for name in ("expires_at", "last_used_at", "revoked_at")},
            "revoked_by": row["revoked_by"]}


class Credentials:
    """Principals and tokens in the engine's database."""

    def __init__(self, engine: "Engine"):
        self.engine = engine

    def _record(self, conn: Any, event: str, principal: str, by: str, door: str, now: datetime,
                token_id: str | None = None, **detail: Any) -> None:
        store.add_event(conn, at=now, event=event, principal_id=principal, token_id=token_id, actor=by, door=door,
                        detail=detail)

    # --- principals ------------------------------------------------------------------------

    def add_principal(self, principal: str, *, name: str | None = None, email: str | None = None,
                      by: str, door: str = DIRECT) -> dict[str, Any]:
        who = canonical_principal(principal)
        now = self.engine.clock()
        with self.engine.db.write() as conn:
            if store.get_principal(conn, str(who)) is not None:
                raise UsageError(f"principal {who} is already registered. `tiergate principals list` shows it.",
                                 code="principal_exists", details={"principal": str(who)})
            self._add(conn, who, name, email, by, door, now)
            row = store.get_principal(conn, str(who))
        assert row is not None
        return _principal_view(row)

    def _add(self, conn: Any, who: Actor, name: str | None, email: str | None, by: str, door: str,
             now: datetime) -> None:
        store.insert_principal(conn, id=str(who), kind=who.kind, name=name or who.id, email=email, created_at=now,
                               created_by=by)
        self._record(conn, "principal_added", str(who), by, door, now, name=name or who.id, email=email)

    def principals(self) -> list[dict[str, Any]]:
        with self.engine.db.read() as conn:
            return [_principal_view(row) for row in store.list_principals(conn)]

    def disable_principal(self, principal: str, *, by: str, door: str = DIRECT) -> dict[str, Any]:
        """Disable a principal: its tokens stop working at once (and are revoked)."""
        who = canonical_principal(principal)
        now = self.engine.clock()
        with self.engine.db.write() as conn:
            row = self._require_principal(conn, who)
            if row["disabled_at"] is None:
                store.disable_principal(conn, str(who), now)
                revoked = store.revoke_tokens_of(conn, str(who), now, by)
                self._record(conn, "principal_disabled", str(who), by, door, now, revoked_tokens=revoked)
            after = store.get_principal(conn, str(who))
        assert after is not None
        return _principal_view(after)

    @staticmethod
    def _require_principal(conn: Any, who: Actor) -> dict[str, Any]:
        row = store.get_principal(conn, str(who))
        if row is None:
            raise NotFoundError(f"no principal {who}. Register it with `tiergate principals add {who} --name ...`.",
                                details={"principal": str(who)})
        return row

    # --- tokens ----------------------------------------------------------------------------

    def issue_token(self, principal: str, *, expires: str | None = None, by: str,
                    door: str = DIRECT) -> dict[str, Any]:
        """A new token for ``principal`` (registered on the way if it is not yet). The answer's
        ``token`` is the secret: the only time it is ever shown."""
        who = canonical_principal(principal)
        now = self.engine.clock()
        expires_at = parse_expiry(expires, now)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_hex(6)
        with self.engine.db.write() as conn:
            row = store.get_principal(conn, str(who))
            if row is None:
                self._add(conn, who, None, None, by, door, now)
            elif row["disabled_at"] is not None:
                raise RefusedError(f"principal {who} is disabled: it gets no new tokens. Register another principal, "
                                   "or ask an operator why it was disabled.", reason="principal_disabled",
                                   details={"principal": str(who)})
            store.insert_token(conn, id=token_id, principal_id=str(who), secret_hash=secret_hash(token),
                               created_at=now, created_by=by, expires_at=expires_at)
            self._record(conn, "token_issued", str(who), by, door, now, token_id=token_id,
                         expires_at=format_time(expires_at) if expires_at else None)
            stored = store.get_token(conn, token_id)
        assert stored is not None
        return {"token": token, **_token_view(stored, now)}

    def tokens(self, principal: str | None = None) -> list[dict[str, Any]]:
        who = str(canonical_principal(principal)) if principal is not None else None
        now = self.engine.clock()
        with self.engine.db.read() as conn:
            return [_token_view(row, now) for row in store.list_tokens(conn, who)]

    def revoke_token(self, token_id: str, *, by: str, door: str = DIRECT) -> dict[str, Any]:
        now = self.engine.clock()
        with self.engine.db.write() as conn:
            row = store.get_token(conn, token_id)
            if row is None:
                raise NotFoundError(f"no token '{token_id}'. `tiergate tokens list` shows the token ids.",
                                    details={"token": token_id})
            if row["revoked_at"] is None:
                store.revoke_token(conn, token_id, now, by)
                self._record(conn, "token_revoked", row["principal_id"], by, door, now, token_id=token_id)
            row = store.get_token(conn, token_id)
        assert row is not None
        return _token_view(row, now)

    def record_refusal(self, who: Actor, door: str, *, attempt: str, claimed: str) -> None:
        """An attempt through ``door`` that named another actor than its principal, outside any run."""
        now = self.engine.clock()
        with self.engine.db.write() as conn:
            self._record(conn, "actor_mismatch", str(who), str(who), door, now,
                         token_id=door.split(":", 1)[1] if door.startswith("token:") else None,
                         attempt=attempt, claimed=claimed)

    def events(self, principal: str | None = None) -> list[dict[str, Any]]:
        who = str(canonical_principal(principal)) if principal is not None else None
        with self.engine.db.read() as conn:
            return [{"id": e["id"], "at": format_time(e["at"]), "event": e["event"], "principal": e["principal_id"],
                     "token": e["token_id"], "actor": e["actor"], "door": e["door"], "detail": e["detail"]}
                    for e in store.events(conn, who)]

    def authenticate(self, token: str | None) -> Credential:
        """The principal a bearer token stands for, checked now (a revoked token fails at once).

        Raises ``UnauthorizedError``, whose message never repeats the token.
        """
        token = check_shape(token)
        now = self.engine.clock()
        with self.engine.db.statement() as conn:  # one statement, the latest commit: a revocation counts at once
            row = store.token_by_hash(conn, secret_hash(token))
        if row is None or row["revoked_at"] is not None or row["principal_disabled_at"] is not None:
            raise UnauthorizedError("the token is unknown or revoked. Ask an operator for a new one "
                                    "(`tiergate tokens issue`).")
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise UnauthorizedError(f"token {row['id']} expired at {format_time(row['expires_at'])}. Ask an operator "
                                    "for a new one (`tiergate tokens issue`).", details={"token": row["id"]})
        if row["last_used_at"] is None or now - row["last_used_at"] >= _TOUCH_EVERY:
            with self.engine.db.write(durable=False) as conn:
                store.touch_token(conn, row["id"], now)
        return Credential(principal=canonical_principal(row["principal_id"]), door=f"token:{row['id']}")
