"""Reading and writing runs and definition snapshots.

The hot path (``get_run``, ``save_transition``) runs fixed statements on the DBAPI cursor
(``tiergate.store.db.DriverSQL``); the rest uses SQLAlchemy Core. Both read and write the same
columns the same way: JSON as ``json.dumps`` text, times as aware UTC datetimes.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tiergate.actors import SYSTEM
from tiergate.errors import DefinitionTamperedError
from tiergate.jsonutil import content_hash
from tiergate.jsontext import Encoded, encode, holds_encoded
from tiergate.lifecycle import RunStatus
from tiergate.log import GENESIS, RunHead, chain, state_hash, utc, write
from tiergate.log import LogEvent
from tiergate.store import parts as state_parts
from tiergate.store.db import DriverSQL, bind_time, driver_cursor, encode_json, read_time
from tiergate.store.tables import Definition, Run

_runs = Run.__table__  # type: ignore[attr-defined]
_definitions = Definition.__table__  # type: ignore[attr-defined]

_SELECT_RUN = DriverSQL(
    "SELECT id, process_id, definition_version, tier, status, CAST(state AS TEXT), version, started_by, created_at, "
    "updated_at, ended_at, log_seq, log_head FROM runs WHERE id = {p}")
# Two spellings of the guarded update: a step that leaves the status as it was does not assign
# it, so SQLite leaves the two status indexes alone (two fewer pages written per commit).
_UPDATE_RUN = DriverSQL(
    "UPDATE runs SET status = {p}, state = {json}, version = {p}, updated_at = {p}, ended_at = {p}, log_seq = {p}, "
    "log_head = {p}, ready_for = {p} WHERE id = {p} AND version = {p} AND log_seq = {p}")
_UPDATE_RUN_SAME_STATUS = DriverSQL(
    "UPDATE runs SET state = {json}, version = {p}, updated_at = {p}, ended_at = {p}, log_seq = {p}, "
    "log_head = {p}, ready_for = {p} WHERE id = {p} AND version = {p} AND log_seq = {p}")
_SELECT_PARTS = DriverSQL("SELECT path, key, pos, body FROM run_parts WHERE run_id = {p} ORDER BY path, pos")
_CLEAR_PARTS = DriverSQL("DELETE FROM run_parts WHERE run_id = {p} AND path = {p}")
_DELETE_PART = DriverSQL("DELETE FROM run_parts WHERE run_id = {p} AND path = {p} AND key = {p}")
_WRITE_PART = DriverSQL("INSERT INTO run_parts (run_id, path, key, pos, body) VALUES ({p}, {p}, {p}, {p}, {p}) "
                        "ON CONFLICT (run_id, path, key) DO UPDATE SET pos = excluded.pos, body = excluded.body")


@dataclass
class RunRecord:
    id: str
    process_id: str
    definition_version: str
    tier: int
    status: RunStatus
    state: dict[str, Any]
    version: int
    started_by: str
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    log_seq: int
    log_head: str
    #: ``state`` as stored (its JSON text: the root, when parts are stored apart), when this record
    #: is what a write just stored or a state read back in parts.
    state_json: str | None = field(default=None, repr=False, compare=False)
    #: The parts of ``state`` stored apart (``tiergate.store.parts``); None: not known. ``from_row``
    #: (lists, the inbox) reads the run row alone: a state stored in parts has them as ``null``
    #: there, which is enough for its steps, data and messages; ``get_run`` reads them all.
    parts: dict[str, state_parts.Stored] | None = field(default=None, repr=False, compare=False)

    @property
    def head(self) -> RunHead:
        return RunHead(self.id, self.process_id, self.definition_version, self.tier, self.log_seq, self.log_head)

    @classmethod
    def from_row(cls, row: Any) -> "RunRecord":
        m = row._mapping
        return cls(id=m["id"], process_id=m["process_id"], definition_version=m["definition_version"],
                   tier=m["tier"], status=RunStatus(m["status"]), state=m["state"], version=m["version"],
                   started_by=m["started_by"], created_at=utc(m["created_at"]), updated_at=utc(m["updated_at"]),
                   ended_at=utc(m["ended_at"]) if m["ended_at"] else None, log_seq=m["log_seq"],
                   log_head=m["log_head"])


def save_definition(conn: Connection, version: str, process_id: str, kind: str, source: str,
                    body: dict[str, Any], now: datetime) -> None:
    """Store a definition snapshot once per version; a second insert of the same version is a no-op."""
    values = {"version": version, "process_id": process_id, "kind": kind, "source": source, "body": body,
              "created_at": utc(now)}
    dialect = conn.dialect.name
    stmt = (pg_insert(_definitions) if dialect == "postgresql" else sqlite_insert(_definitions)).values(values)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))


def load_definition(conn: Connection, version: str) -> dict[str, Any] | None:
    """The snapshot pinned as ``version``, re-hashed: ``DefinitionTamperedError`` if it was edited."""
    row = conn.execute(select(_definitions.c.body).where(_definitions.c.version == version)).first()
    if row is None:
        return None
    if content_hash(row[0]) != version:
        raise DefinitionTamperedError(
            f"the definition snapshot pinned as version {version[:12]} no longer matches its hash: it was changed "
            "in the database after it was stored, so no run pinned to it is moved. Restore the row from a backup "
            "(`tiergate log verify` lists every changed snapshot).", details={"version": version})
    return row[0]  # type: ignore[no-any-return]


def tampered_definitions(conn: Connection, version: str | None = None) -> list[dict[str, str]]:
    """Every stored snapshot (or only ``version``) whose content does not hash to its version (for
    `tiergate log verify`)."""
    query = select(_definitions.c.version, _definitions.c.process_id, _definitions.c.body)
    if version is not None:
        query = query.where(_definitions.c.version == version)
    rows = conn.execute(query.order_by(_definitions.c.created_at, _definitions.c.version))
    return [{"version": version, "process": process_id} for version, process_id, body in rows
            if content_hash(body) != version]


def get_run(conn: Connection, run_id: str) -> RunRecord | None:
    dialect = conn.dialect.name
    with driver_cursor(conn) as cursor:
        cursor.execute(_SELECT_RUN(dialect), (run_id,))
        row = cursor.fetchone()
    if row is None:
        return None
    (id_, process_id, definition_version, tier, status, state_text, version, started_by, created_at, updated_at,
     ended_at, log_seq, log_head) = row
    state, stored, root = json.loads(state_text), {}, None
    if state_parts.KEY in state:
        with driver_cursor(conn) as cursor:
            cursor.execute(_SELECT_PARTS(dialect), (run_id,))
            stored, root = state_parts.assemble(run_id, state, cursor.fetchall()), state_text
    return RunRecord(id=id_, process_id=process_id, definition_version=definition_version, tier=tier,
                     status=RunStatus(status), state=state, version=version, started_by=started_by,
                     created_at=read_time(created_at), updated_at=read_time(updated_at),
                     ended_at=read_time(ended_at) if ended_at else None, log_seq=log_seq, log_head=log_head,
                     state_json=root, parts=stored)


def _write_parts(conn: Connection, run_id: str, split: state_parts.Split) -> None:
    """Bring the run's rows of ``run_parts`` to what ``split`` says (in the caller's transaction)."""
    dialect = conn.dialect.name
    with driver_cursor(conn) as cursor:
        for path in split.cleared:
            cursor.execute(_CLEAR_PARTS(dialect), (run_id, path))
        if split.deleted:
            cursor.executemany(_DELETE_PART(dialect), [(run_id, path, key) for path, key in split.deleted])
        if split.written:
            cursor.executemany(_WRITE_PART(dialect), [(run_id, *row) for row in split.written])


def insert_run(conn: Connection, *, run_id: str, process_id: str, definition_version: str, tier: int,
               status: RunStatus, state: dict[str, Any], started_by: str, events: list[LogEvent],
               now: datetime, ready_for: str | None = None) -> RunRecord:
    head = RunHead(run_id, process_id, definition_version, tier, 0, GENESIS)
    split = state_parts.split(state, {})
    state_json = encode_json(state) if split is None else split.root
    rows = chain(head, events, now, state_hash(state_json))
    record = RunRecord(id=run_id, process_id=process_id, definition_version=definition_version, tier=tier,
                       status=status, state=state, version=1, started_by=started_by, created_at=utc(now),
                       updated_at=utc(now), ended_at=utc(now) if status.is_final else None,
                       log_seq=rows[-1]["seq"] if rows else 0, log_head=rows[-1]["hash"] if rows else GENESIS,
                       state_json=state_json, parts={} if split is None else split.stored)
    # The state goes in as the text just hashed (an ``Encoded``: the engine's JSON serializer takes its
    # text), not encoded a second time: a Tier 1 run's state holds its whole task tree. A large one
    # goes in as its root, the parts left out (``tiergate.store.parts``).
    stored = Encoded(state, state_json) if split is None else Encoded(json.loads(split.root), split.root)
    conn.execute(insert(_runs).values(
        id=record.id, process_id=process_id, definition_version=definition_version, tier=tier,
        status=status.value, state=stored, version=1, started_by=started_by,
        created_at=record.created_at, updated_at=record.updated_at, ended_at=record.ended_at,
        log_seq=record.log_seq, log_head=record.log_head, ready_for=ready_for))
    write(conn, rows)
    if split is not None:
        split.cleared = []  # a new run has no rows yet
        _write_parts(conn, run_id, split)
    return record


def save_transition(conn: Connection, run: RunRecord, state: dict[str, Any], status: RunStatus,
                    events: list[LogEvent], now: datetime, ready_for: str | None = None) -> RunRecord | None:
    """Write a run's new state and its log entries, if nobody changed the run since it was read.

    ``ready_for`` is the inbox's key of the new state's ready steps (``tiergate.claims.ready_key``;
    None: unknown, the inbox looks at the run itself).

    Returns the run as now stored, or None when the run's version or log anchor moved (the
    caller decides between a retry and a conflict). Must run inside the caller's transaction.
    """
    split = state_parts.split(state, run.parts)
    state_json = encode_json(state) if split is None else split.root
    if not events and state_json != (run.state_json or encode_json(run.state)):
        # Every change of state is bound by an entry (log.verify re-hashes the state against it).
        events = [LogEvent("state_saved", SYSTEM)]
    rows = chain(run.head, events, now, state_hash(state_json))
    ended_at = run.ended_at if run.ended_at is not None or not status.is_final else utc(now)
    dialect = conn.dialect.name
    log_seq, log_head = (rows[-1]["seq"], rows[-1]["hash"]) if rows else (run.log_seq, run.log_head)
    params: tuple[Any, ...] = (
        state_json, run.version + 1, bind_time(dialect, utc(now)),
        None if ended_at is None else bind_time(dialect, ended_at), log_seq, log_head, ready_for, run.id,
        run.version, run.log_seq)
    guard = ((_UPDATE_RUN_SAME_STATUS(dialect), params) if status == run.status
             else (_UPDATE_RUN(dialect), (status.value, *params)))
    if not write(conn, rows, guard):
        return None
    if split is not None:
        _write_parts(conn, run.id, split)
    return RunRecord(id=run.id, process_id=run.process_id, definition_version=run.definition_version,
                     tier=run.tier, status=status, state=state, version=run.version + 1, started_by=run.started_by,
                     created_at=run.created_at, updated_at=utc(now), ended_at=ended_at, log_seq=log_seq,
                     log_head=log_head, state_json=state_json, parts={} if split is None else split.stored)


class RecentRuns:
    """The runs one engine stored last, kept as stored, so that its next change of one of them
    need not read the run back first.

    Safe because a change is written by the guarded UPDATE of ``save_transition``: it matches
    the run's row only at the version and log anchor the change was computed from, and every
    change of a run moves one of them (``store.save_transition``, ``log.append_detached``). If
    another process or engine changed the run meanwhile, the UPDATE matches nothing and the
    caller computes the change again on the row read fresh. A run is taken out when it is used
    and put back only after a commit, so a failed transaction leaves nothing behind. The state
    is kept as its JSON text and parsed on each use: no caller can change the kept copy.
    """

    def __init__(self, size: int = 512):
        self.size = size
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()
        self._lock = threading.Lock()  # a program may share its engine between threads

    def take(self, run_id: str) -> RunRecord | None:
        with self._lock:
            kept = self._runs.pop(run_id, None)
        if kept is None or kept.state_json is None:
            return None
        return RunRecord(id=kept.id, process_id=kept.process_id, definition_version=kept.definition_version,
                         tier=kept.tier, status=kept.status, state=_copy_kept(kept),
                         version=kept.version, started_by=kept.started_by, created_at=kept.created_at,
                         updated_at=kept.updated_at, ended_at=kept.ended_at, log_seq=kept.log_seq,
                         log_head=kept.log_head, state_json=kept.state_json, parts=kept.parts)

    def put(self, record: RunRecord) -> None:
        """Keep ``record`` (as just committed) for the next change of its run. A run that is over
        (completed, cancelled) is not kept: every change of one is refused, and a refusal is judged
        on the run read from the database anyway (``Engine._attempt``). Kept, it would only push
        out runs still moving, and hold its state until 512 other runs had come: a Tier 1 run's
        task tree and records, dozens of objects that outlive the cyclic garbage collector's young
        generations and so bring on its full collections (tens of milliseconds each)."""
        if record.state_json is None or record.status.is_final:
            with self._lock:
                self._runs.pop(record.id, None)
            return
        with self._lock:
            self._runs[record.id] = record
            if len(self._runs) > self.size:
                self._runs.popitem(last=False)


def _copy_kept(record: RunRecord) -> dict[str, Any]:
    """A kept state to hand out: parsed again from its text, except each ``Encoded`` part (a Tier 1
    run's task tree and its frozen step records), which is never changed and so is shared instead
    of parsed again. A state stored in parts is never parsed from its text (the root leaves the parts out)."""
    if not holds_encoded(record.state) and not record.parts:
        return json.loads(record.state_json or encode_json(record.state))  # type: ignore[no-any-return]
    # The plain parts go through JSON together: one encoding and one parse, not one of each per key.
    # Each key keeps its place: a plain one's is held (None) until the parse fills it in.
    copy: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for key, value in record.state.items():
        if isinstance(value, Encoded):
            copy[key] = value
        elif isinstance(value, dict) and holds_encoded(value):
            copy[key] = _copy_part(value)
        else:
            copy[key] = None
            plain[key] = value
    if plain:
        parsed = json.loads(encode(plain))
        for key in plain:
            copy[key] = parsed[key]
    return copy


def _copy_part(value: Any) -> Any:
    if isinstance(value, Encoded):
        return value
    if holds_encoded(value):  # a Tier 1 run's step records (tiergate.bpmn.records)
        return {key: item if isinstance(item, Encoded) else _copy_part(item) for key, item in value.items()}
    return json.loads(encode(value))


def active_tier1_states(conn: Connection, page: int = 500) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each active Tier 1 run's id and stored state (its run row's JSON, parts not joined), by id, read a page
    at a time: what a message or a signal looks through for the runs waiting for it."""
    last = ""
    while True:
        rows = conn.execute(select(_runs.c.id, _runs.c.state)
                            .where(_runs.c.status == RunStatus.ACTIVE.value, _runs.c.tier == 1, _runs.c.id > last)
                            .order_by(_runs.c.id).limit(page)).all()
        for run_id, state in rows:
            yield run_id, (json.loads(state) if isinstance(state, str) else state) or {}
        if len(rows) < page:
            return
        last = rows[-1][0]


def list_runs(conn: Connection, *, process_id: str | None = None, status: str | None = None,
              started_by: str | None = None, limit: int = 1000) -> list[RunRecord]:
    query = select(_runs)
    if process_id:
        query = query.where(_runs.c.process_id == process_id)
    if status:
        query = query.where(_runs.c.status == status)
    if started_by:
        query = query.where(_runs.c.started_by == started_by)
    query = query.order_by(_runs.c.created_at.desc(), _runs.c.id).limit(limit)
    return [RunRecord.from_row(row) for row in conn.execute(query)]
