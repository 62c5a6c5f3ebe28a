"""tiergate as an MCP server: the tools an agent uses to work through runs, over stdio or HTTP.

    tiergate mcp --actor agent:triage-bot        # started by the MCP client (Claude Code, ...)

    server = build_server(Engine(home="."), Actor.parse("agent:triage-bot"))
    server.run()                                 # stdio until the client closes it

    server = build_server(engine)                # `tiergate serve`: MCP over streamable HTTP at /mcp,
                                                 # each call as the principal of its bearer token

Built on the official MCP SDK's ``MCPServer``. Over stdio the actor is fixed when the server
starts and must be an agent; over HTTP each request's caller is the one ``tiergate.server``
authenticated from its ``Authorization: Bearer`` token (``caller_key`` in the request scope).
No tool takes an actor argument, so an agent cannot act as a person. Every tool calls the same
operation (``tiergate.operations``) the CLI and the HTTP API call and answers with the same JSON envelope as
``--json`` (``tiergate.envelope``): ``{"ok": true, "data": ...}``, or, as a tool *error*,
``{"ok": false, "error": {"code", "message", "details"}}``. Refusals and gate failures are
logged by the engine exactly as for the CLI. Each run's guidance is also a resource
(``tiergate://runs/{run}/guidance``), and ``work_on_run`` is a prompt that starts an agent on a run.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Callable, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ToolAnnotations
from pydantic import Field

from tiergate import __version__, incidents
from tiergate.actors import Actor
from tiergate.engine import Engine
from tiergate.envelope import failure, with_next_step
from tiergate.errors import NotFoundError, TiergateError, UnauthorizedError, UsageError
from tiergate.freshness import Freshness
from tiergate.jsonutil import to_jsonable

# A tool's answers and the server class, re-exported from here as before the split.
from tiergate.mcpanswers import (  # noqa: F401
    Answer,
    Envelope,
    EnvelopeText,
    ErrorBody,
    _argument_errors,
    _crashed,
    _hot_caller,
    _result,
    _success,
    _unknown_arguments,
)
from tiergate.mcpdispatch import _Server
from tiergate.operations import Caller, Operations

INSTRUCTIONS = """\
tiergate keeps you on a defined business process. It decides which step comes next; you do the
work of that step and submit evidence, and nothing moves until the evidence passes the step's
gate. Every attempt, accepted or not, is logged.

How to work:
1. list_processes to find the process for your task; start_run(process, data) to start a run
   (or list_my_runs to pick up one you started).
2. get_guidance(run) before each step: it says what to do now, who may do it, and exactly what
   evidence passes (in words and as a JSON Schema).
3. Do the work, then complete_step(run, step, evidence). If the answer is an error, read
   error.code and error.details (gate_failed lists every failing field by JSON pointer), fix
   the evidence and try again. skip_step is only for optional steps, with a reason.
4. Repeat until get_run shows the run completed. Steps marked as decided by the engine happen
   by themselves.

You act as the agent this server was started for; you cannot act as a person. Steps that need
a person say so: hand them over instead of attempting them.
"""

RunId = Annotated[str, Field(description="The run id (12 hex characters), as returned by start_run or list_my_runs.",
                             min_length=1, max_length=64)]
StepId = Annotated[str, Field(description="The step id from get_guidance or get_run, e.g. 'gather-context'. "
                                          "For a tier 3 run the only step is 'work'.", min_length=1, max_length=64)]



def agent_actor(engine: Engine, claimed: str | None) -> Actor:
    """The actor the server acts as: ``--actor`` or TIERGATE_ACTOR, and it must be an agent."""
    actor = engine.actor(claimed)
    if actor.kind != "agent":
        raise UsageError(f"tiergate mcp serves agents only, and {actor} is a person. People act through the CLI "
                         "under their own name (`tiergate complete RUN STEP --actor human:NAME`). Start the server "
                         "with --actor agent:NAME.", code="actor_invalid", details={"actor": str(actor)})
    return actor


#: Where ``tiergate.server`` puts the authenticated ``Caller`` of an HTTP request (its ASGI scope).
caller_key = "tiergate.caller"


def build_server(engine: Engine, actor: Actor | None = None, lock: Any = None,
                 fresh: Freshness | None = None) -> MCPServer:  # type: ignore[type-arg]
    """The MCP server over ``engine``: for ``actor`` (an agent) over stdio (call ``.run()``), or,
    without one, for the callers ``tiergate.server`` authenticates per HTTP request.

    ``lock`` bounds the engine calls made at once (a lock or a semaphore); by default one at a time.
    ``fresh`` keeps the definitions current (``tiergate.freshness``); by default over stdio they are
    looked at before every call, as a CLI command would read them.
    """
    if actor is not None and actor.kind != "agent":
        raise UsageError(f"tiergate mcp serves agents only; {actor} is not an agent.", code="actor_invalid")
    fixed = Caller.fixed(actor) if actor is not None else None
    operations = Operations(engine)
    lock = lock or threading.Lock()  # tools run in worker threads
    fresh = fresh or Freshness(engine, every=0.0 if fixed is not None else 1.0)
    current = fresh.check

    def caller(ctx: Context | None) -> Caller:  # type: ignore[type-arg]
        if fixed is not None:
            return fixed
        hot = _hot_caller.get()
        if hot is not None:
            return hot
        request = getattr(getattr(ctx, "request_context", None), "request", None) if ctx is not None else None
        found = request.scope.get(caller_key) if request is not None else None
        if not isinstance(found, Caller):  # the server answers 401 before a tool is reached
            raise UnauthorizedError("no valid token. Send `Authorization: Bearer tg_...`.")
        return found

    door = "mcp-stdio" if fixed is not None else "mcp"

    def crashed(error: Exception, ctx: Context | None, what: str) -> dict[str, Any]:  # type: ignore[type-arg]
        """An unforeseen failure of a tool, resource or prompt: its incident reported (and recorded
        for a known caller), and the envelope that names it, with no internal detail."""
        try:
            who: Caller | None = caller(ctx)
        except Exception:  # noqa: BLE001
            who = None
        incident = incidents.report(error, door=door, what=what, actor=who.principal if who else None)
        if who is not None:
            incidents.record(engine, incident, door=door, attempt=what.rsplit(" ", 1)[-1][:32], actor=who.principal,
                             credential=who.door)
        return incident.envelope()

    # A CallToolResult; on the hot path (``_Server.call_tool_now``) a success is its EnvelopeText.
    def call(ctx: Context, body: Callable[[Operations, Caller], Any],  # type: ignore[type-arg]
             what: str = "tools/call") -> Any:
        try:
            who = caller(ctx)
            with lock:
                current()
                return _success(body(operations, who))
        except TiergateError as err:
            return _result(failure(err.code, with_next_step(err.message, err.details, "mcp"), to_jsonable(err.details)))
        except (RecursionError, MemoryError, ValueError, UnicodeError) as exc:
            # Input no check above caught (too deep, not finite, not valid Unicode): refused, never a crash.
            return _result(failure("invalid_data", f"the arguments cannot be processed: {type(exc).__name__}: "
                                   f"{str(exc)[:200]}. Send plain JSON: finite numbers, valid Unicode, modest "
                                   "nesting.", {"error": type(exc).__name__}))
        except Exception as exc:  # noqa: BLE001 - the last door: the envelope with an incident, the server stays up
            return _result(crashed(exc, ctx, what))

    acting_as = f"acting as {actor}" if actor is not None else "acting as the principal of your token"
    app = _Server(name="tiergate", title="tiergate", version=__version__, instructions=INSTRUCTIONS,
                  log_level="WARNING", description=f"Processes with enforced steps, {acting_as}.")
    if fixed is not None:
        def refused_line(refused: Any) -> None:
            from tiergate import doorlog

            doorlog.record(engine, door="mcp-stdio", attempt="message", code=str(refused.rpc_code),
                           problem=refused.problem, facts=refused.facts, actor=fixed.principal, credential=fixed.door)

        app.on_refused = refused_line

    def bad_arguments(tool: str, arguments: Any, ctx: Any) -> None:
        from tiergate import doorlog
        from tiergate.inputs import facts_of

        try:
            who: Caller | None = caller(ctx)
        except TiergateError:
            who = None
        with lock:
            doorlog.record(engine, door="mcp-stdio" if fixed is not None else "mcp", attempt=tool, code="usage",
                           problem="arguments", facts=facts_of(arguments), actor=who.principal if who else None,
                           credential=who.door if who else None)

    app.on_bad_arguments = bad_arguments
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                open_world_hint=False)
    changes = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                              open_world_hint=False)

    @app.tool(annotations=read_only)
    def list_processes(ctx: Context) -> Answer:  # type: ignore[type-arg]
        """List every process tiergate knows, to find the one for your task.

        Each has: id, title, area, owner, expected_minutes, tier (1 = strict BPMN process,
        2 = checklist with evidence gates, 3 = conventions only) with the routing rationale,
        its risk facts, and `inputs`: the JSON Schema the start data of start_run must pass.
        """
        return call(ctx, lambda ops, who: ops.processes(who), "tools/call list_processes")

    @app.tool(annotations=changes)
    def start_run(
        ctx: Context,  # type: ignore[type-arg]
        process: Annotated[str, Field(description="A process id from list_processes, e.g. 'support-triage'.",
                                      min_length=1, max_length=64)],
        data: Annotated[dict[str, Any], Field(description="Start data: a JSON object that passes the process's "
                                                          "`inputs` schema (see list_processes). {} if it needs none.")],
    ) -> Answer:
        """Start a run of a process, as you. The tier router decides how strict the run is.

        Returns the run: id, tier, status, every step with its state, and the steps ready now
        with their instructions and evidence gates. Next, call get_guidance(run). Start data
        that does not pass the `inputs` schema is refused (error code invalid_data, with each
        failing field) and no run is created.
        """
        return call(ctx, lambda ops, who: ops.start(who, process, data), "tools/call start_run")

    @app.tool(annotations=read_only)
    def get_guidance(ctx: Context, run: RunId) -> Answer:  # type: ignore[type-arg]
        """What to do now in a run, written for its tier. Read it before every step.

        `data.text` is the guidance (markdown): the checklist or the one step to do now, or
        the tier 3 conventions. `data.ready` lists each ready step with its instructions, who
        may do it (`you_may`, `why_not`), and its evidence gate both in plain words
        (`evidence_words`) and as a self-contained JSON Schema (`evidence_schema`).
        """
        return call(ctx, lambda ops, who: ops.guide(who, run, channel="mcp"), "tools/call get_guidance")

    @app.tool(annotations=changes)
    def complete_step(
        ctx: Context,  # type: ignore[type-arg]
        run: RunId,
        step: StepId,
        evidence: Annotated[dict[str, Any], Field(description="A JSON object that passes the step's gate (see "
                                                              "`evidence_words`/`evidence_schema` in get_guidance). "
                                                              "For a tier 3 run: an optional outcome, or {}.")],
    ) -> Answer:
        """Submit evidence for a ready step; tiergate checks it before anything moves.

        Checked in order: the run is active; the step exists and is ready; you may do it
        (agent or person, role, four eyes); the evidence passes the step's gate. If a check
        fails, nothing changes, the attempt is logged, and the answer is an error: code
        `refused` (details.reason says why: not_ready, actor_not_allowed, ...) or
        `gate_failed` (details.errors lists each failing field by JSON pointer). Fix it and
        call again. On success, returns the run with the steps that are ready next.
        For a tier 3 run, completing step 'work' closes the run.
        """
        return call(ctx, lambda ops, who: ops.complete(who, run, step, evidence), "tools/call complete_step")

    @app.tool(annotations=changes)
    def skip_step(
        ctx: Context,  # type: ignore[type-arg]
        run: RunId,
        step: StepId,
        reason: Annotated[str, Field(description="Why the step is not needed; it goes into the log.",
                                     min_length=1, max_length=2000)],
    ) -> Answer:
        """Skip an optional ready step, with a reason. Required steps cannot be skipped.

        A required step is refused (error code `refused`, details.reason `not_optional`); do
        it with complete_step instead. Returns the run with the steps ready next.
        """
        return call(ctx, lambda ops, who: ops.skip(who, run, step, reason), "tools/call skip_step")

    @app.tool(annotations=changes)
    def send_message(
        ctx: Context,  # type: ignore[type-arg]
        name: Annotated[str, Field(description="The message name a Tier 1 run waits for.", min_length=1,
                                   max_length=200)],
        correlate: Annotated[dict[str, str], Field(description="Values the waiting run must have, e.g. "
                                                               "{\"change_id\": \"CH-7\"}.")],
        data: Annotated[dict[str, Any], Field(description="Fields the message brings into the run's data.")],
    ) -> Answer:
        """Deliver a message to the one Tier 1 run waiting for it, matched by its correlation values.

        Logged `message_received` with you as the sender. A message that matches no waiting run
        (details.reason `no_waiting_run`) or several (`message_ambiguous`) is refused, not delivered.
        """
        return call(ctx, lambda ops, who: ops.message(who, name, correlate, data), "tools/call send_message")

    @app.tool(annotations=changes)
    def send_signal(
        ctx: Context,  # type: ignore[type-arg]
        name: Annotated[str, Field(description="The signal's name (its bpmn:signal name).", min_length=1,
                                   max_length=200)],
        data: Annotated[dict[str, Any], Field(description="Fields the signal brings into each catch's data.")],
    ) -> Answer:
        """Broadcast a signal: every Tier 1 run waiting for it moves, and every process whose start
        event is a signal start for it gets a new run (you are the sender and the starter).

        Logged `signal_received` on each run. Answers `reached` (how many runs it moved or
        started), `moved`, `started`; a signal that reaches nothing is not an error (reached 0).
        """
        return call(ctx, lambda ops, who: ops.signal(who, name, data), "tools/call send_signal")

    @app.tool(annotations=read_only)
    def get_run(ctx: Context, run: RunId) -> Answer:  # type: ignore[type-arg]
        """The state of a run: its status, each step (done, ready, locked or skipped) with who
        did it and when, the ready steps' instructions and gates, and the run's data."""
        return call(ctx, lambda ops, who: ops.status(who, run), "tools/call get_run")

    @app.tool(annotations=read_only)
    def list_my_runs(
        ctx: Context,  # type: ignore[type-arg]
        status: Annotated[Literal["active", "completed", "cancelled", "failed"] | None,
                          Field(description="Only runs in this status; omit for all.")] = None,
    ) -> Answer:
        """The runs you started, newest first (id, process, tier, status, started and ended).

        Use it to pick up your work after a restart: then call get_guidance on an active run.
        """
        return call(ctx, lambda ops, who: ops.runs(who, status=status, mine=True), "tools/call list_my_runs")

    @app.tool(annotations=read_only)
    def list_my_work(ctx: Context) -> Answer:  # type: ignore[type-arg]
        """Every ready step, in any active run, that you may do now, oldest first.

        Each item: run, process, step, step_title, ready_at, due, and claimed_by (you, or none).
        Steps others have claimed, and steps that need a person or another role, are left out.
        Then call get_guidance(run) and complete_step.
        """
        return call(ctx, lambda ops, who: ops.inbox(who), "tools/call list_my_work")

    def guidance_text(ctx: Context | None, run: str) -> str:  # type: ignore[type-arg]
        who = caller(ctx)
        with lock:
            current()
            return str(operations.guide(who, run, channel="mcp")["text"])

    @app.resource("tiergate://runs/{run}/guidance", name="run-guidance", title="Guidance of a run",
                  mime_type="text/markdown",
                  description="What to do now in a run (the same text as get_guidance), for clients that attach "
                              "resources to the conversation.")
    def run_guidance(run: str, ctx: Context) -> str:  # type: ignore[type-arg]
        try:
            return guidance_text(ctx, run)
        except NotFoundError as err:
            raise ResourceNotFoundError(f"not_found: {with_next_step(err.message, err.details, 'mcp')}") from None
        except TiergateError as err:
            raise ResourceError(f"{err.code}: {with_next_step(err.message, err.details, 'mcp')}") from None
        except Exception as exc:  # noqa: BLE001 - the SDK would answer the exception's own text
            error = crashed(exc, ctx, "resources/read run-guidance")["error"]
            raise ResourceError(f"{error['code']}: {error['message']}") from None

    @app.prompt(name="work_on_run", title="Work on a tiergate run",
                description="Start working through a tiergate run: the rules, then its current guidance.")
    def work_on_run(run: Annotated[str, Field(description="The run id to work on.")],
                    ctx: Context) -> str:  # type: ignore[type-arg]
        try:
            text = guidance_text(ctx, run)
        except TiergateError as err:
            message = with_next_step(err.message, err.details, "mcp")
            raise MCPError(INVALID_PARAMS, message, failure(err.code, message, to_jsonable(err.details))) from None
        except Exception as exc:  # noqa: BLE001 - JSON-RPC's internal error, with the incident and no detail
            envelope = crashed(exc, ctx, "prompts/get work_on_run")
            raise MCPError(incidents.RPC_CODE, envelope["error"]["message"], envelope) from None
        return (f"Work on tiergate run {run} as {actor or 'yourself'}, one step at a time. tiergate decides what comes "
                "for each ready step, do the work its instructions describe, then call complete_step with "
                "evidence that passes its gate. If the answer is an error, read error.message and error.details, "
                "fix the evidence and try again; never try another step to get around one. Call get_guidance "
                "after every step. Hand steps you may not do to a person. Stop when get_run shows the run "
                "completed.\n\nThe current guidance:\n\n" + text)

    return app
