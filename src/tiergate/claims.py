"""The work inbox and claims: who may do which ready step now, and who has taken it on.

    engine.inbox(actor)                        # every ready step this actor may do now, oldest first
    engine.claim(run, step, actor)             # logged `claimed`; others are refused it
    engine.unclaim(run, step, actor)           # logged `unclaimed`
    engine.assign(run, step, "human:bob", actor=owner)   # logged `assigned` (the process owner's role)

A claim holds until it is released, the step is done, or ``claim_timeout_minutes`` pass
(setting; default 8 hours). While it holds, anyone else's ``complete`` or ``skip`` of the step
is refused as ``claimed_by_other`` (``require_unclaimed``, called by the engine in the step's
write transaction) and logged like every refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, delete, insert, or_, select, update

from tiergate import log as execution_log
from tiergate.actors import Actor
from tiergate.errors import ConflictError, RefusedError, TiergateError
from tiergate.guidance.context import _may_act as may_act
from tiergate.lifecycle import RunStatus, require_active
from tiergate.log import LogEvent, format_time, utc
from tiergate.store import runs as run_store
from tiergate.store.tables import Claim, Run

if TYPE_CHECKING:
    from tiergate.definitions.models import Roles
    from tiergate.engine import Engine

_claims = Claim.__table__  # type: ignore[attr-defined]
_runs = Run.__table__  # type: ignore[attr-defined]
MAX_ATTEMPTS = 8


class _Retry(Exception):
    """Someone appended to the run's log meanwhile: roll back and judge again."""


@dataclass
class _Run:
    """What ``may_act`` reads of a run: its id and its steps."""

    id: str
    steps: list[Any] = field(default_factory=list)


def _holder(conn: Connection, run_id: str, step: str, now: datetime, timeout: timedelta) -> dict[str, Any] | None:
    row = conn.execute(select(_claims).where(_claims.c.run_id == run_id, _claims.c.step == step)).first()
    if row is None:
        return None
    claim = dict(row._mapping)
    claim["claimed_at"] = utc(claim["claimed_at"])
    return claim if now - claim["claimed_at"] < timeout else None


def require_unclaimed(conn: Connection, run_id: str, step: str, who: Actor, now: datetime,
                      timeout: timedelta) -> None:
    """Refuse ``who`` a step that someone else holds a claim on."""
    claim = _holder(conn, run_id, step, now, timeout)
    if claim is not None and claim["claimed_by"] != str(who):
        raise RefusedError(f"step '{step}' of run {run_id} is claimed by {claim['claimed_by']} since "
                           f"{format_time(claim['claimed_at'])}. Leave it to them, or ask them (or the process "
                           f"owner) to release it: `tiergate unclaim {run_id} {step}`.", reason="claimed_by_other",
                           details={"run": run_id, "step": step, "claimed_by": claim["claimed_by"]})


def release(conn: Connection, run_id: str, step: str) -> None:
    """The step is done or skipped: its claim goes."""
    conn.execute(delete(_claims).where(_claims.c.run_id == run_id, _claims.c.step == step))


def _owner_members(engine: "Engine", process_id: str) -> set[str]:
    catalog = engine.definitions.require_catalog()
    entry = next((p for p in catalog.processes if p.id == process_id), None)
    roles = engine.definitions.roles
    if entry is None or roles is None or entry.owner not in roles.roles:
        return set()
    return set(roles.roles[entry.owner].members)


def change_claim(engine: "Engine", run_id: str, step: str, who: Actor, action: str,
                 assignee: Actor | None = None) -> dict[str, Any]:
    """``claim``, ``unclaim`` or ``assign`` a ready step; logged in the run's chain, refusals too."""
    for _ in range(MAX_ATTEMPTS):
        now = engine.clock()
        try:
            outcome = _attempt(engine, run_id, step, who, action, assignee, now)
        except _Retry:
            continue
        engine._recent_runs.take(run_id)  # the run's chain moved: its remembered head is out of date
        refusal, holder = outcome
        if refusal is not None:
            raise refusal
        return {"run": run_id, "step": step, "claimed_by": holder,
                "claimed_at": format_time(now) if holder else None}
    raise ConflictError(f"run {run_id} kept changing while this attempt was made. Try again.",
                        details={"run": run_id})


def _attempt(engine: "Engine", run_id: str, step: str, who: Actor, action: str, assignee: Actor | None,
             now: datetime) -> tuple[TiergateError | None, str | None]:
    refusal: TiergateError | None = None
    holder: str | None = None
    with engine.db.write() as conn:
        run = engine._get(conn, run_id)
        definition = engine._pinned(conn, run)
        runner = engine.runners[run.tier]
        views = runner.steps(definition, run.state, run={"id": run.id})
        try:
            require_active(run.id, run.status)
            event, holder = _judge(engine, conn, run, views, step, who, action, assignee, now)
        except RefusedError as err:
            refusal = err
            detail = {"attempt": action, **err.details, "message": err.message}
            detail.pop("run", None)
            events = [LogEvent("refused", who, step=step, detail=detail, door=who.door or "direct")]
        else:
            events = [LogEvent(event, who, step=step, detail={"claimed_by": holder} if holder else {},
                               door=who.door or "direct")]
        # The log first: its guard on the run row serialises attempts on the run, so two claims of
        # one step cannot both pass (the later one is judged again, and sees the first).
        if not execution_log.append_detached(conn, run.head, events, now):
            raise _Retry
        if refusal is None and holder is None:
            release(conn, run.id, step)
        elif refusal is None and holder is not None:
            _hold(conn, run.id, step, holder, now, str(who) if action == "assign" else None)
    return refusal, holder


def _judge(engine: "Engine", conn: Connection, run: Any, views: list[Any], step: str, who: Actor, action: str,
           assignee: Actor | None, now: datetime) -> tuple[str, str | None]:
    view = next((v for v in views if v.id == step), None)
    if view is None or view.state != "ready":
        raise RefusedError(f"step '{step}' of run {run.id} is not ready, so it cannot be claimed, released or "
                           f"assigned. `tiergate inbox` lists the steps waiting for you.", reason="not_ready",
                           details={"run": run.id, "step": step})
    current = _holder(conn, run.id, step, now, engine.claim_timeout)
    owners = _owner_members(engine, run.process_id)
    if action == "unclaim":
        if current is not None and current["claimed_by"] != str(who) and str(who) not in owners:
            raise RefusedError(f"step '{step}' is claimed by {current['claimed_by']}; only they or the process "
                               "owner's role may release it.", reason="claimed_by_other",
                               details={"run": run.id, "step": step, "claimed_by": current["claimed_by"]})
        return "unclaimed", None
    target = who
    if action == "assign":
        assert assignee is not None
        if str(who) not in owners:
            raise RefusedError(f"{who} may not assign steps of run {run.id}: only members of the process owner's "
                               "role may (tiers/catalog.yaml owner, tiers/roles.yaml).", reason="actor_not_allowed",
                               details={"run": run.id, "actor": str(who)})
        target = assignee
    allowed, why = may_act(view, cast(Any, _Run(run.id, views)), target, engine.definitions.roles)
    if not allowed:
        raise RefusedError(f"{target} may not do step '{step}' of run {run.id}: {why}.", reason="actor_not_allowed",
                           details={"run": run.id, "step": step, "actor": str(target)})
    if action == "claim" and current is not None and current["claimed_by"] != str(who):
        raise RefusedError(f"step '{step}' of run {run.id} is already claimed by {current['claimed_by']}.",
                           reason="claimed_by_other",
                           details={"run": run.id, "step": step, "claimed_by": current["claimed_by"]})
    return ("assigned" if action == "assign" else "claimed"), str(target)


def _hold(conn: Connection, run_id: str, step: str, holder: str, now: datetime, assigned_by: str | None) -> None:
    values = {"claimed_by": holder, "claimed_at": now, "assigned_by": assigned_by}
    if conn.execute(update(_claims).where(_claims.c.run_id == run_id, _claims.c.step == step)
                    .values(**values)).rowcount == 0:
        conn.execute(insert(_claims).values(run_id=run_id, step=step, **values))


def ready_key(views: list[Any], status: RunStatus) -> str:
    """Who a run's ready steps are for, as the inbox looks them up (the column ``runs.ready_for``):
    ``|role/kind|...|`` for each ready step that is not the engine's, ``*`` for no role or no kind;
    ``|`` once the run is over. A candidate key, not the answer: four eyes and claims are judged on
    the run itself."""
    if status.is_final:
        return "|"
    # Distinct (roles, actors) first: a multi-instance task's 1,000 ready steps share theirs (and a
    # runner that keeps its views keeps them: runview.StepList).
    pairs = getattr(views, "ready_pairs", None)
    if pairs is None:
        pairs = {(tuple(view.roles), tuple(view.actors)) for view in views
                 if view.state == "ready" and view.decide is None}
    keys = {f"{role}/{kind}" for roles, actors in pairs for role in (roles or ("*",)) for kind in (actors or ("*",))}
    return "|" + "".join(f"{key}|" for key in sorted(keys)) if keys else "|"


def ready_for(who: Actor, roles: Roles | None) -> Any:
    """The SQL condition on ``runs`` of the runs that may have a ready step for ``who``: its key
    names one of ``who``'s roles or none, and ``who``'s kind or none (NULL: not known yet)."""
    mine = [name for name, role in (roles.roles.items() if roles is not None else ()) if str(who) in role.members]
    column = _runs.c.ready_for
    return or_(column.is_(None), *(column.contains(f"|{role}/{kind}|", autoescape=True)
                                   for role in ("*", *mine) for kind in ("*", who.kind)))


def inbox(engine: "Engine", who: Actor) -> list[dict[str, Any]]:
    """Every ready step of an active run that ``who`` may do now, oldest first.

    Only the active runs whose ``ready_for`` may match ``who`` are read (``ready_for``), then each
    ready step is judged as a step is (``may_act``) and claims held by others are left out."""
    now = engine.clock()
    roles = engine.roles
    items = []
    with engine.db.read() as conn:
        candidates = [run_store.RunRecord.from_row(row) for row in conn.execute(
            select(_runs).where(_runs.c.status == RunStatus.ACTIVE.value, ready_for(who, roles)))]
        ids = [run.id for run in candidates]
        claims = {(r.run_id, r.step): r for part in _chunks(ids)
                  for r in conn.execute(select(_claims).where(_claims.c.run_id.in_(part)))}
        due = {r.id: r.due_at for part in _chunks(ids) for r in conn.execute(
            select(_runs.c.id, _runs.c.due_at).where(_runs.c.id.in_(part), _runs.c.due_at.is_not(None)))}
        for run in candidates:
            definition = engine._pinned(conn, run)
            views = engine.runners[run.tier].steps(definition, run.state, run={"id": run.id})
            for view in views:
                if view.state != "ready" or view.decide is not None:
                    continue
                allowed, _ = may_act(view, cast(Any, _Run(run.id, views)), who, roles)
                claim = claims.get((run.id, view.id))
                holder = claim if claim is not None and now - utc(claim.claimed_at) < engine.claim_timeout else None
                if not allowed or (holder is not None and holder.claimed_by != str(who)):
                    continue
                items.append({
                    "run": run.id, "process": run.process_id, "title": definition.title, "tier": run.tier,
                    "step": view.id, "step_title": view.title, "optional": view.optional, "roles": list(view.roles),
                    "ready_at": view.ready_at or format_time(run.created_at),
                    "due": format_time(due[run.id]) if due.get(run.id) is not None else None,
                    "claimed_by": holder.claimed_by if holder is not None else None,
                    "claimed_at": format_time(holder.claimed_at) if holder is not None else None,
                })
    items.sort(key=lambda item: (item["ready_at"], item["run"], item["step"]))
    return items


def _chunks(ids: list[str], size: int = 500) -> Any:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
