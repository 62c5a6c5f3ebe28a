"""Runs started on schedule: each deployed process with a timer-cycle start event (``tiergate worker``).

Each pass of the worker looks at the latest deployment's processes whose own start event has a
``timeCycle`` (``tiergate.bpmn.schedule`` says when each is due) and starts a run of each one that
is due, as ``system:scheduler``: routed to its tier as any run, from the definitions deployed at
the time of the pass, with empty start data; the run goes past its start event at once.

Exactly once: the run's row and a ``scheduled_starts`` row keyed by (process, start event, due
time) are written in one transaction, the key first (``INSERT ... ON CONFLICT DO NOTHING``). A
second worker at the same moment finds the key taken (on PostgreSQL it waits for the first one's
commit) and rolls its run back; a worker killed mid-way leaves neither row, so the due time is
still due for the next pass. Nothing is started before the first ``tiergate deploy`` (the files are
drafts), nor for a process no longer in the deployed catalog or no longer with the cycle.

Versions: the schedule is the one the live deployment defines, and its runs start from the live
deployment, as every start does. A cycle that stays the same across deployments (of other files,
or of the process's file with other changes) is one schedule: a due time that passed before the new
deployment is still started, by the next pass, from the version live then (its ``started`` entry
says the deployment). A changed cycle, or a cycle removed and deployed again, begins at its
deployment: no due time from before it is started (``_floor``); a removed cycle starts nothing.

    from tiergate.schedules import run_pass, listing
    started = run_pass(engine, now)     # [Started(...)] for each run started
    listing(engine, now)                # each schedule: its next due time, what it started
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tiergate import testhold
from tiergate.actors import Actor
from tiergate.bpmn.schedule import Cycle, CycleStart, cycle_starts, due_times, parse
from tiergate.errors import TiergateError
from tiergate.log import format_time, utc
from tiergate.definitions.home import TIER_FILES
from tiergate.store.tables import Deployment, DeploymentFile, ScheduledStart

#: Who starts the runs of a schedule (in their ``started`` entry and as their ``started_by``).
SCHEDULER = Actor("system", "scheduler")

_table = ScheduledStart.__table__  # type: ignore[attr-defined]
_deployments = Deployment.__table__  # type: ignore[attr-defined]
_files = DeploymentFile.__table__  # type: ignore[attr-defined]


@dataclass
class Started:
    run: str
    process: str
    start_event: str
    due: datetime
    status: str = ""
    error: str | None = None


@dataclass(frozen=True)
class _Schedule:
    process: str
    start: CycleStart
    cycle: Cycle | None
    problem: str | None
    anchor: datetime      # since when its cycle has been live as it is: a cycle without a start date begins then


class _Taken(Exception):
    """Another worker started a run for this due time first: this one's run is rolled back."""


def _schedules(engine: Any) -> list[_Schedule]:
    """The cycle start events of the deployed processes (none before the first deployment), read
    again only when a new deployment was made."""
    number = engine.latest_deployment_number()
    if number is None or engine.drafts:  # (an engine on the drafts, `--drafts`, starts nothing on schedule)
        return []
    cached = engine.__dict__.get("_schedules")
    if cached is not None and cached[0] == number:
        return list(cached[1])
    if engine.deployment is None or int(engine.deployment["number"]) != number:
        engine.reload()
    definitions = engine.definitions
    catalog = {entry.id for entry in definitions.require_catalog().processes}
    out = []
    with engine.db.read() as conn:
        history = [dict(r._mapping) for r in conn.execute(
            select(_deployments.c.number, _deployments.c.at, _deployments.c.manifest)
            .where(_deployments.c.number <= number).order_by(_deployments.c.number.desc()))]
    bodies: dict[str, str | None] = {}
    for process_id, definition in sorted(definitions.processes.items()):
        if process_id not in catalog:
            continue
        try:
            starts = cycle_starts(definition.model)
        except TiergateError:
            continue
        for start in starts:
            anchor = _live_since(engine, history, TIER_FILES[1].format(id=process_id), start, bodies)
            try:
                out.append(_Schedule(process_id, start, parse(start.cycle, anchor), None, anchor))
            except ValueError as err:
                out.append(_Schedule(process_id, start, None, str(err), anchor))
    engine.__dict__["_schedules"] = (number, out)
    return list(out)


def _live_since(engine: Any, history: list[dict[str, Any]], path: str, start: CycleStart,
                bodies: dict[str, str | None]) -> datetime:
    """Since when the cycle of ``start`` has been live as it is: the first of the latest deployments
    whose file at ``path`` has that start event with that cycle. A redeployment of other files, or of
    this one with other changes (a step's title, a gate), does not move the schedule on; a changed
    cycle, or one removed and deployed again, begins at its deployment."""
    since = history[0]["at"]
    digest = (history[0]["manifest"] or {}).get(path)
    for row in history[1:]:
        other = (row["manifest"] or {}).get(path)
        if other is None:
            break
        if other != digest:
            if other not in bodies:
                bodies[other] = _cycle_in(engine, other, path, start.start_event)
            if bodies[other] != start.cycle:
                break
        since = row["at"]
    return utc(since)


def _cycle_in(engine: Any, digest: str, path: str, start_event: str) -> str | None:
    """The timeCycle of start event ``start_event`` in the deployed file with SHA-256 ``digest``, or None."""
    from tiergate.bpmn.xml import BPMN_NS, parse_bpmn

    with engine.db.read() as conn:
        body = conn.execute(select(_files.c.body).where(_files.c.sha256 == digest)).scalar()
    if body is None:
        return None
    try:
        tree = parse_bpmn(body, path)
    except Exception:  # noqa: BLE001 - an old file that no longer parses had no cycle that is live now
        return None
    for element in tree.getroot().iter(f"{{{BPMN_NS}}}startEvent"):
        if element.get("id") == start_event:
            text = element.findtext(f"{{{BPMN_NS}}}timerEventDefinition/{{{BPMN_NS}}}timeCycle")
            return text.strip() if text is not None else None
    return None


def _floor(conn: Connection, schedule: _Schedule) -> datetime | None:
    """No due time before the cycle went live is started, once its start event has started runs before (under
    this cycle before it was removed, or another): a schedule new to the process catches up one due time."""
    before = conn.execute(select(_table.c.due_at).where(
        _table.c.process_id == schedule.process, _table.c.start_event == schedule.start.start_event).limit(1)).first()
    return schedule.anchor if before is not None else None


def _last(conn: Connection, schedule: _Schedule) -> tuple[datetime, int] | None:
    row = conn.execute(select(_table.c.due_at, _table.c.seq).where(
        _table.c.process_id == schedule.process, _table.c.start_event == schedule.start.start_event,
        _table.c.cycle == schedule.start.cycle).order_by(_table.c.due_at.desc()).limit(1)).first()
    return (utc(row.due_at), int(row.seq)) if row is not None else None


def _claim(schedule: _Schedule, due: datetime, seq: int, run_id: str, now: datetime) -> Any:
    def claim(conn: Connection) -> None:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        result = conn.execute(insert(_table).values(
            process_id=schedule.process, start_event=schedule.start.start_event, due_at=utc(due),
            cycle=schedule.start.cycle, seq=seq, run_id=run_id, started_at=utc(now))
            .on_conflict_do_nothing().returning(_table.c.run_id))
        if result.first() is None:  # (rowcount is not told on every driver)
            raise _Taken
        _hold()
    return claim


#: Tests set this to a PATH: after taking a due time's key, the worker writes PATH and waits inside
#: the open transaction, so it can be killed mid-way.
HOLD_ENV = "TIERGATE_TEST_SCHEDULE_HOLD"


def _hold() -> None:
    testhold.hold(HOLD_ENV)


def run_pass(engine: Any, now: datetime | None = None) -> list[Started]:
    """Start one run of each schedule due by ``now`` (default: the engine's clock)."""
    moment = now or engine.clock()
    started: list[Started] = []
    for schedule in _schedules(engine):
        if schedule.cycle is None:
            continue
        with engine.db.read() as conn:
            last, floor = _last(conn, schedule), _floor(conn, schedule)
        due, _following = due_times(schedule.cycle, schedule.anchor, last, moment, floor)
        if due is None:
            continue
        run_id = secrets.token_hex(6)
        item = Started(run_id, schedule.process, schedule.start.start_event, due[0])
        detail = {"scheduled": {"start_event": schedule.start.start_event, "cycle": schedule.start.cycle,
                                "due": format_time(due[0]), "seq": due[1]}}
        try:
            info = engine._start_routed(schedule.process, None, SCHEDULER, run_id=run_id, started=detail,
                                        claim=_claim(schedule, due[0], due[1], run_id, moment))
        except _Taken:
            continue
        except TiergateError as err:
            _record_failure(engine, schedule, due[0], err)
            item.run = ""
            item.error = (f"{schedule.process}: the start due {format_time(due[0])} on schedule failed, and is "
                          f"tried again on the next pass: {err.message}")
            started.append(item)
            continue
        item.status = info.status.value if hasattr(info.status, "value") else str(info.status)
        started.append(item)
    return started


def _record_failure(engine: Any, schedule: _Schedule, due: datetime, err: TiergateError) -> None:
    """A scheduled start that failed (no run to log it in): one row of ``door_refusals`` per due time
    and worker (``tiergate.doorlog``; attempt ``scheduled_start``, problem the process), not one per pass."""
    from tiergate import doorlog

    told = engine.__dict__.setdefault("_schedule_failures", set())
    key = (schedule.process, schedule.start.start_event, due)
    if key in told:
        return
    if doorlog.record(engine, door="engine", attempt="scheduled_start", code=err.code, problem=schedule.process,
                      actor=SCHEDULER):
        told.add(key)


def listing(engine: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each schedule of the deployed processes: its cycle, next due time, and the runs it started."""
    moment = now or engine.clock()
    out = []
    for schedule in _schedules(engine):
        item: dict[str, Any] = {"process": schedule.process, "start_event": schedule.start.start_event,
                                "cycle": schedule.start.cycle, "next_due": None, "started": 0, "last_due": None,
                                "last_run": None, "finished": False, "error": schedule.problem}
        with engine.db.read() as conn:
            last, floor = _last(conn, schedule), _floor(conn, schedule)
            item["started"] = int(conn.execute(select(func.count()).select_from(_table).where(
                _table.c.process_id == schedule.process, _table.c.start_event == schedule.start.start_event,
                _table.c.cycle == schedule.start.cycle)).scalar() or 0)
            if last is not None:
                item["last_due"] = format_time(last[0])
                item["last_run"] = conn.execute(select(_table.c.run_id).where(
                    _table.c.process_id == schedule.process, _table.c.start_event == schedule.start.start_event,
                    _table.c.due_at == utc(last[0]))).scalar()
        if schedule.cycle is not None:
            due, following = due_times(schedule.cycle, schedule.anchor, last, moment, floor)
            next_due = due[0] if due is not None else following
            item["next_due"] = format_time(next_due) if next_due is not None else None
            item["finished"] = next_due is None
        out.append(item)
    return out
