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
  names a run, else in ``credential_events``.
- A caller without a principal is an operator on the database directly: the actor it claims
  (``--actor``, ``TIERGATE_ACTOR``) is taken as today. Only the ``direct`` door has no principal.
- What the engine refuses (an agent on a person's step, the wrong role, four eyes) it refuses
  for every door alike: the actor's kind and id come from the credential, never from a claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiergate.actors import Actor
from tiergate.credentials import DIRECT, Credential, Credentials, canonical_principal
from tiergate.engine import Engine
from tiergate.errors import ActorMismatchError, TiergateError, UsageError


@dataclass(frozen=True)
class Caller:
    """Who is at a door. ``principal`` is None only on the ``direct`` door (an operator)."""

    door: str = DIRECT
    principal: Actor | None = None

    def __post_init__(self) -> None:
        if self.principal is None and self.door != DIRECT:
            raise ValueError("only the direct door may come without a principal")

    @classmethod
    def from_credential(cls, credential: Credential) -> "Caller":
        return cls(door=credential.door, principal=credential.principal)

    @classmethod
    def fixed(cls, actor: Actor) -> "Caller":
        """A door on the database directly that serves one actor (``tiergate mcp --actor``)."""
        return cls(door=DIRECT, principal=actor)


class Operations:
    """What every door may do, over one engine."""

    def __init__(self, engine: Engine):
        self.engine = engine

    # --- who acts -----------------------------------------------------------------------------

    def acting(self, caller: Caller, claimed: str | None = None, *, run: str | None = None,
               step: str | None = None, attempt: str = "act") -> Actor:
        """The actor of an attempt through ``caller``'s door, with that door recorded on it."""
        if caller.principal is None:
            return self.engine.actor(claimed).through(caller.door)
        who = caller.principal.through(caller.door)
        if claimed is None or not claimed.strip():
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
        if data is not None and not isinstance(data, dict):
            raise UsageError("the start data must be a JSON object.", code="invalid_data")
        who = self.acting(caller, actor, attempt="start")
        return self.engine.described(self.engine.start(process, data or {}, actor=who))

    def status(self, caller: Caller, run: str) -> dict[str, Any]:
        return self.engine.described(self.engine.status(run))

    def run_view(self, caller: Caller, run: str) -> dict[str, Any]:
        """A run's page: the run (read through ``status``, so the same read rule holds), its log with
        the check of its chain, the Tier 1 diagram's element states and the decisions evaluated."""
        return self.engine.run_view(run, self.status(caller, run))

    def guide(self, caller: Caller, run: str, actor: str | None = None, channel: Any = "cli") -> dict[str, Any]:
        reader = (self.acting(caller, actor, run=None, attempt="guide")
                  if caller.principal is not None or actor is not None or self.engine.default_actor else None)
        return self.engine.guide(run, actor=reader, channel=channel)

    def complete(self, caller: Caller, run: str, step: str | None, evidence: Any,
                 actor: str | None = None) -> dict[str, Any]:
        who = self.acting(caller, actor, run=run, step=step, attempt="complete")
        if step is not None and evidence is None:
            evidence = {}
        return self.engine.described(self.engine.complete(run, step, evidence, actor=who))

    def skip(self, caller: Caller, run: str, step: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        who = self.acting(caller, actor, run=run, step=step, attempt="skip")
        return self.engine.described(self.engine.skip(run, step, reason, actor=who))

    def cancel(self, caller: Caller, run: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        who = self.acting(caller, actor, run=run, attempt="cancel")
        return self.engine.described(self.engine.cancel(run, reason, actor=who))

    def retry(self, caller: Caller, run: str, step: str, data: dict[str, Any] | None = None,
              actor: str | None = None) -> dict[str, Any]:
        who = self.acting(caller, actor, run=run, step=step, attempt="retry")
        return self.engine.described(self.engine.retry(run, step, data, actor=who))

    def message(self, caller: Caller, name: str, correlate: dict[str, Any] | None = None,
                data: dict[str, Any] | None = None, actor: str | None = None) -> dict[str, Any]:
        """Deliver message ``name`` to the one Tier 1 run waiting for it; the caller is its sender."""
        who = self.acting(caller, actor, attempt="message")
        return self.engine.described(self.engine.message(name, correlate, data, actor=who))

    def runs(self, caller: Caller, process: str | None = None, status: str | None = None,
             mine: bool = False) -> list[dict[str, Any]]:
        """Runs, newest first; ``mine``: only those the caller's principal started."""
        started_by = None
        if mine:
            if caller.principal is None:
                raise UsageError("'mine' needs a caller with a principal (a token or a fixed actor).", code="usage")
            started_by = str(caller.principal)
        return self.engine.runs(process=process, status=status, started_by=started_by)

    # --- the inbox and claims --------------------------------------------------------------

    def inbox(self, caller: Caller, actor: str | None = None) -> list[dict[str, Any]]:
        """Every ready step the caller's principal (or, on the direct door, ``actor``) may do now."""
        return self.engine.inbox(self.acting(caller, actor, attempt="inbox"))

    def claim(self, caller: Caller, run: str, step: str, actor: str | None = None) -> dict[str, Any]:
        return self.engine.claim(run, step, self.acting(caller, actor, run=run, step=step, attempt="claim"))

    def unclaim(self, caller: Caller, run: str, step: str, actor: str | None = None) -> dict[str, Any]:
        return self.engine.unclaim(run, step, self.acting(caller, actor, run=run, step=step, attempt="unclaim"))

    def assign(self, caller: Caller, run: str, step: str, assignee: str, actor: str | None = None) -> dict[str, Any]:
        who = self.acting(caller, actor, run=run, step=step, attempt="assign")
        return self.engine.assign(run, step, canonical_principal(assignee), actor=who)

    # --- the log, metrics and gaps ------------------------------------------------------------

    def log(self, caller: Caller, run: str | None = None) -> list[dict[str, Any]]:
        return self.engine.log(run)

    def verify_log(self, caller: Caller) -> dict[str, Any]:
        return self.engine.verify_log()

    def metrics(self, caller: Caller, process: str | None = None, tier: int | None = None,
                since: str | None = None) -> dict[str, Any]:
        return self.engine.metrics(process=process, tier=tier, since=since)

    def gaps(self, caller: Caller, since: str | None = None) -> dict[str, Any]:
        return self.engine.gaps(since=since)

    def report(self, caller: Caller, since: str | None = None) -> dict[str, Any]:
        """What `tiergate report` shows, as data: {"metrics": the metrics answer, "gaps": the gaps answer}.
        Read through ``metrics``, so whoever may not read the metrics may not read the report."""
        return self.engine.report_data(since=since, metrics=self.metrics(caller, since=since))
