"""The log summary: what the metrics need of the log, folded into a few rows per run and per step.

    folded = fold(engine.db)      # read the entries written since the last fold; returns how many
    refold(engine.db)             # forget the summary and fold the whole log again

The log stays the only source: the summary tables (``tiergate.store.tables``, migration 0005)
hold nothing that is not recounted from log entries, this module is the only writer, and the
runners never touch them, so writing a step costs what it did. Metrics over whole processes and
tiers read the summary instead of counting a million entries each time; ``--since`` scopes and
``--from-log`` count the log itself (``metrics.queries``), and a test holds both answers equal.

Every fact folded is a sum, a minimum, a maximum or an "any" (and the per-group counts of runs
move by what each run's change changed), so entries may be folded in any order and in batches
of any size. The fold remembers the greatest entry id it read. On SQLite
writers hold the database's write lock while they append, so entries become visible in id
order. On PostgreSQL they need not: a transaction may commit entry 101 while entry 100's is still
open. Ids below the high-water mark that were not visible are kept as *holes*, with the
snapshot's ``xmax``; each fold reads the holes again, and forgets one once every transaction
that was running when it was seen has ended (the id was rolled back, as retried moves do).

Each fold also extends the Merkle tree over the log (``tiergate.logtree``) up to the first id it
still waits for, in the same transaction and batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tiergate import logtree
from tiergate.metrics import ranks
from tiergate.metrics.deviations import OFF_PATH_SQL, REFUSAL_GROUPS, is_direct_door, refused_sql
from tiergate.metrics.sql import whole_ms
from tiergate.store.credentials import in_use_since
from tiergate.store.db import Database, read_time
from tiergate.store.tables import (LogEntry, SummaryAgentFailure, SummaryBucket, SummaryFold, SummaryGroup, SummaryRun,
                                   SummaryStep)

_log = LogEntry.__table__  # type: ignore[attr-defined]
RUNS = SummaryRun.__table__  # type: ignore[attr-defined]
GROUPS = SummaryGroup.__table__  # type: ignore[attr-defined]
STEPS = SummaryStep.__table__  # type: ignore[attr-defined]
BUCKETS = SummaryBucket.__table__  # type: ignore[attr-defined]
FAILURES = SummaryAgentFailure.__table__  # type: ignore[attr-defined]
_state = SummaryFold.__table__  # type: ignore[attr-defined]

#: Entries read and folded per transaction: bounds how long a fold holds SQLite's write lock.
BATCH = 20_000
#: The advisory lock that queues PostgreSQL folds (SQLite's BEGIN IMMEDIATE queues them there).
FOLD_LOCK = 7142027
#: Run ids per IN list.
_CHUNK = 900
#: Events that are deviations whoever logged them (step_skipped only when a person or agent skipped).
_DEVIATION_EVENTS = frozenset({"refused", "gate_failed", "escalated"})
_FLAGS = ("cancelled", "cancelled_by_human", "failed", "deviated", "flagged")
_T = TypeVar("_T", str, datetime)


def pending(conn: Connection) -> bool:
    """True if the log holds entries the summary (or the Merkle tree) has not folded, or holes to
    look at again."""
    high_water, holes = conn.execute(select(_state.c.high_water, _state.c.holes).where(_state.c.id == 1)).one()
    newest = conn.execute(select(func.max(_log.c.id))).scalar() or 0
    return bool(holes) or newest > high_water or newest > logtree.head(conn).last_id


def fold(db: Database, batch: int = BATCH) -> int:
    """Fold every entry written since the last fold into the summary; returns how many were folded."""
    with db.read() as conn:
        if not pending(conn):
            return 0
    folded = 0
    while True:
        count, more = _fold_batch(db, batch)
        folded += count
        if not more:
            return folded


def refold(db: Database, batch: int = BATCH) -> int:
    """Forget the summary and fold the whole log again."""
    with db.write() as conn:
        _lock(conn)
        for table in (RUNS, GROUPS, STEPS, BUCKETS, FAILURES):
            conn.execute(delete(table))
        conn.execute(update(_state).where(_state.c.id == 1).values(high_water=0, holes=[], entries=0))
    return fold(db, batch)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FOLD_LOCK})


def _entries_sql(dialect: str, where: str) -> str:
    """The columns of an entry that the summary needs, with its off-path flag and refusal kind
    (the partial indexes' predicates of migration 0003), for the entries ``where`` picks."""
    refusal = " ".join(f"WHEN {refused_sql(dialect, kind)} THEN '{kind}'" for kind in REFUSAL_GROUPS)
    return ("SELECT id, run_id, process_id, tier, step, event, actor_kind, at, duration_s, "
            f"CASE WHEN {OFF_PATH_SQL[dialect]} THEN 1 ELSE 0 END, CASE {refusal} ELSE '' END, door "
            f"FROM log_entries WHERE {where}")


def _entries(conn: Connection, where: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Entries read on the DBAPI cursor: SQLAlchemy's result handling would cost more than the
    fold itself. Times stay as the driver gives them until ``_time`` reads the few that matter."""
    dialect = conn.dialect.name
    sql = _entries_sql(dialect, where)
    if dialect != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _time(value: Any) -> datetime:
    """An entry's time as SQLAlchemy reads the column (naive UTC on SQLite, aware on PostgreSQL)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _fold_batch(db: Database, batch: int) -> tuple[int, bool]:
    # The summary is rebuilt from the log: a fold lost to a power cut is folded again.
    with db.write(durable=False) as conn:
        _lock(conn)
        high_water, holes = conn.execute(select(_state.c.high_water, _state.c.holes).where(_state.c.id == 1)).one()
        rows = _entries(conn, "id > ? ORDER BY id LIMIT ?", (high_water, batch))
        hole_ids = [h[0] for h in holes]
        late = _entries(conn, f"id IN ({', '.join('?' * len(hole_ids))})", tuple(hole_ids)) if hole_ids else []
        top = rows[-1][0] if rows else high_water
        if conn.dialect.name == "postgresql":
            holes = _holes(conn, holes, {r[0] for r in late}, high_water, top, {r[0] for r in rows})
        # The Merkle tree grows over the ids known complete: below the first one still awaited.
        _added, tree_more = logtree.extend(conn, min([top, *(h[0] - 1 for h in holes)]), batch)
        if not rows and not late:
            conn.execute(update(_state).where(_state.c.id == 1).values(holes=holes))
            return 0, tree_more
        _apply(conn, rows + late, in_use_since(conn))
        conn.execute(update(_state).where(_state.c.id == 1).values(
            high_water=top, holes=holes, entries=_state.c.entries + len(rows) + len(late),
            updated_at=datetime.now(timezone.utc)))
        return len(rows) + len(late), len(rows) == batch or tree_more


def _holes(conn: Connection, holes: list[list[int]], found: set[int], low: int, top: int,
           seen: set[int]) -> list[list[int]]:
    """The ids still to look for: old holes not found whose writer may still commit, and new gaps.

    Read after the entries, the snapshot's xmin and xmax are at least as new as the entries'
    own: an id missing from them belonged to a transaction that was running (or had ended)
    before ``xmax``. Once ``xmin`` passes that, no such transaction runs any more.
    """
    xmin, xmax = (int(v) for v in conn.execute(text(
        "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() AS s")).one())
    kept = [h for h in holes if h[0] not in found and xmin < h[1]]
    return kept + [[i, xmax] for i in range(low + 1, top) if i not in seen]


def _apply(conn: Connection, rows: Sequence[Any], since: datetime | None = None) -> None:
    """Fold ``rows``; ``since`` is when a server came into use (``direct_door`` deviations count from then)."""
    runs: dict[str, dict[str, Any]] = {}
    steps: dict[tuple[str, int, str, str, str, str], list[Any]] = {}
    failures: dict[tuple[str, str], tuple[str, int]] = {}
    completions: dict[tuple[str, str], str | None] = {}
    buckets: dict[tuple[str, str, int, str, str, int], list[Any]] = {}
    # Plain tuples: reading a Row's fields by name costs more than the rest of the loop.
    for _id, run_id, process_id, tier, step, event, kind, at, duration, off_path, refusal, door in rows:
        key = (process_id, tier, step or "", event, kind, refusal or "")
        counts = steps.get(key)
        if counts is None:
            counts = steps[key] = [0, 0.0, 0, 0]
        counts[0] += 1
        counts[1] += duration or 0.0
        counts[2] += off_path
        direct = door is not None and since is not None and is_direct_door(event, kind, door, read_time(at), since)
        counts[3] += direct
        run = runs.get(run_id)
        if run is None:
            run = runs[run_id] = _empty_run(run_id, process_id, tier)
        if event == "started":
            _merge_start(run, _time(at), kind)
        elif event == "completed":
            run["completed_at"] = _greatest(run["completed_at"], _time(at))
        elif event == "cancelled":
            run["cancelled"] = 1
            if kind == "human":
                run["cancelled_by_human"] = 1
        elif event == "failed":
            run["failed"] = run["flagged"] = 1
        if event in _DEVIATION_EVENTS or (event == "step_skipped" and kind != "system") or off_path or direct:
            run["deviated"] = run["flagged"] = 1
        if step is not None:
            if event == "gate_failed" and kind == "agent":
                failures[(run_id, step)] = (process_id, tier)
            elif event == "step_completed":
                completions[(run_id, step)] = _greatest(completions.get((run_id, step)), kind)
                if duration is not None:
                    _count(buckets, ("step", process_id, tier, step, kind, ranks.bucket_of(duration)), duration)
    _save_runs(conn, runs, buckets)
    _save_steps(conn, steps)
    _save_buckets(conn, buckets)
    _save_failures(conn, failures, completions)


def _empty_run(run_id: str, process_id: str, tier: int) -> dict[str, Any]:
    return {"run_id": run_id, "process_id": process_id, "tier": tier, "at": None, "started_by_kind": None,
            "completed_at": None, **{flag: 0 for flag in _FLAGS}}


def _merge_start(run: dict[str, Any], at: datetime | None, kind: str | None) -> None:
    if at is not None and (run["at"] is None or at < run["at"]):
        run["at"], run["started_by_kind"] = at, kind


def _greatest(a: _T | None, b: _T | None) -> _T | None:
    """The greater of two values, None counting as missing, as SQL's max() does (so actor kinds
    order 'system' > 'human' > 'agent')."""
    return b if a is None else a if b is None else max(a, b)  # type: ignore[type-var]


def _chunks(items: Iterable[str]) -> Iterable[list[str]]:
    items = list(items)
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def _upsert(conn: Connection, table: Any, keys: list[str], set_: Any) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET set_(excluded), built once per dialect and table
    (each table has one): building and keying a statement costs more than a small fold's SQL."""
    cache_key = (conn.dialect.name, table.name)
    statement = _UPSERTS.get(cache_key)
    if statement is None:
        insert = pg_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)
        statement = _UPSERTS[cache_key] = insert.on_conflict_do_update(index_elements=keys,
                                                                       set_=set_(insert.excluded))
    return statement


_UPSERTS: dict[tuple[str, str], Any] = {}


def _count(buckets: dict[Any, list[Any]], key: Any, value: float, times: int = 1) -> None:
    counts = buckets.get(key)
    if counts is None:
        counts = buckets[key] = [0, 0.0]
    counts[0] += times
    counts[1] += times * value


def _save_runs(conn: Connection, runs: dict[str, dict[str, Any]], buckets: dict[Any, list[Any]]) -> None:
    """Merge the runs' new facts into their rows, and move their groups' counts by what changed."""
    if not runs:
        return
    groups: dict[tuple[str, int], dict[str, Any]] = {}
    before: dict[str, tuple[int, int]] = {}
    old_ms: dict[str, int] = {}
    for chunk in _chunks(runs):
        for old in conn.execute(select(RUNS).where(RUNS.c.run_id.in_(chunk))):
            run = runs[old.run_id]
            before[old.run_id] = _group_facts(old._mapping)
            if old.completed_ms is not None:
                old_ms[old.run_id] = old.completed_ms
            _merge_start(run, old.at, old.started_by_kind)
            run["completed_at"] = _greatest(run["completed_at"], old.completed_at)
            for flag in _FLAGS:
                run[flag] = max(run[flag], getattr(old, flag))
    for run_id, run in runs.items():
        run["ended"] = run["cancelled"] | run["failed"]
        deviated, intervened = _group_facts(run)
        was_deviated, was_intervened = before.get(run_id, (0, 0))
        group = groups.setdefault((run["process_id"], run["tier"]),
                                  {"runs_with_deviation": 0, "intervened": 0, "last_completed_run": None})
        group["runs_with_deviation"] += deviated - was_deviated
        group["intervened"] += intervened - was_intervened
        if run["completed_at"] is not None:
            group["last_completed_run"] = _greatest(group["last_completed_run"], run_id)
    columns = [c.name for c in RUNS.columns if c.name not in ("run_id", "completed_ms")]
    conn.execute(_upsert(conn, RUNS, ["run_id"], lambda new: {c: new[c] for c in columns}), list(runs.values()))
    for chunk in _chunks(r for r, run in runs.items() if run["completed_at"] is not None and run["at"] is not None):
        conn.execute(update(RUNS).where(RUNS.c.run_id.in_(chunk))
                     .values(completed_ms=whole_ms(conn.dialect.name, RUNS.c.completed_at, RUNS.c.at)))
        # A run's time moves from the bucket of its old time (if it had one) to that of its new.
        for run_id, ms in conn.execute(select(RUNS.c.run_id, RUNS.c.completed_ms).where(RUNS.c.run_id.in_(chunk))):
            if old_ms.get(run_id) == ms:
                continue
            run = runs[run_id]
            if run_id in old_ms:
                _count(buckets, _run_bucket(run, old_ms[run_id]), old_ms[run_id], -1)
            _count(buckets, _run_bucket(run, ms), ms)
    _save_groups(conn, groups)


def _run_bucket(run: dict[str, Any], ms: int) -> tuple[str, str, int, str, str, int]:
    return ("run", run["process_id"], run["tier"], "", "", ranks.bucket_of(ms, ranks.BOUNDS_MS))


def _group_facts(run: Any) -> tuple[int, int]:
    """(had a deviation, completed and needed intervention) of one run's row."""
    return run["deviated"], int(bool(run["flagged"]) and run["completed_at"] is not None)


def _save_groups(conn: Connection, groups: dict[tuple[str, int], dict[str, Any]]) -> None:
    if not groups:
        return
    for old in conn.execute(select(GROUPS).where(GROUPS.c.process_id.in_(sorted({p for p, _t in groups})))):
        delta = groups.get((old.process_id, old.tier))
        if delta is not None:
            delta["runs_with_deviation"] += old.runs_with_deviation
            delta["intervened"] += old.intervened
            delta["last_completed_run"] = _greatest(delta["last_completed_run"], old.last_completed_run)
    for (process_id, tier), delta in groups.items():
        delta.update(process_id=process_id, tier=tier)
    conn.execute(_upsert(conn, GROUPS, ["process_id", "tier"], lambda new: {
        "runs_with_deviation": new.runs_with_deviation, "intervened": new.intervened,
        "last_completed_run": new.last_completed_run}), list(groups.values()))


def _save_steps(conn: Connection, steps: dict[tuple[str, int, str, str, str, str], list[Any]]) -> None:
    if not steps:
        return
    rows = [{"process_id": k[0], "tier": k[1], "step": k[2], "event": k[3], "actor_kind": k[4], "refusal": k[5],
             "entries": n, "seconds": seconds, "off_path": off, "direct_door": direct}
            for k, (n, seconds, off, direct) in steps.items()]
    keys = ["process_id", "tier", "step", "event", "actor_kind", "refusal"]
    conn.execute(_upsert(conn, STEPS, keys, lambda new: {
        "entries": STEPS.c.entries + new.entries, "seconds": STEPS.c.seconds + new.seconds,
        "off_path": STEPS.c.off_path + new.off_path, "direct_door": STEPS.c.direct_door + new.direct_door}), rows)


def _save_buckets(conn: Connection, buckets: dict[tuple[str, str, int, str, str, int], list[Any]]) -> None:
    """Add the values counted per bucket to their groups' rows (read, added to, written back).

    A row's ``counts`` holds only the buckets that have values, in order: ``[[bucket, values], ...]``.
    """
    if not buckets:
        return
    groups: dict[tuple[str, str, int, str, str], dict[str, Any]] = {}
    for (measure, process_id, tier, step, kind, bucket), (n, total) in buckets.items():
        group = groups.setdefault((measure, process_id, tier, step, kind), {
            "measure": measure, "process_id": process_id, "tier": tier, "step": step, "actor_kind": kind,
            "entries": 0, "total": 0.0, "counts": {}})
        group["entries"] += n
        group["total"] += total
        group["counts"][bucket] = group["counts"].get(bucket, 0) + n
    processes = sorted({key[1] for key in groups})
    for old in conn.execute(select(BUCKETS).where(BUCKETS.c.process_id.in_(processes))):
        stored = groups.get((old.measure, old.process_id, old.tier, old.step, old.actor_kind))
        if stored is not None:
            stored["entries"] += old.entries
            stored["total"] += old.total
            for bucket, n in old.counts:
                stored["counts"][bucket] = stored["counts"].get(bucket, 0) + n
    for group in groups.values():
        group["counts"] = [[b, n] for b, n in sorted(group["counts"].items()) if n]
    conn.execute(_upsert(conn, BUCKETS, ["measure", "process_id", "tier", "step", "actor_kind"], lambda new: {
        "entries": new.entries, "total": new.total, "counts": new.counts}), list(groups.values()))


def _save_failures(conn: Connection, failures: dict[tuple[str, str], tuple[str, int]],
                   completions: dict[tuple[str, str], str | None]) -> None:
    """Record the steps agents failed, and who completed them (the greatest actor kind, as ever)."""
    known: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in _chunks({run for run, _step in [*failures, *completions]}):
        for stored in conn.execute(select(FAILURES).where(FAILURES.c.run_id.in_(chunk))):
            known[(stored.run_id, stored.step)] = dict(stored._mapping)
    new = [pair for pair in failures if pair not in known]
    # A step an agent failed for the first time may have been completed already (a loop in Tier 1,
    # or entries folded out of order): ask the log. max() takes each completion once or twice alike.
    done_before: dict[tuple[str, str], str] = {}
    for chunk in _chunks({run for run, _step in new}):
        query = (select(_log.c.run_id, _log.c.step, func.max(_log.c.actor_kind))
                 .where(_log.c.run_id.in_(chunk), _log.c.event == "step_completed")
                 .group_by(_log.c.run_id, _log.c.step))
        done_before.update({(run, step): kind for run, step, kind in conn.execute(query)})
    changed = []
    for pair in new:
        process_id, tier = failures[pair]
        finisher = _greatest(done_before.get(pair), completions.get(pair))
        changed.append({"run_id": pair[0], "step": pair[1], "process_id": process_id, "tier": tier,
                        "finisher": finisher})
    for pair, row in known.items():
        finisher = _greatest(row["finisher"], completions.get(pair))
        if finisher != row["finisher"]:
            changed.append({**row, "finisher": finisher})
    if changed:
        conn.execute(_upsert(conn, FAILURES, ["run_id", "step"], lambda new_: {"finisher": new_.finisher}), changed)
