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

from tiergate import claims, deployments, guidance, inputs, tracing
from tiergate import log as execution_log
from tiergate.actors import SYSTEM, Actor, canonical_actor, same_actor
from tiergate.definitions.home import TIER_FILES, Definitions, Home, load_definitions, load_roles
from tiergate.definitions.problems import Problem
from tiergate.errors import (ConflictError, ConnectionLostError, DefinitionError, GateFailedError,
                             InvalidDataError, LimitExceededError, NotFoundError, ReasonMissingError, RefusedError,
                             StaleReadError, TiergateError, UsageError)
from tiergate.guidance import Channel
from tiergate.lifecycle import RunStatus, require_active
from tiergate.log import LogEvent, format_time
from tiergate.runners import Runners
from tiergate.runners.base import Definition, RunContext, Runner, Transition
from tiergate.runview import RunInfo, described, ready_in_words, run_not_found, run_summary
from tiergate.settings import resolve
from tiergate.datastores import StoreAccess, StoreConflict
from tiergate.store import runs as store
from tiergate.store.datastores import read as read_store
from tiergate.store.db import Database, default_sqlite_url
from tiergate.store.timers import set_due_at

if TYPE_CHECKING:  # loaded by the commands that use them, so `status` does not pay for DMN or metrics
    from tiergate.definitions.decision_tests import DecisionReport
    from tiergate.router import Route, Router
    from tiergate.definitions.models import Roles

MAX_ATTEMPTS = 8
#: The door of an actor that names none: a program or the CLI on the database directly.
DIRECT = "direct"


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


class Engine:
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

    # --- definitions ---------------------------------------------------------------------

    def check(self) -> list[Problem]:
        """Every problem of the definitions, and of role members not registered once a server is in use."""
        from tiergate.registration import member_problems

        self.reload()
        return [*self.draft_definitions.problems, *member_problems(self)]

    def processes(self) -> list[dict[str, Any]]:
        catalog = self.definitions.require_catalog()
        home = self.definitions.home   # the deployed files, or the drafts
        out = []
        for entry in catalog.processes:
            files = [home.display(p) for p in home.definition_files(entry.id)]
            info = entry.model_dump(mode="json")
            info["definitions"] = files
            try:
                route = self.router().route(entry.id)
                info["tier"], info["rationale"] = route.tier, route.rationale
            except TiergateError as err:
                info["tier"], info["rationale"] = None, f"cannot route: {err.message}"
            runner = self.runners.get(info["tier"]) if info.get("tier") else None
            if runner is not None and (home.root / runner.definition_path.format(id=entry.id)).is_file():
                try:
                    info.update(runner.describe(runner.load_definition(self.definitions, entry.id)))
                except TiergateError:
                    pass  # `tiergate check` reports it
            out.append(info)
        return out

    def router(self) -> Router:
        from tiergate.router import Router

        return Router(self.definitions.decisions, self.definitions.require_catalog())

    def route(self, process_id: str | None = None, data: dict[str, Any] | None = None) -> list[Route]:
        """Where runs of one process (or of every process) go, and why."""
        router = self.router()
        if process_id is not None:
            return [router.route(process_id, data)]
        return [router.route(entry.id, data) for entry in router.catalog.processes]

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

    def skip(self, run_id: str, step_id: str, reason: str, actor: str | Actor | None = None) -> RunInfo:
        reason = self._accept(run_id, step_id, "skip", actor, lambda: inputs.check_reason(reason))
        who = self.actor(actor)
        return self._act(run_id, who, step_id, "skip", {"reason": reason},
                         lambda runner, definition, state, ctx: runner.skip_step(definition, state, step_id,
                                                                                 reason, ctx))

    def cancel(self, run_id: str, reason: str, actor: str | Actor | None = None) -> RunInfo:
        reason = self._accept(run_id, None, "cancel", actor, lambda: inputs.check_reason(reason))
        who = self.actor(actor)

        def cancel(runner: Runner, definition: Any, state: dict[str, Any], ctx: RunContext) -> Transition:
            if not reason or not reason.strip():  # judged with the run, so the attempt is logged
                raise ReasonMissingError("a cancel needs a reason (--reason): it goes into the log.")
            return runner.cancel(definition, state, reason, ctx)

        return self._act(run_id, who, None, "cancel", {"reason": reason}, cancel)

    def retry(self, run_id: str, step_id: str, data: dict[str, Any] | None = None,
              actor: str | Actor | None = None) -> RunInfo:
        """Run the failed element ``step_id`` of a failed Tier 1 run again, after merging ``data`` into its data."""
        data = self._accept(run_id, step_id, "retry", actor, lambda: inputs.accept(data, "data"))
        if data is not None and not isinstance(data, dict):
            raise InvalidDataError("the retry's data must be a JSON object of fields to set.")
        who = self.actor(actor)

        def retry(runner: Runner, definition: Any, state: dict[str, Any], ctx: RunContext) -> Transition:
            if not hasattr(runner, "retry"):
                raise UsageError(f"run {run_id} is a tier {runner.tier} run; `tiergate retry` is for Tier 1 runs.",
                                 code="usage", details={"run": run_id})
            entry = self.definitions.catalog.get(definition.process_id) if self.definitions.catalog else None
            return runner.retry(definition, state, step_id, data or {}, ctx,  # type: ignore[attr-defined]
                                owner=entry.owner if entry is not None else None)

        return self._act(run_id, who, step_id, "retry", {"data": data or {}}, retry)

    def refuse(self, run_id: str, actor: str | Actor, step_id: str | None, attempt: str,
               error: RefusedError) -> RunInfo:
        """Log ``error`` as a refused ``attempt`` on RUN by ``actor`` and raise it.

        For refusals decided before the runner is asked (a door's check, e.g. ``actor_mismatch``).
        """
        who = self.actor(actor)

        def refuse(runner: Runner, definition: Any, state: dict[str, Any], ctx: RunContext) -> Transition:
            raise error

        return self._act(run_id, who, step_id, attempt, {}, refuse)

    def message(self, name: str, correlate: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                actor: str | Actor | None = None) -> RunInfo:
        """Deliver message ``name`` to the one active Tier 1 run waiting for it (tiergate.messaging)."""
        from tiergate.messaging import find_waiting_run

        who = self.actor(actor)
        for field, value in (("correlate", correlate), ("data", data)):
            if value is not None and not isinstance(value, dict):
                from tiergate import doorlog

                error = InvalidDataError(f"a message's {field} must be a JSON object of names and values, not "
                                         f"{type(value).__name__}. Nothing was delivered; send {{...}}.",
                                         details={"field": field, "problem": "not_an_object"})
                doorlog.record(self, door="engine", attempt="message", code=error.code, problem="not_an_object",
                               facts=inputs.facts_of(value), actor=who, credential=who.door or DIRECT)
                raise error
        correlate, data = dict(correlate or {}), data if data is not None else {}
        with self.db.read() as conn:
            try:
                run_id = find_waiting_run(conn, name, correlate)
            except RefusedError as err:
                starts = self._started_by_message(name) if err.reason == "no_waiting_run" else []
                if len(starts) != 1:
                    raise
                run_id = ""
        if not run_id:  # a message start event: the message starts a run (its correlation values are start data)
            run_id = self.start(starts[0], {**correlate, **(data if isinstance(data, dict) else {})}, actor=who).id
        return self._act(run_id, who, None, "message", {"message": name, "correlate": correlate, "data": data},
                         lambda runner, definition, state, ctx: runner.deliver_message(  # type: ignore[attr-defined]
                             definition, state, name, correlate, data, ctx))

    def signal(self, name: str, data: Any = None, actor: str | Actor | None = None,
               door: str = "engine") -> dict[str, Any]:
        """Broadcast signal ``name`` to every Tier 1 run and process that catches it (tiergate.signals)."""
        from tiergate import doorlog, signals

        try:  # size and shape first; a refusal reaches no run, so it is recorded at the door
            data = inputs.accept(data, "data")
        except inputs.InputRefused as err:
            self._record_door_refusal("signal", actor, err)
            raise
        if data is not None and not isinstance(data, dict):
            raise InvalidDataError("a signal's data must be a JSON object of fields (--data '{\"field\": ...}').")
        who = self.actor(actor)
        answer = signals.broadcast(self, name, data or {}, who)
        if answer["reached"] == 0:  # not an error in BPMN: recorded so that it can be found
            doorlog.record(self, door=door, attempt="signal", code="signal_unreached", problem=name[:200],
                           actor=who, credential=who.door or DIRECT)
        return answer

    def _started_by_signal(self, name: str) -> list[str]:
        """The Tier 1 processes of the home whose top-level start event waits for signal ``name``."""
        from tiergate.bpmn.signals import signal_starts

        return [pid for pid, process in sorted(self.definitions.processes.items()) if name in signal_starts(process)]

    def _enqueue_thrown(self, conn: Any, run_id: str, events: list[LogEvent], who: Actor, now: datetime) -> None:
        """In a move's write transaction: the signals it threw go into the outbox (tiergate.signals)."""
        if any(event.event == "signal_thrown" for event in events):
            from tiergate.signals import enqueue_thrown

            enqueue_thrown(self, conn, run_id, events, who, now)

    def _broadcast_thrown(self, run_id: str, events: list[LogEvent], who: Actor) -> None:
        """After a committed move: the signals it threw go to the other runs (tiergate.signals)."""
        if any(event.event == "signal_thrown" for event in events):
            from tiergate.signals import broadcast_thrown

            broadcast_thrown(self, run_id, events, who)

    def _started_by_message(self, name: str) -> list[str]:
        """The Tier 1 processes of the home whose start event waits for message ``name``."""
        from tiergate.bpmn.messages import message_starts

        return [pid for pid, process in sorted(self.definitions.processes.items()) if name in message_starts(process)]

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

    def _record_door_refusal(self, attempt: str, actor: str | Actor | None, err: inputs.InputRefused) -> None:
        """An input refused before it reached a run: one bounded row of ``door_refusals``, never the content."""
        from tiergate import doorlog

        try:
            who: Actor | None = self.actor(actor)
        except TiergateError:
            who = None
        doorlog.record(self, door="engine", attempt=attempt, code=err.code, problem=str(err.details.get("problem")
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

    # --- the inbox and claims (tiergate.claims) ----------------------------------------------

    def inbox(self, actor: str | Actor | None = None) -> list[dict[str, Any]]:
        """Every ready step of an active run that ``actor`` may do now, oldest first (with who claimed it)."""
        return claims.inbox(self, self.actor(actor))

    def claim(self, run_id: str, step_id: str, actor: str | Actor | None = None) -> dict[str, Any]:
        """Take on a ready step: others are refused it (``claimed_by_other``) until released or timed out."""
        return claims.change_claim(self, run_id, step_id, self.actor(actor), "claim")

    def unclaim(self, run_id: str, step_id: str, actor: str | Actor | None = None) -> dict[str, Any]:
        """Release a claim (one's own; the process owner's role may release anyone's)."""
        return claims.change_claim(self, run_id, step_id, self.actor(actor), "unclaim")

    def assign(self, run_id: str, step_id: str, assignee: str | Actor,
               actor: str | Actor | None = None) -> dict[str, Any]:
        """Claim a ready step for ``assignee`` (members of the process owner's role only)."""
        target = assignee if isinstance(assignee, Actor) else Actor.parse(assignee)
        return claims.change_claim(self, run_id, step_id, self.actor(actor), "assign", target)

    def _may_close_without_step(self, run_id: str) -> None:
        info = self.status(run_id)
        if info.tier != 3:  # only a tier 3 run (conventions) closes without a step
            ready = [s.id for s in info.ready_steps if s.decide is None]
            raise UsageError(f"run {run_id} is a tier {info.tier} run: name the step to complete. Ready now: "
                             f"{', '.join(ready) or 'none'}. Only a tier 3 run is closed without a step.", code="usage",
                             details={"run": run_id, "tier": info.tier, "ready": ready, "see": "guide"})

    def described(self, info: RunInfo) -> dict[str, Any]:
        """The run as a dict, each ready step with ``who`` may do it and ``gate_words`` (its gate as
        `tiergate guide` words it): what every door answers for a run (``runview.described``)."""
        return described(info, self._resources(info))

    def ready_in_words(self, info: RunInfo) -> dict[str, dict[str, str]]:
        """Each ready step in words, as `tiergate guide` says it (``runview.ready_in_words``). By step id."""
        return ready_in_words(info, self._resources(info))

    def _resources(self, info: RunInfo) -> dict[str, Any]:
        """The shared schema files of the definition ``info``'s run is pinned to."""
        definition = self._definitions_by_version.get(info.definition_version)
        if definition is None:
            with self.db.read() as conn:
                definition = self._pinned(conn, self._get(conn, info.id))
        return getattr(definition, "resources", {})

    def guide(self, run_id: str, *, actor: str | Actor | None = None, channel: Channel = "cli") -> dict[str, Any]:
        """What to read now for RUN: its tier's guidance wrapper rendered, and each ready step's gate in words."""
        reader = self.actor(actor) if actor is not None or self.default_actor else None
        with self.db.read() as conn:
            run = self._get(conn, run_id)
            definition = self._pinned(conn, run)
        return guidance.guide(self._info(run, definition), definition, run.state, self.definitions,
                              channel=channel, actor=reader)

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

    def data_stores(self, process: str | None = None) -> list[dict[str, Any]]:
        """The BPMN data stores runs have written, each with its current value (``tiergate.datastores``)."""
        from tiergate.datastores import describe
        from tiergate.store.datastores import listing

        with self.db.read() as conn:
            return [describe(value) for value in listing(conn, process)]

    def runs(self, process: str | None = None, status: str | None = None,
             started_by: str | None = None) -> list[dict[str, Any]]:
        if status is not None and status not in {s.value for s in RunStatus}:
            raise UsageError(f"unknown status '{status}'. Use one of: {', '.join(s.value for s in RunStatus)}.",
                             code="usage")
        if started_by is not None and started_by != str(SYSTEM):
            started_by = canonical_actor(started_by)
        with self.db.read() as conn:
            records = store.list_runs(conn, process_id=process, status=status, started_by=started_by)
        return [run_summary(r) for r in records]

    def run_view(self, run_id: str, described: dict[str, Any] | None = None) -> dict[str, Any]:
        """What a run's page shows: the run, its log and its check, the diagram's element states and
        the decisions evaluated (``tiergate.runpage``)."""
        from tiergate.runpage import run_view

        return run_view(self, run_id, described)

    # --- the log -------------------------------------------------------------------------

    def log(self, run_id: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            if run_id is not None:
                self._get(conn, run_id)
            rows = execution_log.entries(conn, run_id)
        return self._log_rows(rows)

    @staticmethod
    def _log_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": r["id"], "at": format_time(r["at"]), "run": r["run_id"], "seq": r["seq"],
                 "process": r["process_id"], "version": r["definition_version"], "tier": r["tier"],
                 "step": r["step"], "event": r["event"], "actor": f"{r['actor_kind']}:{r['actor_id']}",
                 "duration_s": r["duration_s"], "detail": r["detail"], "door": r.get("door"),
                 "hash": r["hash"]} for r in rows]

    # --- decisions -----------------------------------------------------------------------

    def decision_tests(self, only: list[str] | None = None) -> list[DecisionReport]:
        from tiergate.definitions.decision_tests import DecisionReport, run_tests

        decisions = self.draft_definitions.decisions
        unknown = [d for d in only or [] if d not in decisions]
        if unknown:
            raise NotFoundError(f"no decision {', '.join(unknown)} in decisions/. Known: "
                                f"{', '.join(sorted(decisions)) or 'none'}.", details={"decisions": unknown})
        broken = [p for p in self.draft_definitions.errors if p.path.startswith("decisions/")]
        reports = []
        for problem in broken:
            report = DecisionReport(decision=Path(problem.path).stem, source=problem.path)
            report.problems.append(str(problem))
            reports.append(report)
        for decision_id in sorted(only or decisions):
            path = self.home.decisions_dir / "tests" / f"{decision_id}.yaml"
            reports.append(run_tests(decisions[decision_id], path, self.home.display(path)))
        return reports

    def decision_impact(self, new_file: str | Path, against: str | Path | None = None) -> dict[str, Any]:
        """Replay the logged decisions through an edited DMN file and the version in use (``against``,
        by default the deployed one); ``new_file`` may also be a decision id (its draft file)."""
        from tiergate.definitions.decisions import Decision
        from tiergate.impact import impact
        from tiergate.router import ROUTING_DECISION

        new_path = Path(new_file)
        if not new_path.suffix and not new_path.exists():
            new_path = self.home.decisions_dir / f"{new_file}.dmn"
        for path in (new_path, *([Path(against)] if against is not None else [])):
            if not path.is_file():
                raise NotFoundError(f"{path} does not exist. Give the edited DMN file (or a decision id), and "
                                    "--against the version in use if nothing is deployed.")
        decision_id = new_path.name.split(".")[0]
        new = Decision(id=decision_id, xml=new_path.read_bytes(), source=str(new_path), path=new_path)
        if against is None:
            xml, folder = deployments.deployed_decision(self, decision_id)
            old = Decision(id=decision_id, xml=xml, source=f"decisions/{decision_id}.dmn", imports=folder)
        else:
            old = Decision(id=decision_id, xml=Path(against).read_bytes(), source=str(against), path=Path(against))
        for decision in (new, old):
            decision.model.decision(decision_id)  # a clear error if the file lacks it
        with self.db.read() as conn:
            events = ["routed"] if decision_id == ROUTING_DECISION else ["decision_evaluated"]
            logged = [e for e in self._log_rows(execution_log.entries(conn, events=events))
                      if e["event"] == "routed" or e["detail"].get("decision") == decision_id]
        return impact(new, old, self.definitions.catalog, logged, self.home.root)

    # --- deployments (tiergate.deployments) ------------------------------------------------

    def deploy(self, actor: str | Actor | None = None, from_number: int | None = None) -> dict[str, Any]:
        """Record the home's files (or deployment ``from_number``'s again) as the next deployment.

        A deployment the policy refuses has no run to log it in: it is a row of ``door_refusals``."""
        from tiergate.policy import ChangeRefused

        try:
            return deployments.deploy(self, actor, from_number=from_number)
        except ChangeRefused as err:
            from tiergate import doorlog

            who = self.actor(actor)
            doorlog.record(self, door="engine", attempt="deploy", code=err.code,
                           problem=str(err.details.get("kind") or ",".join(err.details.get("kinds", []))) or None,
                           actor=who, credential=who.door or DIRECT)
            raise

    def deployments(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return deployments.listing(conn)

    def decision_diff(self, old: str, new: str) -> dict[str, Any]:
        """Rules added, removed and changed per table between two deployments (numbers) or `drafts`."""
        return deployments.decision_diff(self, old, new)

    def verify_log(self) -> dict[str, Any]:
        from tiergate.store.datastores import tampered as stores_tampered

        with self.db.read() as conn:
            runs, entries, broken = execution_log.verify(conn)
            tampered = store.tampered_definitions(conn)
            stores = stores_tampered(conn)
        return {"runs": runs, "entries": entries, "ok": broken is None and not tampered and not stores,
                "broken": None if broken is None else broken.__dict__, "definitions_tampered": tampered,
                "data_stores_tampered": stores}

    # --- metrics, gaps and the report (tiergate.metrics; definitions in docs/metrics.md) ---

    def metrics(self, process: str | None = None, tier: int | None = None,
                since: str | datetime | None = None, from_log: bool = False) -> dict[str, Any]:
        """Completion, deviations, step times and interventions per process, tier and overall.

        Read from the log summary (``from_log`` counts the log's entries instead: same numbers).
        """
        from tiergate import metrics as log_metrics

        return log_metrics.measure(self, process=process, tier=tier, since=since, from_log=from_log)

    def refold_summary(self) -> int:
        """Rebuild the log summary from the whole log; returns the entries folded."""
        from tiergate import metrics as log_metrics

        return log_metrics.summary.refold(self.db)

    def gaps(self, since: str | datetime | None = None) -> dict[str, Any]:
        """Find, classify (decisions/gap_classification.dmn) and remember gaps in the log."""
        from tiergate import metrics as log_metrics

        return log_metrics.find_gaps(self, since=since)

    def gaps_export(self, fmt: str = "md", since: str | datetime | None = None) -> dict[str, Any]:
        """The open gaps as feedback items, Markdown (``md``) or JSON: {format, items, content}."""
        from tiergate import metrics as log_metrics

        return log_metrics.export_gaps(self, fmt, since=since)

    def report_data(self, since: str | datetime | None = None,
                    metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the report shows, as data: {"metrics", "gaps"} (``metrics``: that answer, if read already)."""
        from tiergate import metrics as log_metrics

        return log_metrics.report_data(self, since=since, answer=metrics)

    def report(self, path: str | Path, since: str | datetime | None = None) -> dict[str, Any]:
        """Write the self-contained HTML report for leads."""
        from tiergate import metrics as log_metrics

        return log_metrics.write_report(self, path, since=since)
