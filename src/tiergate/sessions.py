"""Web sessions: a signed-in person's credential on the web pages, as a token is an agent's.

    sessions = Sessions(engine)
    secret, credential = sessions.start(Actor.parse("human:alice"))   # at sign-in: always a new session
    sessions.authenticate(secret).door                                 # 'session:<id>'
    sessions.end(secret)                                               # sign-out

The secret (the cookie's value) is 256 bits from ``secrets``; only its SHA-256 is stored, so the
database cannot give a session back. A session is made only at sign-in, never taken from the
browser: a session id set before sign-in is not kept (no session fixation). It lasts
``session_hours`` (setting, default 12) and ends at sign-out, when the person is disabled, or when
their password is set anew. Its ``id`` is not secret: the log names the door ``session:<id>``.

The CSRF token of a form is derived from the cookie's secret (``csrf_token``): a page on another
site can neither read the cookie nor compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from tiergate.actors import Actor
from tiergate.credentials import Credential, canonical_principal, secret_hash
from tiergate.errors import UnauthorizedError
from tiergate.log import format_time
from tiergate.passwords import setting_number
from tiergate.store import credentials as credential_store
from tiergate.store import sessions as store

if TYPE_CHECKING:
    from tiergate.engine import Engine

SECRET_BYTES = 32
_TOUCH_EVERY = timedelta(seconds=60)


def csrf_token(secret: str) -> str:
    """The CSRF token that goes with a cookie's secret (a session's or a signed-out visitor's)."""
    return hmac.new(secret.encode("utf-8"), b"tiergate csrf", hashlib.sha256).hexdigest()


def csrf_matches(secret: str | None, token: str | None) -> bool:
    return bool(secret) and bool(token) and hmac.compare_digest(csrf_token(str(secret)), str(token))


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


class Sessions:
    """Sessions of the web pages in the engine's database."""

    def __init__(self, engine: "Engine"):
        self.engine = engine

    def start(self, who: Actor) -> tuple[str, Credential]:
        """A new session for ``who`` (a person who just signed in): its secret and its credential."""
        now = self.engine.clock()
        secret = new_secret()
        session_id = secrets.token_hex(6)
        expires_at = now + timedelta(hours=setting_number(self.engine, "session_hours"))
        with self.engine.db.write() as conn:
            store.forget_expired(conn, now)
            store.insert_session(conn, id=session_id, principal_id=str(who), secret_hash=secret_hash(secret),
                                 created_at=now, expires_at=expires_at, last_seen_at=now)
            credential_store.add_event(conn, at=now, event="signed_in", principal_id=str(who), token_id=None,
                                       actor=str(who), door=f"session:{session_id}",
                                       detail={"expires_at": format_time(expires_at)})
        return secret, Credential(principal=who, door=f"session:{session_id}")

    def authenticate(self, secret: str | None) -> Credential:
        """The person a session cookie stands for, checked now. ``UnauthorizedError`` if none."""
        if not secret or len(secret) > 200:
            raise UnauthorizedError("not signed in. Sign in at /sign-in.", code="unauthorized")
        now = self.engine.clock()
        with self.engine.db.read() as conn:
            row = store.session_by_hash(conn, secret_hash(secret))
        if row is None or row["ended_at"] is not None or row["principal_disabled_at"] is not None \
                or row["expires_at"] <= now:
            raise UnauthorizedError("the session is over (signed out, expired or unknown). Sign in again at /sign-in.",
                                    code="unauthorized")
        if row["last_seen_at"] is None or now - row["last_seen_at"] >= _TOUCH_EVERY:
            with self.engine.db.write(durable=False) as conn:
                store.touch_session(conn, row["id"], now)
        return Credential(principal=canonical_principal(row["principal_id"]), door=f"session:{row['id']}")

    def end(self, secret: str | None) -> None:
        """Sign out: the session stops working at once (an unknown one is ignored)."""
        if not secret:
            return
        now = self.engine.clock()
        with self.engine.db.write() as conn:
            row = store.session_by_hash(conn, secret_hash(secret))
            if row is None or row["ended_at"] is not None:
                return
            store.end_session(conn, row["id"], now)
            credential_store.add_event(conn, at=now, event="signed_out", principal_id=row["principal_id"],
                                       token_id=None, actor=row["principal_id"], door=f"session:{row['id']}",
                                       detail={})
