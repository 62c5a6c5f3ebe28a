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

import json
import threading
from contextvars import ContextVar
from typing import Annotated, Any, Callable, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError

from tiergate import __version__, incidents
from tiergate.actors import Actor
from tiergate.engine import Engine
from tiergate.freshness import Freshness
from tiergate.envelope import failure, with_next_step
from tiergate.errors import NotFoundError, TiergateError, UnauthorizedError, UsageError
from tiergate.operations import Caller, Operations
from tiergate.jsonutil import canonical_json, to_jsonable

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


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine code: refused, gate_failed, not_found, invalid_data, usage, ...")
    message: str = Field(description="What is wrong, where, and what to do.")
    details: dict[str, Any] = Field(description="Specifics: details.reason for refused, details.errors for "
                                                "gate_failed (each failing field by JSON pointer).")


class Envelope(BaseModel):
    """The answer of every tool: the same envelope as the CLI's --json."""

    ok: bool = Field(description="true on success (then `data`), false on failure (then `error`).")
    data: Any = Field(default=None, description="The answer, on success.")
    error: ErrorBody | None = Field(default=None, description="What went wrong, on failure.")


Answer = Annotated[CallToolResult, Envelope]


def _result(envelope: dict[str, Any], text: str | None = None) -> CallToolResult:
    # The text is the envelope as compact JSON: fewer tokens for the model than indented JSON, and
    # json.dumps with indent runs its pure-Python encoder (about 5 times the CPU for a run's answer).
    if text is None:
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=envelope,
                          is_error=not envelope["ok"])


class EnvelopeText(str):
    """A success envelope's text (``_success``), whose structured content is that text read back:
    what a tool answers on the HTTP server's hot path (``_Server.call_tool_now``), which writes the
    answer from the text alone when it can (``tiergate.server.mcpshape``) and reads it back only
    when it cannot (``result``)."""

    def result(self) -> CallToolResult:
        return _result(json.loads(self), str(self))


def _success(data: Any) -> CallToolResult | EnvelopeText:
    """The success envelope of ``data``: its text encoded once, in the canonical spelling (sorted keys,
    the JSON forms of ``tiergate.jsonutil``), and read back as the structured content (on the hot
    path, only the text: ``EnvelopeText``)."""
    text = '{"ok":true,"data":' + canonical_json(data) + "}"
    if _hot_caller.get() is not None:
        return EnvelopeText(text)
    return _result(json.loads(text), text)


def _argument_errors(tool: str, error: ValidationError) -> dict[str, Any]:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "arguments"
        problems.append({"argument": name, "message": "is missing" if item["type"] == "missing" else item["msg"]})
    listed = "; ".join(f"'{p['argument']}' {p['message']}" for p in problems)
    return failure("usage", f"{tool}: bad arguments: {listed}. The tool's input schema says what each argument "
                   "must be.", {"tool": tool, "errors": problems})


def _unknown_arguments(tool: str, unknown: list[str], known: list[str]) -> dict[str, Any]:
    hint = (" The actor is fixed when the server starts: no tool takes one." if "actor" in unknown else "")
    return failure("usage", f"{tool}: unknown argument{'s' if len(unknown) > 1 else ''} "
                   f"{', '.join(repr(u) for u in unknown)}; it takes {', '.join(repr(k) for k in known) or 'none'}."
                   + hint, {"tool": tool, "unknown": unknown, "arguments": known})


class _Server(MCPServer):  # type: ignore[type-arg]
    """MCPServer whose argument errors come back as the tiergate envelope, like every other error,
    and whose stdio answers every line, malformed ones with the JSON-RPC error (``tiergate.mcpstdio``)."""

    #: Records a line the stdio transport refused (``tiergate.doorlog``); set by ``build_server``.
    on_refused: Callable[[Any], None] | None = None
    #: Records a tool call refused for its arguments, before any run: (tool, arguments, context).
    on_bad_arguments: Callable[[str, Any, Any], None] | None = None

    async def run_stdio_async(self) -> None:
        from tiergate.mcpstdio import stdio_transport

        async with stdio_transport(self.on_refused) as (read_stream, write_stream):
            await self._lowlevel_server.run(read_stream, write_stream,
                                            self._lowlevel_server.create_initialization_options())

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        schema = self._tool_input_schema(name)
        if schema is not None:
            known = set(schema.get("properties", {}))
            unknown = sorted(set(arguments) - known)
            if unknown:
                await self._record_bad_arguments(name, arguments, context)
                return _result(_unknown_arguments(name, unknown, sorted(known)))
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                await self._record_bad_arguments(name, arguments, context)
                return _result(_argument_errors(name, exc.__cause__))
            raise

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Any = None) -> Any:
        """The SDK's, with an unknown prompt or argument, or a missing one, answered ``-32602`` with what
        is wrong (the SDK answers those with code 0 and logs a traceback for each)."""
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            known = ", ".join(repr(p.name) for p in self._prompt_manager.list_prompts())
            raise MCPError(INVALID_PARAMS, f"no prompt {name[:80]!r}; this server has {known or 'none'}.")
        takes = [a.name for a in prompt.arguments or ()]
        unknown = sorted(set(arguments or {}) - set(takes))
        missing = [a.name for a in prompt.arguments or () if a.required and a.name not in (arguments or {})]
        if unknown or missing:
            problem = (f"unknown argument{'s' if len(unknown) > 1 else ''} {', '.join(repr(u[:80]) for u in unknown)}"
                       if unknown else f"the argument {missing[0]!r} is missing")
            raise MCPError(INVALID_PARAMS, f"prompt {name!r}: {problem}; it takes {', '.join(map(repr, takes))}.")
        return await super().get_prompt(name, arguments, context)

    async def _record_bad_arguments(self, name: str, arguments: Any, context: Any) -> None:
        if self.on_bad_arguments is not None:
            await anyio.to_thread.run_sync(self.on_bad_arguments, name, arguments, context)

    def call_tool_now(self, name: str, arguments: dict[str, Any],
                      caller: Caller) -> CallToolResult | InputRequiredResult | EnvelopeText | None:
        """``call_tool`` in this thread as ``caller`` (``tiergate.server.mcphot``), or None for a tool that
        is not registered (the SDK answers that). What the SDK's ``tools/call`` handler does for a tool
        of this server, by the tool's own SDK parts: its argument model, its function, its result
        conversion (with the output schema's check); an error is the same result as the SDK's.
        A success is its envelope's text (``EnvelopeText``): the output check has nothing to say of
        it (``{"ok": true, "data": ...}`` with any JSON as data is what ``Envelope`` describes)."""
        tool = self._tool_manager.get_tool(name)
        if tool is None or tool.is_async or tool.resolved_params:
            return None
        hot = _hot_caller.set(caller)
        try:
            unknown = sorted(set(arguments) - set(tool.parameters.get("properties", {})))
            if unknown:
                self._record_bad_arguments_now(name, arguments)
                return _result(_unknown_arguments(name, unknown, sorted(tool.parameters.get("properties", {}))))
            try:
                validated = tool.fn_metadata.validate_arguments(arguments)
            except ValidationError as exc:
                self._record_bad_arguments_now(name, arguments)
                return _result(_argument_errors(name, exc))
            except MCPError:
                raise
            except Exception:  # noqa: BLE001 - as the SDK: a crash's text stays on the server
                return _crashed(name)
            if tool.context_kwarg is not None:
                validated = {**validated, tool.context_kwarg: None}
            try:
                answered = tool.fn(**validated)
                if isinstance(answered, EnvelopeText):
                    return answered
                result = tool.fn_metadata.convert_result(answered)
            except MCPError:
                raise
            except (ToolError, ResourceError) as exc:  # raised on purpose: its text says what
                return _crashed(name, exc)
            except Exception:  # noqa: BLE001
                return _crashed(name)
            return result
        finally:
            _hot_caller.reset(hot)

    def _record_bad_arguments_now(self, name: str, arguments: Any) -> None:
        if self.on_bad_arguments is not None:
            self.on_bad_arguments(name, arguments, None)


def _crashed(tool: str, error: Exception | None = None) -> CallToolResult:
    """The SDK's result for a tool that failed (``Tool.run``'s wording)."""
    text = f"Error executing tool {tool}" + (f": {error}" if error is not None else "")
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


#: The caller of a tool call that ``_Server.call_tool_now`` runs (the HTTP server's hot path), in
#: that call's own context: the tools read it as they read the caller the SDK's request carries.
_hot_caller: ContextVar[Caller | None] = ContextVar("tiergate_mcp_hot_caller", default=None)


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
