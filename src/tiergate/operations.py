"""One layer of operations over ``Engine``: the one place that says what a door may do.

Every door calls it: the CLI on the database directly, the stdio MCP server, and the server's
HTTP doors (MCP over HTTP and the JSON API; the web pages later). Each call names its
``Caller``: the door (``direct``, ``token:<id>``, ``session:<id>``) and, when a credential
proved it, the principal. Operations answer plain data (dicts and lists) or raise a
``TiergateError``; each door renders them its own way (the JSON envelope, a page).

    ops = Operations(engine)
    caller = Caller.from_credential(Credentials(engine).authenticate(token))
    ops.complete(caller, run_id, "review", {"approved": True})        # acts as the token's principal
    ops.complete(caller, run_id, "review", {...}, actor="human:frank")  # ActorMismatchError, logged

Rules:
- A caller with a principal acts as that principal only. An ``actor`` naming anyone else is
  refused with ``actor_mismatch`` and logged: as ``refused`` in the run's log when the attempt
  names a run, else in ``credential_events`` and as a row of ``door_refusals``.
- A refusal that reaches no run (a read that needs the auditor role, ``actor_mismatch`` outside a
  run, a message no run waits for) is a row of ``door_refusals`` (``tiergate.doorlog``): the
  caller's ``via`` (``api``, ``mcp``, ``mcp-stdio``, ``web``), the attempt, the code and reason,
  the principal and the credential.
- A caller without a principal is an operator on the database directly: the actor it claims
  (``--actor``, ``TIERGATE_ACTOR``) is taken as today. Only the ``direct`` door has no principal.
- What the engine refuses (an agent on a person's step, the wrong role, four eyes) it refuses
  for every door alike: the actor's kind and id come from the credential, never from a claim.
- A caller with a principal reads only the runs ``tiergate.reads`` lets them read; any other run
  is answered ``not_found``, as if it did not exist (an attempt on it is still logged as
  ``refused`` in its log, reason ``not_a_reader``). Lists (runs, the log) hold only readable
  runs; the whole log's check, metrics and gaps are for auditors (metrics of one process also
  for its owner's role). The direct door without a principal reads everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiergate import doorlog, inputs
from tiergate.actors import Actor
from tiergate.credentials import DIRECT, Credential, Credentials, canonical_principal
from tiergate.engine import Engine
from tiergate.errors import (ActorMismatchError, GateFailedError, NotFoundError, RefusedError, TiergateError,
                             UsageError)
from tiergate.reads import AUDITOR, Readers


@dataclass(frozen=True)
class Caller:
    """Who is at a door. ``principal`` is None only on the ``direct`` door (an operator).

    ``door`` names the credential (``direct``, ``token:<id>``, ``session:<id>``); ``via`` the way
    in (``api``, ``mcp``, ``mcp-stdio``, ``web``, ``engine``), as a row of ``door_refusals`` names it.
    """

    door: str = DIRECT
    principal: Actor | None = None
    via: str = "engine"

    def __post_init__(self) -> None:
        if self.principal is None and self.door != DIRECT:
            raise ValueError("only the direct door may come without a principal")

    @classmethod
    def from_credential(cls, credential: Credential, via: str = "api") -> "Caller":
        return cls(door=credential.door, principal=credential.principal, via=via)

    @classmethod
    def fixed(cls, actor: Actor, via: str = "mcp-stdio") -> "Caller":
        """A door on the database directly that serves one actor (``tiergate mcp --actor``)."""
        return cls(door=DIRECT, principal=actor, via=via)


class Operations:
    """What every door may do, over one engine."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.readers = Readers(engine)

    # --- who reads (tiergate.reads) -------------------------------------------------------------

    def readable(self, caller: Caller, run: str, *, attempt: str | None = None, step: str | None = None) -> None:
        """Raise ``not_found`` unless the caller may read ``run``; an ``attempt`` on it is logged first."""
        if caller.principal is None or self.readers.may_read(caller.principal, run):
            return
        if attempt is not None:
            self._refuse_unread(caller, run, step, attempt)
        raise _unknown(run)

    def _refuse_unread(self, caller: Caller, run: str, step: str | None, attempt: str) -> None:
        assert caller.principal is not None
        try:
            self.engine.refuse(run, caller.principal.through(caller.door, caller.via), step, attempt, RefusedError(
                f"{caller.principal} may not read run {run}, so may not act on it.", reason="not_a_reader",
                details={"run": run}))
        except TiergateError:
            pass  # logged (or the run is gone): the caller hears not_found either way

    def _unread(self, caller: Caller, run: str, step: str | None, attempt: str,
                act: Any) -> dict[str, Any]:
        """Do ``act``; a refusal or failed gate on a run the caller may not read is answered
        ``not_found`` (the engine logged it). Success needs no check: who may act may read."""
        try:
            return act()  # type: ignore[no-any-return]
        except (RefusedError, GateFailedError):
            if caller.principal is not None and not self.readers.may_read(caller.principal, run):
                raise _unknown(run) from None
            raise

    def _auditor(self, caller: Caller, attempt: str, what: str, process: str | None = None) -> None:
        """Refuse (403) and record a read of ``what`` that needs the auditor role; it reaches no run."""
        if caller.principal is None or self.readers.reads_all(caller.principal):
            return
        if process is not None and process in self.readers.owned_processes(caller.principal):
            return
        hint = "" if what in ("gaps", "the log's check", "the signal broadcasts") else \
            " A member of a process owner's role may read that process's metrics (name the process)."
        error = RefusedError(f"{caller.principal} may not read {what}: that needs the role '{AUDITOR}' "
                             f"(tiers/roles.yaml).{hint}", reason="actor_not_allowed",
                             details={"actor": str(caller.principal), "needs_role": AUDITOR})
        self._record_refusal(caller, attempt, error)
        raise error

    def _record_refusal(self, caller: Caller, attempt: str, error: TiergateError) -> None:
        """A refusal that reached no run: one row of ``door_refusals`` (``tiergate log refusals``)."""
        doorlog.record(self.engine, door=caller.via, attempt=attempt, code=error.code,
                       problem=error.details.get("reason"),
                       actor=caller.principal, credential=caller.door)

    def _ids(self, caller: Caller, attempt: str, **given: str | None) -> None:
        """Refuse an id or name no run, step or process can have (a NUL character, a lone surrogate:
        ``inputs.check_id``) before anything else, the same on every database; recorded at the door."""
        for field, value in given.items():
            try:
                inputs.check_id(value, field)
            except inputs.InputRefused as err:
                doorlog.record(self.engine, door=caller.via, attempt=attempt, code=err.code,
                               problem=err.details["problem"], facts=err.facts, actor=caller.principal,
                               credential=caller.door)
                raise

    # --- who acts -----------------------------------------------------------------------------

    def acting(self, caller: Caller, claimed: str | None = None, *, run: str | None = None,
               step: str | None = None, attempt: str = "act") -> Actor:
        """The actor of an attempt through ``caller``'s door, with that door recorded on it."""
        if caller.principal is None:
            return self.engine.actor(claimed).through(caller.door, caller.via)
        who = caller.principal.through(caller.door, caller.via)
        if claimed is None or isinstance(claimed, str) and not claimed.strip():
            return who
        try:
            named = canonical_principal(claimed)
        except TiergateError:
            named = None
        if named == caller.principal:
            return who
        error = ActorMismatchError(
            f"this {caller.door.split(':')[0]} belongs to {caller.principal}, and the attempt names {claimed}. "
            f"Act as yourself: leave out --actor (or name {caller.principal}); another principal needs their own "
            "credential.", details={"actor": str(caller.principal), "claimed": claimed})
        if run is not None:
            self.engine.refuse(run, who, step, attempt, error)
        Credentials(self.engine).record_refusal(who, caller.door, attempt=attempt, claimed=claimed)
        self._record_refusal(caller, attempt, error)  # outside a run: listed with the other refusals too
        raise error

    # --- definitions --------------------------------------------------------------------------

    def processes(self, caller: Caller) -> list[dict[str, Any]]:
        return self.engine.processes()

    def route(self, caller: Caller, process: str | None = None,
              data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.engine.route(process, data)]

    def catalog(self, caller: Caller) -> list[dict[str, Any]]:
        """Every process with its routed tier and why: the routing table's matched rule and the
        inputs it saw (the leads' catalog page)."""
        out = []
        for info in self.processes(caller):
            try:
                routed = self.engine.route(info["id"])[0]
                info["route"] = {"matched_rule": routed.matched_rule, "inputs": routed.inputs}
            except TiergateError as err:
                info["route"] = {"matched_rule": None, "inputs": {}, "error": err.message}
            out.append(info)
        return out

    # --- runs ---------------------------------------------------------------------------------

    def start(self, caller: Caller, process: str, data: dict[str, Any] | None = None,
              actor: str | None = None) -> dict[str, Any]:
        self._ids(caller, "start", process=process)
        if data is not None and not isinstance(data, dict):
            raise UsageError("the start data must be a JSON object.", code="invalid_data")
        who = self.acting(caller, actor, attempt="start")
        return self.engine.described(self.engine.start(process, data or {}, actor=who))

    def status(self, caller: Caller, run: str) -> dict[str, Any]:
        self._ids(caller, "read run", run=run)
        self.readable(caller, run)
        return self.engine.described(self.engine.status(run))

    def run_view(self, caller: Caller, run: str) -> dict[str, Any]:
        """A run's page: the run (read through ``status``, so the same read rule holds), its log with
        the check of its chain, the Tier 1 diagram's element states and the decisions evaluated."""
        return self.engine.run_view(run, self.status(caller, run))

    def guide(self, caller: Caller, run: str, actor: str | None = None, channel: Any = "cli") -> dict[str, Any]:
        self._ids(caller, "guide", run=run)
        reader = (self.acting(caller, actor, run=None, attempt="guide")
                  if caller.principal is not None or actor is not None or self.engine.default_actor else None)
        self.readable(caller, run)
        return self.engine.guide(run, actor=reader, channel=channel)

    def complete(self, caller: Caller, run: str, step: str | None, evidence: Any,
                 actor: str | None = None) -> dict[str, Any]:
        self._ids(caller, "complete", run=run, step=step)
        who = self.acting(caller, actor, run=run, step=step, attempt="complete")
        if step is not None and evidence is None:
            evidence = {}
        return self._unread(caller, run, step, "complete",
                            lambda: self.engine.described(self.engine.complete(run, step, evidence, actor=who)))

    def skip(self, caller: Caller, run: str, step: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        self._ids(caller, "skip", run=run, step=step)
        who = self.acting(caller, actor, run=run, step=step, attempt="skip")
        return self._unread(caller, run, step, "skip",
                            lambda: self.engine.described(self.engine.skip(run, step, reason, actor=who)))

    def cancel(self, caller: Caller, run: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        self._ids(caller, "cancel", run=run)
        who = self.acting(caller, actor, run=run, attempt="cancel")
        self.readable(caller, run, attempt="cancel")
        return self.engine.described(self.engine.cancel(run, reason, actor=who))

    def retry(self, caller: Caller, run: str, step: str, data: dict[str, Any] | None = None,
              actor: str | None = None) -> dict[str, Any]:
        self._ids(caller, "retry", run=run, step=step)
        who = self.acting(caller, actor, run=run, step=step, attempt="retry")
        self.readable(caller, run, attempt="retry", step=step)
        return self.engine.described(self.engine.retry(run, step, data, actor=who))

    def message(self, caller: Caller, name: str, correlate: dict[str, Any] | None = None,
                data: dict[str, Any] | None = None, actor: str | None = None) -> dict[str, Any]:
        """Deliver message ``name`` to the one Tier 1 run waiting for it; the caller is its sender."""
        self._ids(caller, "message", name=name)
        who = self.acting(caller, actor, attempt="message")
        try:
            return self.engine.described(self.engine.message(name, correlate, data, actor=who))
        except RefusedError as err:
            if err.reason in ("no_waiting_run", "message_ambiguous"):  # delivered to no run: recorded at the door
                self._record_refusal(caller, "message", err)
            raise

    def signal(self, caller: Caller, name: str, data: Any = None, actor: str | None = None) -> dict[str, Any]:
        """Broadcast signal ``name`` to every Tier 1 run and process that catches it; the caller is its sender.
        It reaching nothing is not an error: ``reached`` is 0 (recorded in door_refusals, ``signal_unreached``)."""
        self._ids(caller, "signal", name=name)
        who = self.acting(caller, actor, attempt="signal")
        return self.engine.signal(name, data, actor=who)

    def signals(self, caller: Caller, all_: bool = False) -> dict[str, Any]:
        """The signal broadcasts still pending (``all_``: the latest ones, delivered too), as `tiergate signals`.
        They name runs and senders of every process: for auditors, as the log's check is."""
        self._auditor(caller, "signals", "the signal broadcasts")
        return self.engine.signal_broadcasts(all_=all_)

    def runs(self, caller: Caller, process: str | None = None, status: str | None = None,
             mine: bool = False) -> list[dict[str, Any]]:
        """Runs, newest first; ``mine``: only those the caller's principal started."""
        self._ids(caller, "read runs", process=process, status=status)
        started_by = None
        if mine:
            if caller.principal is None:
                raise UsageError("'mine' needs a caller with a principal (a token or a fixed actor).", code="usage")
            started_by = str(caller.principal)
        found = self.engine.runs(process=process, status=status, started_by=started_by)
        if caller.principal is None or started_by is not None:
            return found
        readable = self.readers.readable(caller.principal, [r["id"] for r in found])
        return [r for r in found if r["id"] in readable]

    # --- the inbox and claims --------------------------------------------------------------

    def inbox(self, caller: Caller, actor: str | None = None) -> list[dict[str, Any]]:
        """Every ready step the caller's principal (or, on the direct door, ``actor``) may do now."""
        return self.engine.inbox(self.acting(caller, actor, attempt="inbox"))

    def claim(self, caller: Caller, run: str, step: str, actor: str | None = None) -> dict[str, Any]:
        self._ids(caller, "claim", run=run, step=step)
        who = self.acting(caller, actor, run=run, step=step, attempt="claim")
        return self._unread(caller, run, step, "claim", lambda: self.engine.claim(run, step, who))

    def unclaim(self, caller: Caller, run: str, step: str, actor: str | None = None) -> dict[str, Any]:
        self._ids(caller, "unclaim", run=run, step=step)
        who = self.acting(caller, actor, run=run, step=step, attempt="unclaim")
        self.readable(caller, run, attempt="unclaim", step=step)
        return self.engine.unclaim(run, step, who)

    def assign(self, caller: Caller, run: str, step: str, assignee: str, actor: str | None = None) -> dict[str, Any]:
        self._ids(caller, "assign", run=run, step=step)
        who = self.acting(caller, actor, run=run, step=step, attempt="assign")
        target = canonical_principal(assignee)
        return self._unread(caller, run, step, "assign", lambda: self.engine.assign(run, step, target, actor=who))

    # --- the log, metrics and gaps ------------------------------------------------------------

    def log(self, caller: Caller, run: str | None = None) -> list[dict[str, Any]]:
        if run is not None:
            self._ids(caller, "read log", run=run)
            self.readable(caller, run)
        entries = self.engine.log(run)
        if run is not None or caller.principal is None or self.readers.reads_all(caller.principal):
            return entries
        readable = self.readers.readable(caller.principal, {e["run"] for e in entries})
        return [e for e in entries if e["run"] in readable]

    def verify_log(self, caller: Caller) -> dict[str, Any]:
        self._auditor(caller, "log_verify", "the log's check")
        return self.engine.verify_log()

    def metrics(self, caller: Caller, process: str | None = None, tier: int | None = None,
                since: str | None = None) -> dict[str, Any]:
        return self._metrics(caller, "metrics", process=process, tier=tier, since=since)

    def _metrics(self, caller: Caller, attempt: str, process: str | None = None, tier: int | None = None,
                 since: str | None = None) -> dict[str, Any]:
        self._ids(caller, attempt, process=process)
        self._auditor(caller, attempt, "metrics" if process is None else f"the metrics of {process}", process)
        return self.engine.metrics(process=process, tier=tier, since=since)

    def gaps(self, caller: Caller, since: str | None = None) -> dict[str, Any]:
        self._auditor(caller, "gaps", "gaps")
        return self.engine.gaps(since=since)

    def report(self, caller: Caller, since: str | None = None) -> dict[str, Any]:
        """What `tiergate report` shows, as data: {"metrics": the metrics answer, "gaps": the gaps answer}.
        Read through ``metrics``, so whoever may not read the metrics may not read the report."""
        return self.engine.report_data(since=since, metrics=self._metrics(caller, "report", since=since))


def _unknown(run: str) -> NotFoundError:
    """The answer for a run that does not exist, word for word the engine's."""
    return NotFoundError(f"no run '{run}'.", details={"run": run, "see": "runs"})
