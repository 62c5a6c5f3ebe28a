"""The Engine: the one API that the CLI, the MCP server and programs call.

    engine = Engine(home="path/to/home")            # database from TIERGATE_DATABASE_URL or the home
    run = engine.start("support-triage", {"ticket_id": "SUP-1234", ...}, actor="agent:triage-bot")
    engine.complete(run.id, "read-ticket", {"summary": "..."}, actor="agent:triage-bot")
    engine.status(run.id).steps

Every change of a run and its log entries commit in one transaction. An attempt that breaks
the process raises (``RefusedError``, ``GateFailedError``) after its ``refused``/``gate_failed``
entry has been committed to the log; the run itself is unchanged.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tiergate import claims, deployments, inputs, tracing
from tiergate import log as execution_log
from tiergate.actors import SYSTEM, Actor, same_actor
from tiergate.authoring import Authoring
from tiergate.catalogview import CatalogView
from tiergate.credentials import DIRECT  # the door of an actor that names none: a program or the CLI directly
from tiergate.deliveries import Deliveries
from tiergate.definitions.home import TIER_FILES, Definitions, Home, load_definitions, load_roles
from tiergate.errors import (ConflictError, ConnectionLostError, DefinitionError, GateFailedError,
                             InvalidDataError, LimitExceededError, ReasonMissingError, RefusedError,
                             StaleReadError, TiergateError, UsageError)
from tiergate.lifecycle import RunStatus, require_active
from tiergate.log import LogEvent, format_time
from tiergate.runners import Runners
from tiergate.runners.base import Definition, RunContext, Runner, Transition
from tiergate.interventions import Interventions
from tiergate.oversight import Oversight
from tiergate.runview import RunInfo, StepView, run_not_found
from tiergate.settings import resolve
from tiergate.datastores import StoreAccess, StoreConflict
from tiergate.store import runs as store
from tiergate.store.datastores import read as read_store
from tiergate.store.db import Database, default_sqlite_url
from tiergate.store.timers import set_due_at
from tiergate.worklist import Worklist

if TYPE_CHECKING:  # loaded by the commands that use them, so `status` does not pay for DMN or metrics
    from tiergate.router import Route, Router
    from tiergate.definitions.models import Roles

MAX_ATTEMPTS = 8


def _through(events: list[LogEvent], who: Actor) -> list[LogEvent]:
    """Record on each entry of an attempt the door its actor came through."""
    door = who.door or DIRECT
    for item in events:
        item.door = door
    return events


class _Retry(Exception):
    """The run moved under us: roll back and try again on fresh state."""


def _store_conflict(err: StoreConflict | None, run_id: str) -> ConflictError:
    store_id = err.store if err is not None else "?"
    return ConflictError(f"run {run_id}: data store '{store_id}' kept being written by other runs while this move "
                         f"read and wrote it ({MAX_ATTEMPTS} tries); nothing was changed. Try again.",
                         details={"run": run_id, "store": store_id, "see": "status"})


class Engine(Deliveries, Authoring, Oversight, CatalogView, Worklist, Interventions):
    """The one API of tiergate; its reads (``Oversight``), definition changes (``Authoring``),
    messages and signals (``Deliveries``), the definitions' listings (``CatalogView``), the inbox,
    claims and guide (``Worklist``) and skip, cancel and retry (``Interventions``) live in their own
    modules."""

    #: The door a refusal the engine records is listed under when the actor does not name its way in
    #: (``Actor.via``): the CLI on the database sets ``cli``.
    via: str = "engine"

    def __init__(self, home: str | Path | None = None, database_url: str | None = None,
                 clock: Callable[[], datetime] | None = None, drafts: bool = False):
        settings = resolve({"home": str(home) if home is not None else None, "database_url": database_url})
        self.settings = settings
        self.home = Home(Path(settings["home"]))
        self.database_url: str = settings["database_url"] or default_sqlite_url(self.home.root)
        self.default_actor: str | None = settings["actor"]
        self.claim_timeout = timedelta(minutes=float(settings["claim_timeout_minutes"]))
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.runners = Runners()
        self._definitions_by_version: dict[str, Definition] = {}
        self._recent_runs = store.RecentRuns()
        self._db: Database | None = None
        #: Start runs from the files even when something is deployed (`--drafts`, for development).
        self.drafts = drafts

    # --- plumbing ------------------------------------------------------------------------

    @property
    def db(self) -> Database:
        if self._db is None:
            database = Database(self.database_url)
            database.ensure_ready()
            self._db = database
        return self._db

    def raw_database(self) -> Database:
        """The database without the schema check (for `tiergate db upgrade`)."""
        return Database(self.database_url)

    @cached_property
    def draft_definitions(self) -> Definitions:
        """The home's files as they are now (what `check` and `test` read)."""
        return load_definitions(self.home)

    @cached_property
    def deployment(self) -> dict[str, Any] | None:
        """The latest deployment (None before the first `tiergate deploy`: the files are live)."""
        with self.db.read() as conn:
            return deployments.latest(conn)

    def latest_deployment_number(self) -> int | None:
        """The newest deployment's number, read now (None before the first deployment)."""
        with self.db.read() as conn:
            return deployments.latest_number(conn)

    @property
    def deployment_number(self) -> int | str | None:
        """What new runs start from: a deployment number, "drafts" on a deployed database, or None."""
        if self.deployment is None:
            return None
        return "drafts" if self.drafts else int(self.deployment["number"])

    @cached_property
    def definitions(self) -> Definitions:
        """The definitions runs start from: the latest deployment, or the files (drafts)."""
        if self.drafts or self.deployment is None:
            return self.draft_definitions
        with self.db.read() as conn:
            files = deployments.files_of(conn, self.deployment)
        return load_definitions(Home(deployments.materialize(self.home.root, self.deployment, files)))

    @cached_property
    def roles(self) -> Roles | None:
        """The roles a step's actor is checked against: ``tiers/roles.yaml`` read alone while the
        files are live (a step needs nothing else of them), else the deployed definitions'."""
        if "definitions" in self.__dict__ or not (self.drafts or self.deployment is None):
            return self.definitions.roles
        return load_roles(self.home)

    def reload(self) -> None:
        for name in ("definitions", "draft_definitions", "deployment", "roles"):
            self.__dict__.pop(name, None)

    def actor(self, claimed: str | Actor | None) -> Actor:
        if isinstance(claimed, Actor):
            if claimed.kind == "system":
                raise UsageError("the actor kind 'system' cannot be claimed.", code="actor_invalid")
            return claimed
        return Actor.parse(claimed if claimed is not None else self.default_actor)

    def close(self) -> None:
        """Close the database connections; the next use connects (and checks the schema) again."""
        if self._db is not None:
            self._db.dispose()
            self._db = None

    def router(self) -> Router:
        from tiergate.router import Router

        return Router(self.definitions.decisions, self.definitions.require_catalog())

    def _runner_and_definition(self, route: Route) -> tuple[Runner, Definition]:
        expected = TIER_FILES[route.tier].format(id=route.process)
        runner = self.runners.get(route.tier)
        if runner is None or not (self.definitions.home.root / expected).is_file():
            raise RefusedError(f"'{route.process}' is routed to tier {route.tier} by rule {route.matched_rule} of "
                               f"decisions/tier_routing.dmn ({route.rationale}), but {expected} does not exist. "
                               f"Write it, or change the routing rule.", reason="tier_definition_missing",
                               details={"process": route.process, "tier": route.tier, "rule": route.matched_rule,
                                        "missing": expected})
        return runner, runner.load_definition(self.definitions, route.process)

    def _pinned(self, conn: Any, run: store.RunRecord) -> Definition:
        cached = self._definitions_by_version.get(run.definition_version)
        if cached is not None:
            return cached
        body = store.load_definition(conn, run.definition_version)
        if body is None:
            raise DefinitionError(f"run {run.id} is pinned to definition version {run.definition_version[:12]}, "
                                  "which is missing from the database.", code="definition_missing")
        definition = self.runners[run.tier].from_snapshot(body)
        self._definitions_by_version[run.definition_version] = definition
        return definition

    # --- runs ----------------------------------------------------------------------------

    def start(self, process_id: str, data: Any = None, actor: str | Actor | None = None) -> RunInfo:
        """Start a run. ``data`` may be ``inputs.JSONText`` (JSON as received), parsed strictly here."""
        try:  # size and shape first; no run yet, so a refusal is recorded at the door (tiergate.doorlog)
            data = inputs.accept(data, "data")
        except inputs.InputRefused as err:
            self._record_door_refusal("start", actor, err)
            raise
        if data is not None and not isinstance(data, dict):
            raise InvalidDataError("the start data must be a JSON object (--data '{\"field\": ...}').")
        return self._start_routed(process_id, data, self.actor(actor))

    def _start_routed(self, process_id: str, data: dict[str, Any] | None, who: Actor, *, run_id: str | None = None,
                      claim: Callable[[Any], None] | None = None, started: dict[str, Any] | None = None) -> RunInfo:
        """Route and start a run for ``who``; ``claim`` runs first in the run's write transaction (a
        scheduled start's exactly-once row, ``tiergate.schedules``), ``started`` is added to the
        ``started`` entry's detail."""
        route = self.router().route(process_id, data)
        runner, definition = self._runner_and_definition(route)
        now = self.clock()
        run_id = run_id or secrets.token_hex(6)
        from tiergate.router import ROUTING_DECISION

        def first(ctx: RunContext) -> Transition:
            transition = runner.start(definition, data or {}, ctx)
            if started:
                for event in transition.events[:1]:
                    event.detail = {**event.detail, **started}
                    event.detail_json = None
            return transition

        def routed() -> LogEvent:
            return LogEvent("routed", SYSTEM, detail={"decision": ROUTING_DECISION, "inputs": route.inputs,
                                                      "matched_rule": route.matched_rule, "tier": route.tier,
                                                      "rationale": route.rationale})
        return self._begin(process_id, runner, definition, first, routed, who, run_id, now, self.definitions.roles,
                           claim=claim)

    def start_builtin(self, definition: Definition, data: dict[str, Any], who: Actor) -> RunInfo:
        """Start a Tier 1 process shipped inside tiergate (``definition-change``): not routed, always Tier 1.

        For the engine's own modules (``tiergate.change_runs``), which build ``data`` themselves."""
        runner = self.runners[1]
        now = self.clock()
        run_id = secrets.token_hex(6)

        def routed() -> LogEvent:
            return LogEvent("routed", SYSTEM, detail={"builtin": True, "tier": 1,
                                                      "rationale": "a process built into tiergate: always Tier 1"})
        return self._begin(definition.process_id, runner, definition,  # type: ignore[attr-defined]
                           lambda ctx: runner.start(definition, data, ctx), routed, who, run_id, now, self.roles)

    def _begin(self, process_id: str, runner: Runner, definition: Definition,
               first: Callable[[RunContext], Transition], routed: Callable[[], LogEvent], who: Actor, run_id: str,
               now: datetime, roles: Roles | None, claim: Callable[[Any], None] | None = None) -> RunInfo:
        self._definitions_by_version.setdefault(definition.version, definition)
        conflict: StoreConflict | None = None
        for _ in range(MAX_ATTEMPTS):  # again only if a data store the start read and wrote changed meanwhile
            ctx = RunContext(run_id=run_id, actor=who, now=now, roles=roles, stores=self._stores(process_id, run_id))
            transition = first(ctx)
            entry = routed()
            deployments.stamp([entry, *transition.events], self.deployment_number)
            views = runner.steps(definition, transition.state, run={"id": run_id})
            try:
                with self.db.write() as conn:
                    if claim is not None:
                        claim(conn)
                    store.save_definition(conn, definition.version, process_id, runner.kind, definition.source,
                                          definition.snapshot(), now)
                    if ctx.stores.written:
                        ctx.stores.apply(conn, now)
                    self._enqueue_thrown(conn, run_id, transition.events, who, now)
                    record = store.insert_run(conn, run_id=run_id, process_id=process_id,
                                              definition_version=definition.version, tier=runner.tier,
                                              status=transition.status, state=transition.state, started_by=str(who),
                                              events=_through([entry, *transition.events], who), now=now,
                                              ready_for=claims.ready_key(views, transition.status))
                    self._schedule(conn, run_id, runner, transition.state, {})
            except StoreConflict as err:
                conflict = err
                continue
            self._recent_runs.put(record)
            self._broadcast_thrown(run_id, transition.events, who)
            return self._info(record, definition, views)
        raise _store_conflict(conflict, run_id)

    def _stores(self, process_id: str, run_id: str) -> StoreAccess:
        """A move's access to the data stores of ``process_id`` (``tiergate.datastores``), read from the database."""
        def read(process: str, name: str) -> Any:
            with self.db.read() as conn:
                return read_store(conn, process, name)
        return StoreAccess(process_id, run_id, read)

    def status(self, run_id: str) -> RunInfo:
        with self.db.read() as conn:
            run = self._get(conn, run_id)
            definition = self._pinned(conn, run)
        return self._info(run, definition)

    def complete(self, run_id: str, step_id: str | None, evidence: Any, actor: str | Actor | None = None) -> RunInfo:
        """Complete a step. ``step_id`` None closes a Tier 3 run, with ``evidence`` as its optional outcome.

        ``evidence`` may be ``inputs.JSONText`` (JSON as received), parsed strictly here.
        """
        evidence = self._accept(run_id, step_id, "complete", actor, lambda: inputs.accept(evidence, "evidence"))
        who = self.actor(actor)
        if step_id is None:
            self._may_close_without_step(run_id)
        info = self._act(run_id, who, step_id, "complete", {"evidence": evidence},
                         lambda runner, definition, state, ctx: runner.complete_step(definition, state, step_id,
                                                                                     evidence, ctx))
        return self._engine_steps(info)

    def complete_by_engine(self, run_id: str, step_id: str, evidence: dict[str, Any]) -> RunInfo:
        """Complete a step only the engine may do (``actors: system`` in a built-in process)."""
        return self._act(run_id, SYSTEM, step_id, "complete", {"evidence": evidence},
                         lambda runner, definition, state, ctx: runner.complete_step(definition, state, step_id,
                                                                                     evidence, ctx))

    def _engine_steps(self, info: RunInfo) -> RunInfo:
        """Do the steps of a built-in run that the engine itself does (tests, impact, deploy), if any are ready."""
        if info.process != "definition-change" or info.status != RunStatus.ACTIVE.value:
            return info   # (tiergate.change_runs.CHANGE_PROCESS: imported only for such a run)
        from tiergate.change_runs import advance

        return advance(self, info)

    def _accept(self, run_id: str, step_id: str | None, attempt: str, actor: str | Actor | None,
                check: Callable[[], Any]) -> Any:
        """Run ``check`` (an input's size and shape) before any other check; log a refusal by its facts only."""
        try:
            return check()
        except inputs.InputRefused as err:
            self._log_refused_input(run_id, step_id, attempt, actor, err)
            raise

    def _log_refused_input(self, run_id: str, step_id: str | None, attempt: str, actor: str | Actor | None,
                           err: inputs.InputRefused) -> None:
        """A ``refused`` entry of bounded size: the input's sha256 and size, never its content."""
        try:
            who = self.actor(actor)
        except TiergateError:
            self._record_door_refusal(attempt, None, err)  # nobody to log it for on the run
            return
        detail = {"attempt": attempt, "code": err.code, err.field: {"omitted": True, **err.facts.to_dict()},
                  **{k: v for k, v in err.details.items() if k in ("limit", "problem", "pointer")}}
        for _ in range(MAX_ATTEMPTS):
            with self.db.write() as conn:
                run = store.get_run(conn, run_id)
                if run is None:  # no such run: recorded at the door
                    break
                if execution_log.append_detached(
                        conn, run.head, _through([LogEvent("refused", who, step=step_id, detail=detail)], who),
                        self.clock()):
                    return
        else:
            return
        self._record_door_refusal(attempt, who, err)

    def door_of(self, who: Actor | str | None) -> str:
        """The way ``who`` came in (``Actor.via``), else this engine's (``via``): the door of a refusal's row."""
        return (who.via if isinstance(who, Actor) else None) or self.via

    def _record_door_refusal(self, attempt: str, actor: str | Actor | None, err: inputs.InputRefused) -> None:
        """An input refused before it reached a run: one bounded row of ``door_refusals``, never the content."""
        from tiergate import doorlog

        try:
            who: Actor | None = self.actor(actor)
        except TiergateError:
            who = None
        doorlog.record(self, door=self.door_of(who or actor), attempt=attempt, code=err.code, problem=str(err.details.get("problem")
                       or err.details.get("limit") or "") or None, facts=err.facts, actor=who,
                       credential=(who.door or DIRECT) if who is not None else None)

    @staticmethod
    def _schedule(conn: Any, run_id: str, runner: Runner, state: dict[str, Any], before: dict[str, Any]) -> None:
        """Keep the run's next timer due time in its row (Tier 1), for `tiergate worker`.

        The row's due time is always the one of the state saved with it (``before``; a new row's
        is empty), so it is written only when the state's changes: most steps wait for no timer."""
        due_at = getattr(runner, "due_at", None)
        if due_at is not None and due_at(state) != due_at(before):
            set_due_at(conn, run_id, due_at(state))

    @staticmethod
    def _may_retry(run: store.RunRecord) -> None:
        if run.status != RunStatus.FAILED:
            raise RefusedError(f"run {run.id} is {run.status.value}, not failed: there is nothing to retry.",
                               reason="not_failed", details={"run": run.id, "status": run.status.value, "see": "status"})

    def _act(self, run_id: str, who: Actor, step_id: str | None, attempt: str, tried: dict[str, Any],
             change: Callable[[Runner, Any, dict[str, Any], RunContext], Transition],
             claim: Callable[[Any], None] | None = None) -> RunInfo:
        """Judge ``change`` on the run and write it; ``claim`` runs first in the write transaction of a
        change (not of a refusal): a signal broadcast's key for this run (``tiergate.signals``)."""
        with tracing.step_span(attempt, run_id, step_id, who):  # a no-op unless OpenTelemetry is configured
            return self._attempt(run_id, who, step_id, attempt, tried, change, claim)

    def _attempt(self, run_id: str, who: Actor, step_id: str | None, attempt: str, tried: dict[str, Any],
                 change: Callable[[Runner, Any, dict[str, Any], RunContext], Transition],
                 claim: Callable[[Any], None] | None = None) -> RunInfo:
        # The run as this engine stored it last, if it did: a change computed from it is written
        # only if the run is still exactly that (see store.RecentRuns). Anything else (a refusal,
        # a failed gate, an error) is judged again on the run as read from the database.
        recent = self._recent_runs.take(run_id)
        reconnected = False
        conflict: StoreConflict | None = None
        for _ in range(MAX_ATTEMPTS):
            now = self.clock()
            refusal: TiergateError | None = None
            renewed_key: str | None = None
            try:
                run, definition = recent, None
                if recent is not None:
                    definition = self._definitions_by_version.get(recent.definition_version)
                if run is None or definition is None:
                    with self.db.read() as conn:
                        run = recent if recent is not None else self._get(conn, run_id)
                        definition = self._pinned(conn, run)
                runner = self.runners[run.tier]
                ctx = RunContext(run_id=run.id, actor=who, now=now, roles=self.roles,
                                 stores=self._stores(run.process_id, run.id))
                # A person's or agent's step never writes a data store from a stale read (StaleReadError).
                ctx.stores.strict = attempt in ("complete", "skip")
                # Judged outside any transaction: gates, expressions, decisions and templates never run
                # under the write lock. The write below happens only if the run is still the one read
                # (its version and log head), else the attempt is judged again on the run as it is now.
                try:
                    if attempt == "retry":
                        self._may_retry(run)
                    elif not (attempt == "cancel" and run.status == RunStatus.FAILED):
                        require_active(run.id, run.status)
                    if attempt == "cancel":
                        self._may_cancel(run, who)
                    transition = change(runner, definition, run.state, ctx)
                    # The new state's steps: their inbox key is written with the state, and the answer shows them.
                    views = runner.steps(definition, transition.state, run={"id": run.id})
                except (RefusedError, GateFailedError, LimitExceededError, ReasonMissingError, StaleReadError) as err:
                    if recent is not None:
                        raise _Retry from None
                    refusal = err
                    event = "gate_failed" if isinstance(err, GateFailedError) else "refused"
                    detail = {"attempt": attempt, **{k: inputs.loggable(v) for k, v in tried.items()},
                              **err.details, "message": err.message}
                    detail.pop("run", None)
                    if isinstance(err, StaleReadError) and err.refreshed is not None:  # (its inbox key: not under the lock)
                        renewed_key = claims.ready_key(runner.steps(definition, err.refreshed[0], run={"id": run.id}),
                                                       err.refreshed[1])
                with self.db.write() as conn:
                    if ((refusal is None or isinstance(refusal, StaleReadError)) and step_id is not None
                            and attempt in ("complete", "skip")):
                        try:  # a claim is read in the write: it may have been taken since the run was judged
                            claims.require_unclaimed(conn, run.id, step_id, who, now, self.claim_timeout)
                        except RefusedError as err:
                            refusal, event = err, "refused"
                            detail = {"attempt": attempt, **{k: inputs.loggable(v) for k, v in tried.items()},
                                      **err.details, "message": err.message}
                            detail.pop("run", None)
                    refreshed = getattr(refusal, "refreshed", None)
                    if refreshed is not None:  # refused, with the step's data store reads renewed
                        saved = store.save_transition(
                            conn, run, refreshed[0], refreshed[1],
                            _through([LogEvent(event, who, step=step_id, detail=detail), *refreshed[2]], who), now,
                            ready_for=renewed_key)
                        if saved is None:
                            raise _Retry
                        run = saved
                    elif refusal is not None:
                        if not execution_log.append_detached(conn, run.head, _through(
                                [LogEvent(event, who, step=step_id, detail=detail)], who), now):
                            raise _Retry
                    else:
                        if claim is not None:
                            claim(conn)
                        if ctx.stores.written:  # with the move, or not at all (StoreConflict: judged again)
                            ctx.stores.apply(conn, now)
                        deployments.stamp_run(conn, run.id, transition.events)
                        self._enqueue_thrown(conn, run.id, transition.events, who, now)
                        saved = store.save_transition(conn, run, transition.state, transition.status,
                                                      _through(transition.events, who), now,
                                                      ready_for=claims.ready_key(views, transition.status))
                        if saved is None:
                            raise _Retry
                        if step_id is not None and attempt in ("complete", "skip"):
                            claims.release(conn, run.id, step_id)
                        self._schedule(conn, run.id, runner, transition.state, run.state)
                        run = saved
            except _Retry:
                recent = None
                continue
            except StoreConflict as err:  # another run wrote a data store this move read and wrote
                conflict, recent = err, None
                continue
            except ConnectionLostError as err:
                # Broken before the commit was sent: nothing was written, so the attempt is made
                # once more on a new connection. Broken during the commit: only the caller can
                # read back whether it was recorded.
                if err.committed is not False or reconnected:
                    raise
                reconnected, recent = True, None
                continue
            except TiergateError:
                if recent is None:
                    raise
                recent = None  # perhaps only because the remembered run is out of date: ask the database
                continue
            if refusal is not None:
                raise refusal
            self._recent_runs.put(run)
            self._broadcast_thrown(run.id, transition.events, who)
            return self._info(run, definition, views)
        if conflict is not None:
            raise _store_conflict(conflict, run_id)
        raise ConflictError(f"run {run_id} kept changing while this attempt was made ({MAX_ATTEMPTS} tries). "
                            "Read the run again, then try again.", details={"run": run_id, "see": "status"})

    def _may_close_without_step(self, run_id: str) -> None:
        info = self.status(run_id)
        if info.tier != 3:  # only a tier 3 run (conventions) closes without a step
            ready = [s.id for s in info.ready_steps if s.decide is None]
            raise UsageError(f"run {run_id} is a tier {info.tier} run: name the step to complete. Ready now: "
                             f"{', '.join(ready) or 'none'}. Only a tier 3 run is closed without a step.", code="usage",
                             details={"run": run_id, "tier": info.tier, "ready": ready, "see": "guide"})

    @staticmethod
    def _may_cancel(run: store.RunRecord, who: Actor) -> None:
        if who.kind == "human" or same_actor(str(who), run.started_by):
            return
        raise RefusedError(f"{who} may not cancel run {run.id}: agents can only cancel runs they started "
                           f"(this one was started by {run.started_by}). Ask a person to cancel it.",
                           reason="actor_not_allowed", details={"run": run.id, "actor": str(who)})

    def _get(self, conn: Any, run_id: str) -> store.RunRecord:
        run = store.get_run(conn, run_id)
        if run is None:
            raise run_not_found(run_id)
        return run

    def _info(self, run: store.RunRecord, definition: Definition, views: list[StepView] | None = None) -> RunInfo:
        """The run as a door shows it; ``views``: its steps, when the caller has just listed them."""
        runner = self.runners[run.tier]
        data = runner.data(run.state)
        if views is None:
            views = runner.steps(definition, run.state, run={"id": run.id})
        runner.render(views, data, run_id=run.id, process_id=run.process_id,
                      bare_names=runner.instruction_names(definition, run.state, views))
        return RunInfo(id=run.id, process=run.process_id, title=definition.title, tier=run.tier,
                       status=run.status.value, started_by=run.started_by, created_at=format_time(run.created_at),
                       ended_at=format_time(run.ended_at) if run.ended_at else None,
                       definition_version=run.definition_version, data=data, steps=views,
                       timers=list(run.state.get("timers") or []) if run.status.value == "active" else [])

    # --- the log -------------------------------------------------------------------------

    # --- decisions -----------------------------------------------------------------------

    # --- deployments (tiergate.deployments) ------------------------------------------------

    # --- metrics, gaps and the report (tiergate.metrics; definitions in docs/metrics.md) ---

