"""The execution log: one append-only table for every tier. This is the only module that writes it.

Each entry is chained to the previous entry of the same run: ``hash = sha256(canonical JSON of
the entry's fields + prev_hash)``. The run row keeps the newest ``seq`` and ``hash`` (``log_seq``,
``log_head``), so ``verify`` detects an edited, deleted, reordered or truncated chain. An entry
written with a change of the run's state also binds the sha256 of that state (``state_hash``),
so ``verify`` finds an edited ``runs.state`` too. What the chain cannot find (a rewrite by
someone who can write the whole database) the Merkle tree and signed checkpoints do
(``tiergate.logtree``, ``tiergate.checkpoints``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import groupby
from typing import Any, Iterable, Iterator

from sqlalchemy import Connection, Text, cast, select

from tiergate.actors import Actor
from tiergate.jsonutil import canonical_json
from tiergate.store.db import DriverSQL, bind_time, driver_cursor
from tiergate.store import parts as state_parts
from tiergate.store.tables import LogEntry, Run, RunPart
from tiergate.timestamps import format_time, utc

GENESIS = "0" * 64

#: The event vocabulary (architecture.md). Extend it; never rename an event.
EVENTS = frozenset({
    "routed", "started", "step_ready", "step_completed", "step_skipped", "gate_failed", "refused",
    "decision_evaluated", "timer_fired", "escalated", "guidance_served", "completed", "cancelled", "failed",
    "state_saved",  # a change of a run's state that logged nothing else: it binds the new state
    "claimed", "unclaimed", "assigned", "sent_back",
    "message_received", "message_sent",
    "signal_received", "signal_thrown",  # a signal broadcast to runs (tiergate.signals)
    "data_store_written",  # a Tier 1 run wrote a BPMN data store (tiergate.datastores)
})

_log = LogEntry.__table__  # type: ignore[attr-defined]
_runs = Run.__table__  # type: ignore[attr-defined]
_parts = RunPart.__table__  # type: ignore[attr-defined]


@dataclass
class LogEvent:
    """One thing that happened, before it is chained and stored."""

    event: str
    actor: Actor
    step: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    #: ``detail`` as canonical JSON (``canonical_json``), when the caller has it already.
    detail_json: str | None = None
    #: The door the attempt came through: ``direct``, ``token:<id>``, ``session:<id>`` (the Engine sets it).
    door: str | None = None

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown log event '{self.event}'")


@dataclass(frozen=True)
class RunHead:
    """What the log needs to know about a run to append to its chain."""

    run_id: str
    process_id: str
    definition_version: str
    tier: int
    log_seq: int
    log_head: str


# How canonical_json spells a string (UTF-8, not ASCII-escaped).
_json_string = json.encoder.encode_basestring


def _scalar(value: Any) -> str:
    """One field of an entry as canonical JSON: a string, an integer, a number or null."""
    if value is None:
        return "null"
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is int:
        return str(value)
    return canonical_json(value)


def state_hash(state_json: str) -> str:
    """sha256 of a run's state as stored (``store.db.encode_json``): what an entry binds."""
    return hashlib.sha256(state_json.encode("utf-8")).hexdigest()


def entry_hash(row: dict[str, Any], detail_json: str | None = None) -> str:
    """sha256 of the canonical JSON (``canonical_json``: keys sorted, no spaces, UTF-8) of

    ``{"actor": [kind, id], "at", "detail", "door", "duration_s", "event", "prev", "process", "run",
    "seq", "state", "step", "tier", "version"}`` (``"state"`` only for an entry that binds the
    run's state: older entries and refusals hash without it; ``door`` only when it is set: entries
    written before migration 0010 have none). ``detail_json`` is the detail's canonical JSON when the
    caller has it (``chain``). The object is spelled here key by key, in that (sorted) order,
    each value as canonical_json spells it; a test holds it to canonical_json of the object.
    """
    detail = canonical_json(row["detail"]) if detail_json is None else detail_json
    text = _json_string  # the fields that are always strings
    bound = row.get("state_hash")
    state = "" if bound is None else f'"state":{text(bound)},'
    door = row.get("door")
    door_field = "" if door is None else f'"door":{text(door)},'
    material = (f'{{"actor":[{text(row["actor_kind"])},{text(row["actor_id"])}],'
                f'"at":{text(format_time(row["at"]))},"detail":{detail},'
                f'{door_field}'
                f'"duration_s":{_scalar(row["duration_s"])},"event":{text(row["event"])},'
                f'"prev":{text(row["prev_hash"])},"process":{text(row["process_id"])},'
                f'"run":{text(row["run_id"])},"seq":{_scalar(row["seq"])},{state}"step":{_scalar(row["step"])},'
                f'"tier":{_scalar(row["tier"])},"version":{text(row["definition_version"])}}}')
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def chain(head: RunHead, events: Iterable[LogEvent], now: datetime,
          state: str | None = None) -> list[dict[str, Any]]:
    """Turn events into rows chained after ``head``. Pure: nothing is written.

    Each row's ``detail_json`` is its detail's canonical JSON: what is hashed is what is stored.
    ``state``: the hash of the run's state after this change (``state_hash``), bound by every row.
    """
    rows = []
    seq, prev = head.log_seq, head.log_head
    at = utc(now)
    for item in events:
        seq += 1
        detail_json = item.detail_json
        if detail_json is None:
            detail_json = "{}" if item.detail == {} else canonical_json(item.detail)  # step_ready: no detail
        row = {
            "run_id": head.run_id, "seq": seq, "at": at, "process_id": head.process_id,
            "definition_version": head.definition_version, "tier": head.tier, "step": item.step,
            "event": item.event, "actor_kind": item.actor.kind, "actor_id": item.actor.id,
            "duration_s": None if item.duration_s is None else round(item.duration_s, 6),
            "detail_json": detail_json, "prev_hash": prev, "state_hash": state, "door": item.door,
        }
        row["hash"] = prev = entry_hash(row, detail_json)
        rows.append(row)
    return rows


_COLUMNS = ("run_id", "seq", "at", "process_id", "definition_version", "tier", "step", "event", "actor_kind",
            "actor_id", "duration_s", "detail", "prev_hash", "hash", "state_hash", "door")
_COLUMN_LIST = ", ".join(_COLUMNS)
# duration_s and detail need their types spelled out where PostgreSQL cannot infer them (VALUES).
_ROW = "(" + ", ".join("{float}" if c == "duration_s" else "{json}" if c == "detail" else "{p}" for c in _COLUMNS) + ")"
_INSERT = DriverSQL(f"INSERT INTO log_entries ({_COLUMN_LIST}) VALUES {_ROW}")
_MOVE_ANCHOR = DriverSQL("UPDATE runs SET log_seq = {p}, log_head = {p} WHERE id = {p} AND log_seq = {p}")

#: A guard for ``write``: an UPDATE of the run row (its SQL for the connection's dialect, and its
#: parameters) that matches the row only if nobody changed the run since it was read.
Guard = tuple[str, tuple[Any, ...]]


@lru_cache(maxsize=64)
def _insert_after_guard(guard_sql: str, rows: int) -> str:
    """PostgreSQL: the guard and the inserts as one statement; the rows go in only if the guard matched."""
    values = ", ".join([DriverSQL(_ROW)("postgresql")] * rows)
    return (f"WITH moved AS ({guard_sql} RETURNING 1) INSERT INTO log_entries ({_COLUMN_LIST}) "
            f"SELECT entry.* FROM moved, (VALUES {values}) AS entry")


def _params(dialect: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["run_id"], row["seq"], bind_time(dialect, row["at"]), row["process_id"], row["definition_version"],
            row["tier"], row["step"], row["event"], row["actor_kind"], row["actor_id"], row["duration_s"],
            row["detail_json"], row["prev_hash"], row["hash"], row["state_hash"], row["door"])


def write(conn: Connection, rows: list[dict[str, Any]], guard: Guard | None = None) -> bool:
    """Insert chained rows in the caller's transaction.

    With a ``guard``, the rows go in only if the guard's UPDATE matched the run row; returns
    whether it did (False: the caller rolls back and retries on fresh state). On PostgreSQL
    the guard and the inserts are one statement, one round trip.
    """
    dialect = conn.dialect.name
    with driver_cursor(conn) as cursor:
        if guard is not None and rows and dialect == "postgresql":
            params = [*guard[1]]
            for row in rows:
                params.extend(_params(dialect, row))
            cursor.execute(_insert_after_guard(guard[0], len(rows)), params)
            return bool(cursor.rowcount == len(rows))
        if guard is not None:
            cursor.execute(*guard)
            if cursor.rowcount != 1:
                return False
        if rows:
            cursor.executemany(_INSERT(dialect), [_params(dialect, row) for row in rows])
    return True


def append_detached(conn: Connection, head: RunHead, events: list[LogEvent], now: datetime) -> bool:
    """Append entries without touching the run's state, e.g. a refusal.

    Moves the run's chain anchor only if nobody else appended meanwhile; returns False if
    someone did (the caller retries with a fresh head).
    """
    rows = chain(head, events, now)
    guard = (_MOVE_ANCHOR(conn.dialect.name), (rows[-1]["seq"], rows[-1]["hash"], head.run_id, head.log_seq))
    return write(conn, rows, guard)


def entries(conn: Connection, run_id: str | None = None, *, events: Iterable[str] | None = None,
            limit: int | None = None) -> list[dict[str, Any]]:
    query = select(_log)
    if events is not None:
        query = query.where(_log.c.event.in_(list(events)))
    if run_id is not None:
        query = query.where(_log.c.run_id == run_id).order_by(_log.c.seq)
    else:
        query = query.order_by(_log.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


@dataclass
class Break:
    run_id: str
    seq: int
    entry_id: int | None
    problem: str


def _stored_state(state_text: str | None) -> tuple[str, Any]:
    """The state hash of a run's stored state, read back as text (spelled as it was written), and the state."""
    state = json.loads(state_text if state_text is not None else "null")
    return state_hash(json.dumps(state)), state


def _part_digests(conn: Connection, run_id: str | None) -> dict[str, dict[str, dict[str, Any]]]:
    """Per run, the digests of its parts stored apart, worked out from the rows (``store.parts``)."""
    query = select(_parts.c.run_id, _parts.c.path, _parts.c.key, _parts.c.pos, _parts.c.body).order_by(
        _parts.c.run_id, _parts.c.path, _parts.c.pos)
    if run_id is not None:
        query = query.where(_parts.c.run_id == run_id)
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for owner, rows in groupby(conn.execute(query), key=lambda row: row[0]):
        found[owner] = state_parts.digests([(path, key, pos, body) for _, path, key, pos, body in rows])
    return found


def verify(conn: Connection, run_id: str | None = None) -> tuple[int, int, Break | None]:
    """Check every run's chain (or only ``run_id``'s), and each run's current state and definition
    version against its newest entry that binds them. Returns (runs checked, entries checked, the
    earliest break or None)."""
    run_query = select(_runs.c.id, _runs.c.log_seq, _runs.c.log_head, _runs.c.definition_version,
                       cast(_runs.c.state, Text).label("state"))
    log_query = select(_log).order_by(_log.c.run_id, _log.c.seq)
    if run_id is not None:
        run_query, log_query = run_query.where(_runs.c.id == run_id), log_query.where(_log.c.run_id == run_id)
    runs = {row.id: row for row in conn.execute(run_query)}
    parts = _part_digests(conn, run_id)
    heads = {run_id: (row.log_seq, row.log_head) for run_id, row in runs.items()}
    checked_entries = 0
    seen_runs: set[str] = set()
    breaks: list[Break] = []

    def rows_by_run() -> Iterator[tuple[str, list[dict[str, Any]]]]:
        current: str | None = None
        bucket: list[dict[str, Any]] = []
        for row in conn.execute(log_query):
            mapping = dict(row._mapping)
            if mapping["run_id"] != current and current is not None:
                yield current, bucket
                bucket = []
            current = mapping["run_id"]
            bucket.append(mapping)
        if current is not None:
            yield current, bucket

    for run_id, rows in rows_by_run():
        seen_runs.add(run_id)
        prev = GENESIS
        for expected_seq, row in enumerate(rows, start=1):
            checked_entries += 1
            problem = None
            if row["seq"] != expected_seq:
                problem = f"entry seq {expected_seq} is missing (found seq {row['seq']} next): an entry was deleted"
            elif row["prev_hash"] != prev:
                problem = "its prev_hash does not match the entry before it: entries were deleted or reordered"
            elif entry_hash(row) != row["hash"]:
                problem = "its content does not match its hash: the entry was edited"
            if problem:
                breaks.append(Break(run_id, row["seq"], row["id"], problem))
                break
            prev = row["hash"]
        else:
            head = heads.get(run_id)
            if head is None:
                breaks.append(Break(run_id, len(rows), rows[-1]["id"], "entries exist for a run that has no run row"))
            elif head != (len(rows), prev):
                breaks.append(Break(run_id, len(rows) + 1, None,
                                    f"the run's anchor expects {head[0]} entries, the log has {len(rows)}: "
                                    "the newest entries were deleted or replaced"))
            else:
                found = _state_break(run_id, rows, runs[run_id], parts.get(run_id, {}))
                if found is not None:
                    breaks.append(found)
    for run_id, (seq, _head) in heads.items():
        if run_id not in seen_runs and seq > 0:
            breaks.append(Break(run_id, 1, None, f"the run's anchor expects {seq} entries, the log has none"))
    # The first break in the order entries were written (a truncated chain sorts last).
    first = min(breaks, key=lambda b: (b.entry_id is None, b.entry_id or 0, b.run_id), default=None)
    return len(heads), checked_entries, first


def _state_break(run_id: str, rows: list[dict[str, Any]], run: Any,
                 parts: dict[str, dict[str, Any]]) -> Break | None:
    """The run row's state and definition version against the newest entry that binds them, and
    the parts of its state stored apart against the digests the state lists."""
    last = rows[-1]
    if run.definition_version != last["definition_version"]:
        return Break(run_id, last["seq"], last["id"],
                     f"the run's definition version {run.definition_version[:12]} is not the version "
                     f"{last['definition_version'][:12]} its log entries bind: runs.definition_version was edited")
    bound = next((row for row in reversed(rows) if row.get("state_hash") is not None), None)
    if bound is None:  # written before states were bound (migration 0008)
        return None
    try:
        current, state = _stored_state(run.state)
    except ValueError:
        current, state = None, None
    if current != bound["state_hash"]:
        return Break(run_id, bound["seq"], bound["id"],
                     f"the run's stored state does not match the state its entry seq {bound['seq']} binds: "
                     "runs.state was edited")
    listed = (state.get(state_parts.KEY) if isinstance(state, dict) else None) or {}
    for path in sorted(set(listed) | set(parts)):
        if parts.get(path) != listed.get(path):
            return Break(run_id, bound["seq"], bound["id"],
                         f"the part {path} of the run's state, stored apart, does not match the digest its state "
                         f"(bound by entry seq {bound['seq']}) lists: run_parts was edited")
    return None
