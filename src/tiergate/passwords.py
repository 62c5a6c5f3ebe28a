"""People's passwords for the web pages: set by an operator, checked at sign-in, with a lock-out.

    passwords = Passwords(engine)
    passwords.set("human:alice", "correct horse battery", by=operator())   # argon2id; logged `password_set`
    passwords.sign_in("alice", "correct horse battery", door="web")     # the Actor, or UnauthorizedError

Only people have passwords: agents come through the doors with tokens, never through the pages.
A password is stored as its argon2id hash (argon2-cffi's RFC 9106 low-memory profile), never
as itself. ``sign_in_failures`` failed sign-ins in a row (setting, default 5) lock the person out
for ``lockout_minutes`` (default 15); while locked out, even the right password is refused.
Every sign-in, failure and lock-out is recorded in ``credential_events`` like a token's issue or
revocation, with the door it came through.

Hashing is slow on purpose (about 0.1 s): it runs outside any database transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tiergate.actors import Actor
from tiergate.credentials import DIRECT, canonical_principal
from tiergate.errors import TiergateError, UnauthorizedError, UsageError
from tiergate.log import format_time
from tiergate.store import credentials as credential_store
from tiergate.store import sessions as store

if TYPE_CHECKING:
    from tiergate.engine import Engine

MIN_LENGTH = 8
MAX_LENGTH = 1024
_HASHER = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
# Checked against when the principal has no password, so an unknown name costs the same time.
_DUMMY = _HASHER.hash("tiergate: no such password")
_WRONG = ("wrong principal or password. Check both and try again; after {n} failures in a row the account is "
          "locked for {minutes} minutes.")


def setting_number(engine: "Engine", name: str) -> float:
    value = engine.settings.get(name)
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        raise UsageError(f"setting {name} is '{value}', not a number. Fix tiergate.toml or the environment.",
                         code="config_invalid", details={"setting": name}) from None
    if number <= 0:
        raise UsageError(f"setting {name} is {value}; it must be above 0.", code="config_invalid",
                         details={"setting": name})
    return number


def person(text: str) -> Actor:
    """The principal a sign-in names: ``human:alice`` or plain ``alice`` (a person)."""
    text = (text or "").strip()
    who = canonical_principal(text if ":" in text else f"human:{text}")
    return who


class Passwords:
    """Passwords of the people registered in the engine's database."""

    def __init__(self, engine: "Engine"):
        self.engine = engine

    def _event(self, conn: Any, event: str, principal: str, by: str, door: str, now: datetime, **detail: Any) -> None:
        credential_store.add_event(conn, at=now, event=event, principal_id=principal[:160], token_id=None, actor=by,
                                   door=door, detail=detail)

    def set(self, principal: str, password: str, *, by: str, door: str = DIRECT) -> dict[str, Any]:
        """Set (or replace) the password of a person, registering them if they are new. A new
        password ends their sessions and lifts a lock-out."""
        who = canonical_principal(principal)
        if who.kind != "human":
            raise UsageError(f"{who} is not a person: only people (human:NAME) have passwords. Agents use tokens "
                             "(`tiergate tokens issue`).", code="not_a_person", details={"principal": str(who)})
        if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
            raise UsageError(f"the password must be {MIN_LENGTH} to {MAX_LENGTH} characters long. Choose a longer "
                             "one (a few words make a good one).", code="password_invalid",
                             details={"min": MIN_LENGTH, "max": MAX_LENGTH})
        hashed = _HASHER.hash(password)  # slow: before the transaction
        now = self.engine.clock()
        with self.engine.db.write() as conn:
            row = credential_store.get_principal(conn, str(who))
            if row is None:
                credential_store.insert_principal(conn, id=str(who), kind=who.kind, name=who.id, email=None,
                                                  created_at=now, created_by=by)
                self._event(conn, "principal_added", str(who), by, door, now, name=who.id, email=None)
            elif row["disabled_at"] is not None:
                raise UsageError(f"principal {who} is disabled: it gets no password. Register another principal, "
                                 "or ask an operator why it was disabled.", code="principal_disabled",
                                 details={"principal": str(who)})
            store.put_password(conn, str(who), hashed, now, by)
            ended = store.end_sessions_of(conn, str(who), now)
            self._event(conn, "password_set", str(who), by, door, now, sessions_ended=ended)
        return {"principal": str(who), "set_at": format_time(now), "set_by": by, "sessions_ended": ended}

    def sign_in(self, principal: str, password: str, *, door: str) -> Actor:
        """The person ``principal`` names, if ``password`` is theirs and they are not locked out.

        Raises ``UnauthorizedError`` (``sign_in_failed`` or ``locked_out``); the message never says
        which of the name or the password was wrong. Every attempt is recorded.
        """
        limit = int(setting_number(self.engine, "sign_in_failures"))
        minutes = setting_number(self.engine, "lockout_minutes")
        wrong = UnauthorizedError(_WRONG.format(n=limit, minutes=f"{minutes:g}"), code="sign_in_failed")
        try:
            who = person(principal)
        except TiergateError:
            who = None
        row = None
        if who is not None and who.kind == "human":
            with self.engine.db.read() as conn:
                known = credential_store.get_principal(conn, str(who))
                if known is not None and known["disabled_at"] is None:
                    row = store.get_password(conn, str(who))
        now = self.engine.clock()
        if row is not None and row["locked_until"] is not None and row["locked_until"] > now:
            assert who is not None
            with self.engine.db.write() as conn:
                self._event(conn, "sign_in_refused", str(who), str(who), door, now,
                            locked_until=format_time(row["locked_until"]))
            raise UnauthorizedError(f"{who} is locked out after {limit} failed sign-ins in a row, until "
                                    f"{format_time(row['locked_until'])}. Wait, or ask an operator to set a new "
                                    "password (`tiergate principals set-password`).", code="locked_out",
                                    details={"locked_until": format_time(row["locked_until"])})
        good = self._verify(row["hash"] if row is not None else _DUMMY, password) and row is not None
        now = self.engine.clock()
        with self.engine.db.write() as conn:
            if good:
                assert who is not None
                store.clear_failures(conn, str(who))
                return who
            name = str(who) if who is not None else (principal or "")[:160]
            if row is None:
                self._event(conn, "sign_in_failed", name, name, door, now, reason="unknown")
                raise wrong
            failures = store.count_failure(conn, name)
            if failures >= limit:
                until = now + timedelta(minutes=minutes)
                store.lock(conn, name, until)
                self._event(conn, "locked_out", name, name, door, now, failures=failures,
                            locked_until=format_time(until))
            else:
                self._event(conn, "sign_in_failed", name, name, door, now, reason="password", failures=failures)
        raise wrong

    @staticmethod
    def _verify(hashed: str, password: str) -> bool:
        if not isinstance(password, str) or not password or len(password) > MAX_LENGTH:
            return False
        try:
            return bool(_HASHER.verify(hashed, password))
        except (VerificationError, InvalidHashError):
            return False
