"""Who may read a run: the one rule every door applies, through ``tiergate.operations``.

    readers = Readers(engine)
    readers.may_read(principal, run_id)          # True or False
    readers.readable(principal, run_ids)         # the ids of those the principal may read

A principal may read a run (its status, guidance, log) when any of these holds:

1. they started it;
2. they are a member of a role the run's process names: the owner's role (tiers/catalog.yaml)
   or a role of any of its steps;
3. they acted in it: any entry of its log by them but a refusal (anyone may attempt, so a
   refused attempt gives no right to read), or they hold or were assigned a claim on one of
   its steps;
4. they may act now on one of its ready steps (what `inbox` lists);
5. they are a member of the role ``auditor`` in tiers/roles.yaml: auditors read every run, the
   whole log, metrics and gaps.

A run someone may not read is answered as if it did not exist (``not_found``). An operator on
the database directly (no principal) reads everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, cast

from sqlalchemy import Connection, or_, select

from tiergate import claims
from tiergate.actors import Actor, same_actor
from tiergate.guidance.context import _may_act as may_act
from tiergate.lifecycle import RunStatus
from tiergate.store import runs as run_store
from tiergate.store.tables import Claim, LogEntry, Run

if TYPE_CHECKING:
    from tiergate.engine import Engine

#: The role whose members read every run, the whole log, metrics and gaps.
AUDITOR = "auditor"
_claims = Claim.__table__  # type: ignore[attr-defined]
_log = LogEntry.__table__  # type: ignore[attr-defined]
_runs = Run.__table__  # type: ignore[attr-defined]
_CHUNK = 500


class _RunSteps:
    def __init__(self, run_id: str, steps: list[Any]):
        self.id, self.steps = run_id, steps


class Readers:
    """The read rule over one engine (roles as the engine has them now)."""

    def __init__(self, engine: "Engine"):
        self.engine = engine
        self._named: dict[tuple[str, str], frozenset[str]] = {}

    def roles_of(self, who: Actor) -> set[str]:
        roles = self.engine.roles
        if roles is None:
            return set()
        return {name for name, role in roles.roles.items() if str(who) in role.members}

    def reads_all(self, who: Actor) -> bool:
        return AUDITOR in self.roles_of(who)

    def owned_processes(self, who: Actor) -> set[str]:
        """The processes whose owner's role ``who`` is a member of."""
        mine = self.roles_of(who)
        catalog = self.engine.definitions.catalog
        return {p.id for p in catalog.processes if p.owner in mine} if catalog is not None else set()

    def may_read(self, who: Actor, run_id: str) -> bool:
        return run_id in self.readable(who, [run_id])

    def readable(self, who: Actor, run_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(run_ids))
        mine = self.roles_of(who)
        if AUDITOR in mine:
            with self.engine.db.read() as conn:
                return {r for part in _chunks(ids) for (r,) in conn.execute(select(_runs.c.id).where(
                    _runs.c.id.in_(part)))}
        found: set[str] = set()
        with self.engine.db.read() as conn:
            for part in _chunks(ids):
                found |= self._readable(conn, who, mine, part)
        return found

    def _readable(self, conn: Connection, who: Actor, mine: set[str], ids: list[str]) -> set[str]:
        records = [run_store.RunRecord.from_row(row) for row in conn.execute(select(_runs).where(_runs.c.id.in_(ids)))]
        found = {r.id for r in records if same_actor(str(who), r.started_by)
                 or mine & self._roles_named(conn, r)}
        rest = [r for r in records if r.id not in found]
        if not rest:
            return found
        ids = [r.id for r in rest]
        found |= {r for (r,) in conn.execute(select(_claims.c.run_id).where(
            _claims.c.run_id.in_(ids), or_(_claims.c.claimed_by == str(who), _claims.c.assigned_by == str(who))))}
        found |= {r for (r,) in conn.execute(select(_log.c.run_id).distinct().where(
            _log.c.run_id.in_(ids), _log.c.actor_kind == who.kind, _log.c.actor_id == who.id,
            _log.c.event != "refused"))}
        active = [r.id for r in rest if r.id not in found and r.status == RunStatus.ACTIVE]
        maybe = {r for (r,) in conn.execute(select(_runs.c.id).where(
            _runs.c.id.in_(active), claims.ready_for(who, self.engine.roles)))} if active else set()
        for run in rest:
            if run.id in maybe and self._may_act_now(conn, run, who):
                found.add(run.id)
        return found

    def _roles_named(self, conn: Connection, run: run_store.RunRecord) -> frozenset[str]:
        key = (run.definition_version, run.process_id)
        named = self._named.get(key)
        if named is None:
            definition = self.engine._pinned(conn, run)
            views = self.engine.runners[run.tier].steps(definition, run.state, run={"id": run.id})
            named = frozenset(role for view in views for role in view.roles)
            self._named[key] = named
        catalog = self.engine.definitions.catalog
        entry = catalog.get(run.process_id) if catalog is not None else None
        return named | {entry.owner} if entry is not None and entry.owner else named

    def _may_act_now(self, conn: Connection, run: run_store.RunRecord, who: Actor) -> bool:
        definition = self.engine._pinned(conn, run)
        views = self.engine.runners[run.tier].steps(definition, run.state, run={"id": run.id})
        roles = self.engine.roles
        return any(view.state == "ready" and view.decide is None
                   and may_act(view, cast(Any, _RunSteps(run.id, views)), who, roles)[0] for view in views)


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]
