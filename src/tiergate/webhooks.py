"""Webhooks: an HTTP POST, signed with HMAC-SHA256, for chosen log events, retried with back-off.

    hooks = configured(engine)             # from tiergate.toml's [[webhooks]] (or TIERGATE_WEBHOOKS)
    queued = enqueue(engine, hooks)        # read the log since the last scan into the outbox
    sent = deliver(engine, hooks)          # POST what is due; failures wait and are tried again

The outbox is derived from the log, never written by a step: ``tiergate worker`` (and the
server's background loop) reads the entries written since the last scan (``webhook_scan``: a
high-water mark and, on PostgreSQL, the ids not yet visible, as the log summary keeps them),
and inserts one ``webhook_deliveries`` row per (hook, entry) that a hook wants. A step never
waits for a receiver, and a receiver that is down loses nothing: its deliveries stay pending.

Events: ``step_ready`` (optionally only for steps of some ``roles``), ``escalated``, ``failed``
and ``completed``. Each POST carries ``X-Tiergate-Event``, ``X-Tiergate-Delivery`` (the row id,
the same on every retry), ``X-Tiergate-Timestamp`` (Unix seconds) and ``X-Tiergate-Signature:
sha256=<hex>``, the HMAC-SHA256 with the hook's secret of ``<timestamp>.<body>``. A 2xx answer
delivers; anything else (another status, a refused connection, a time-out) is retried after
30 s, 1, 2, 4 ... minutes (at most an hour apart); after ``MAX_ATTEMPTS`` the delivery is dead.
The secret is read from the environment variable the hook names (``secret_env``) and never
written to the database, a log or an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tiergate.errors import TiergateError, UsageError
from tiergate.log import format_time
from tiergate.store.db import read_time
from tiergate.store.tables import LogEntry, WebhookDelivery, WebhookScan

if TYPE_CHECKING:
    from tiergate.engine import Engine

EVENTS = ("step_ready", "escalated", "failed", "completed")
MAX_ATTEMPTS = 12
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
#: How long a sender holds a delivery before another may try it (a worker that died mid-send).
LEASE = timedelta(minutes=2)
TIMEOUT_S = 10.0
BATCH = 2_000
SCAN_LOCK = 7142028
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_KEYS = {"name", "url", "events", "roles", "secret_env"}

_log = LogEntry.__table__  # type: ignore[attr-defined]
_out = WebhookDelivery.__table__  # type: ignore[attr-defined]
_scan = WebhookScan.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Hook:
    name: str
    url: str
    events: frozenset[str]
    roles: frozenset[str] | None = None
    secret: str = field(default="", repr=False)

    def wants(self, event: str, roles: list[str]) -> bool:
        if event not in self.events:
            return False
        return event != "step_ready" or self.roles is None or bool(self.roles & set(roles))


def _bad(where: str, what: str) -> UsageError:
    return UsageError(f"tiergate.toml webhooks{where}: {what} See docs/server.md#webhooks.", code="webhook_invalid")


def configured(engine: Engine) -> list[Hook]:
    """The hooks of tiergate.toml (or TIERGATE_WEBHOOKS, a JSON list), checked."""
    raw: Any = engine.settings.get("webhooks")
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _bad("", f"TIERGATE_WEBHOOKS is not JSON ({exc.msg}); give a list of objects.") from None
    if not isinstance(raw, list):
        raise _bad("", "must be a list of tables ([[webhooks]]).")
    hooks: list[Hook] = []
    for i, item in enumerate(raw):
        where = f"[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "must be a table with name, url, events and secret_env.")
        unknown = sorted(set(item) - _KEYS)
        if unknown:
            raise _bad(where, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}.")
        name, url, events = item.get("name"), item.get("url"), item.get("events")
        if not isinstance(name, str) or not _NAME.match(name) or any(h.name == name for h in hooks):
            raise _bad(where, f"name {name!r} must be unique, lower-case letters, digits, '-' or '_'.")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]+$", url):
            raise _bad(where, f"url {url!r} must be an http:// or https:// URL.")
        if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
            raise _bad(where, f"events {events!r} must be a non-empty list of {', '.join(EVENTS)}.")
        roles = item.get("roles")
        if roles is not None and (not isinstance(roles, list) or not all(isinstance(r, str) for r in roles)):
            raise _bad(where, "roles must be a list of role ids (tiers/roles.yaml).")
        secret_env = item.get("secret_env")
        if not isinstance(secret_env, str) or not os.environ.get(secret_env):
            raise _bad(where, f"secret_env must name an environment variable that holds the signing secret "
                       f"({secret_env!r} is {'not set' if isinstance(secret_env, str) else 'missing'}).")
        hooks.append(Hook(name, url, frozenset(events), frozenset(roles) if roles is not None else None,
                          os.environ[secret_env]))
    return hooks


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` (how a receiver checks a POST)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# --- the outbox, from the log ---------------------------------------------------------------


def _step_roles(engine: Engine, conn: Connection, run_id: str, step: str | None,
                cache: dict[str, list[Any]]) -> list[str]:
    """The roles that may do ``step`` of the run, as its pinned definition says (empty: anyone)."""
    from tiergate.store import runs as run_store

    if step is None:
        return []
    if run_id not in cache:
        run = run_store.get_run(conn, run_id)
        try:
            cache[run_id] = [] if run is None else engine.runners[run.tier].steps(
                engine._pinned(conn, run), run.state, run={"id": run.id})
        except TiergateError:  # a definition that no longer loads: the POST goes out without roles
            cache[run_id] = []
    return next((list(v.roles) for v in cache[run_id] if v.id == step), [])


def enqueue(engine: Engine, hooks: list[Hook], *, batch: int = BATCH) -> int:
    """Read the log since the last scan and queue a delivery per (hook, entry) wanted; returns how many."""
    if not hooks:
        return 0
    # The log summary's rule for the ids not yet visible on PostgreSQL.
    from tiergate.metrics.summary import _holes

    queued = 0
    while True:
        now = engine.clock()
        with engine.db.read() as conn:
            high, holes = conn.execute(select(_scan.c.high_water, _scan.c.holes).where(_scan.c.id == 1)).one()
            columns = [_log.c.id, _log.c.run_id, _log.c.process_id, _log.c.tier, _log.c.step, _log.c.event,
                       _log.c.actor_kind, _log.c.actor_id, _log.c.at, _log.c.detail]
            rows = conn.execute(select(*columns).where(_log.c.id > high).order_by(_log.c.id).limit(batch)).all()
            hole_ids = [h[0] for h in holes]
            late = conn.execute(select(*columns).where(_log.c.id.in_(hole_ids))).all() if hole_ids else []
            top = rows[-1].id if rows else high
            if conn.dialect.name == "postgresql":
                holes = _holes(conn, holes, {r.id for r in late}, high, top, {r.id for r in rows})
            cache: dict[str, list[Any]] = {}
            wanted = []
            for row in [*rows, *late]:
                if row.event not in EVENTS:
                    continue
                roles = _step_roles(engine, conn, row.run_id, row.step, cache) if row.event == "step_ready" else []
                payload = {"event": row.event, "entry": row.id, "run": row.run_id, "process": row.process_id,
                           "tier": row.tier, "step": row.step, "actor": f"{row.actor_kind}:{row.actor_id}",
                           "at": format_time(read_time(row.at)), "roles": roles}
                if row.event in ("escalated", "failed"):
                    payload["detail"] = row.detail
                wanted += [{"hook": h.name, "entry_id": row.id, "event": row.event, "payload": {**payload,
                            "hook": h.name}, "status": "pending", "attempts": 0, "created_at": now, "next_at": now}
                           for h in hooks if h.wants(row.event, roles)]
        with engine.db.write() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCAN_LOCK})
            if conn.execute(select(_scan.c.high_water).where(_scan.c.id == 1)).scalar() != high:
                continue  # another worker scanned meanwhile: read again from where it got to
            if wanted:
                insert = pg_insert(_out) if conn.dialect.name == "postgresql" else sqlite_insert(_out)
                conn.execute(insert.on_conflict_do_nothing(index_elements=["hook", "entry_id"]), wanted)
            conn.execute(update(_scan).where(_scan.c.id == 1).values(high_water=top, holes=holes))
        queued += len(wanted)
        if len(rows) < batch:
            return queued


# --- sending ---------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 30 s, 1 min, 2 min, ... at most an hour."""
    return min(FIRST_RETRY * (2 ** max(0, attempts - 1)), LONGEST_WAIT)


def _post(hook: Hook, delivery_id: int, event: str, payload: dict[str, Any], now: datetime) -> str | None:
    """POST one delivery; None when the receiver took it, else what went wrong (never the secret).

    Straight to the hook's host (http.client: no proxy from the environment, no redirect followed).
    """
    import http.client
    from urllib.parse import urlsplit

    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    timestamp = str(int(now.timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": "tiergate-webhooks",
               "X-Tiergate-Event": event, "X-Tiergate-Delivery": str(delivery_id),
               "X-Tiergate-Timestamp": timestamp, "X-Tiergate-Signature": signature(hook.secret, timestamp, body)}
    url = urlsplit(hook.url)
    connection_type = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    try:
        connection = connection_type(url.hostname or "", url.port, timeout=TIMEOUT_S)
        try:
            connection.request("POST", path, body=body, headers=headers)
            status = connection.getresponse().status
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return f"{type(exc).__name__}: could not reach the receiver"
    return None if 200 <= status < 300 else f"HTTP {status}"


def deliver(engine: Engine, hooks: list[Hook], *, limit: int = 200,
            post: Callable[[Hook, int, str, dict[str, Any], datetime], str | None] = _post) -> dict[str, int]:
    """Send every pending delivery that is due, each outside any transaction; count the outcomes."""
    by_name = {h.name: h for h in hooks}
    counts: dict[str, int] = {"delivered": 0, "retrying": 0, "dead": 0}
    now = engine.clock()
    with engine.db.read() as conn:
        due = conn.execute(select(_out.c.id, _out.c.hook, _out.c.event, _out.c.payload, _out.c.attempts,
                                  _out.c.next_at)
                           .where(_out.c.status == "pending", _out.c.next_at <= now)
                           .order_by(_out.c.next_at, _out.c.id).limit(limit)).all()
    for row in due:
        hook = by_name.get(row.hook)
        with engine.db.write() as conn:  # take it for a while: another worker leaves it alone
            if hook is None:
                conn.execute(update(_out).where(_out.c.id == row.id).values(
                    status="dead", last_error="the webhook is no longer configured"))
                counts["dead"] += 1
                continue
            taken = conn.execute(update(_out).where(_out.c.id == row.id, _out.c.status == "pending",
                                                    _out.c.next_at == row.next_at)
                                 .values(next_at=now + LEASE)).rowcount
        if not taken:
            continue
        error = post(hook, row.id, row.event, row.payload, now)
        attempts = row.attempts + 1
        if error is None:
            values: dict[str, Any] = {"status": "delivered", "attempts": attempts, "delivered_at": engine.clock(),
                                      "last_error": None}
            counts["delivered"] += 1
        elif attempts >= MAX_ATTEMPTS:
            values = {"status": "dead", "attempts": attempts, "last_error": error[:500]}
            counts["dead"] += 1
        else:
            values = {"attempts": attempts, "next_at": now + backoff(attempts), "last_error": error[:500]}
            counts["retrying"] += 1
        with engine.db.write() as conn:
            conn.execute(update(_out).where(_out.c.id == row.id).values(**values))
    return counts


def run_pass(engine: Engine) -> dict[str, int]:
    """Queue what the log asks for, then send what is due (one worker pass)."""
    hooks = configured(engine)
    if not hooks:
        return {"queued": 0, "delivered": 0, "retrying": 0, "dead": 0}
    queued = enqueue(engine, hooks)
    return {"queued": queued, **deliver(engine, hooks)}


def backlog(conn: Connection) -> dict[str, int]:
    """Deliveries by status (pending, dead; delivered ones are history)."""
    rows = conn.execute(select(_out.c.status, func.count()).where(_out.c.status != "delivered")
                        .group_by(_out.c.status)).all()
    counts: dict[str, int] = {status: int(n) for status, n in rows}
    return {"pending": int(counts.get("pending", 0)), "dead": int(counts.get("dead", 0))}
