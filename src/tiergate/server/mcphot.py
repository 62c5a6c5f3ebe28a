"""MCP's tool calls over HTTP in one hop to a worker thread, beside the SDK's transport.

    hot = McpHotPath(build_server(engine), credentials, sessions=router)   # a doors.HotPath
    await hot(scope, receive, send)      # True: answered; False: left to the doors and the SDK

An agent's session is mostly ``tools/call`` requests, and the MCP SDK's streamable-HTTP transport
spends more CPU on each (its memory streams, task groups and dispatcher, and the JSON-RPC models
built and dumped along the way) than the tool does (docs/performance.md). So a ``tools/call``
that asks for nothing else is answered here, the way ``tiergate.server.api.HotPath`` answers
the API: its body received on the event loop, then one worker thread checks the token against
the database (a revoked token is refused at once), reads the body strictly, validates it with
the SDK's own types (the JSON-RPC message, the request's surface at the protocol version, the
call's parameters), runs the tool the SDK registered as the token's principal
(``_Server.call_tool_now``: the tool's argument model, its function, its result conversion and
output check), and shapes the result for that version as the SDK's runner does: written in one
pass where that gives the SDK's bytes (``tiergate.server.mcpshape``, which checks itself against
the SDK's passes; a success from its envelope's text), else by the SDK's passes
(``serialize_server_result``). The answer is the JSON-RPC response as ``application/json`` (the transport
allows a plain JSON answer to a single request), with the session's ``Mcp-Session-Id`` when the
request named a session this process holds, whose idle time starts again as if the SDK had
served the request (to within ``_IDLE_SLACK``: never sooner). The request's headers are read
once; the SDK's Content-Type, Host and Origin check is kept for the values it let through.

Everything else goes on to the doors and the SDK, unchanged: ``initialize``, notifications, any
other method, a tool that is not registered, a batch, a body that is not strict JSON or not a
valid request (the doors refuse and log it; the SDK answers its own errors), a request without
``MCP-Protocol-Version`` or at a version without the handshake, one without ``Accept`` of
JSON or with a ``Content-Type`` other than JSON, a Host or Origin the SDK's DNS-rebinding check
refuses, a ``requestState``, a chunked or larger body (over ``READ_INLINE_BYTES``), ``GET`` and
``DELETE``; and every request while OpenTelemetry tracing is configured (so traces keep the
SDK's own ``tools/call`` spans). A missing or malformed token is answered ``401`` here, as the
doors would.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Sequence

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import (INTERNAL_ERROR, CallToolRequestParams, ErrorData, JSONRPCError, JSONRPCRequest, JSONRPCResponse,
                       jsonrpc_message_adapter)
from mcp.types import methods as protocol
from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from tiergate import tracing, wirejson
from tiergate.credentials import Credentials, check_shape
from tiergate.errors import TiergateError
from tiergate.mcpserver import EnvelopeText
from tiergate.operations import Caller
from tiergate.server.doors import (BODY, READ_INLINE_BYTES, RECEIVED, bearer, in_worker, receive_small, replay,
                                   send_bytes, unauthorized)
from tiergate.server.mcpsessions import PATH, SESSION_HEADER, Sessions
from tiergate.server.mcpshape import Shaping

_JSON = "application/json"
_VERSION_HEADER = b"mcp-protocol-version"
#: The SDK's server middleware this path may stand in for: its tracing span (only when tracing is
#: configured, when this path steps aside) and ``requestState``'s seal (only for a request with one).
_STANDS_IN_FOR = frozenset({"OpenTelemetryMiddleware", "RequestStateBoundary"})
#: The request headers this path reads.
_READ = frozenset({_VERSION_HEADER, b"accept", b"content-type", b"content-length", b"transfer-encoding", b"host",
                   b"origin", SESSION_HEADER})
#: How many (Content-Type, Host, Origin) triples the SDK's check let through are kept (then forgotten at once).
_PASSED_KEPT = 64
#: Seconds a session's idle deadline is moved beyond the SDK's at a time (``McpHotPath.touch``).
_IDLE_SLACK = 1.0


class _Pass:
    """The worker's answer for a request it leaves to the doors and the SDK."""


class McpHotPath:
    """``tools/call`` requests to ``/mcp`` answered in one hop (the module says which)."""

    def __init__(self, server: Any, credentials: Credentials, *, sessions: Sessions | None = None,
                 security: TransportSecuritySettings | None = None, enabled: bool = True):
        self.server, self.credentials, self.sessions = server, credentials, sessions
        self.security = TransportSecurityMiddleware(security)
        self.passed: set[tuple[bytes | None, ...]] = set()
        self.shaping = Shaping()
        lowlevel = server._lowlevel_server
        entry = lowlevel.get_request_handler("tools/call")
        # Only over the SDK's own tools/call handler, with no middleware or cache hint of its own to
        # apply: otherwise every request goes to the SDK.
        self.enabled = (enabled and hasattr(server, "call_tool_now") and entry is not None
                        and entry.handler == server._handle_call_tool and entry.params_type is CallToolRequestParams
                        and {type(m).__name__ for m in server.middleware} <= _STANDS_IN_FOR
                        and "tools/call" not in getattr(lowlevel, "cache_hints", {}))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if scope["path"] != PATH or scope["method"] != "POST" or not self.enabled:
            return False
        seen = _headers(scope)
        version = seen.get(_VERSION_HEADER)
        if version is None or version.decode("latin-1") not in HANDSHAKE_PROTOCOL_VERSIONS:
            return False
        if not _small(seen) or not _accepts_json(seen) or not _is_json(seen) or tracing.tracing_on():
            return False
        if not await self.allowed(scope, seen):
            return False  # the SDK answers it (421, 403, 400) after the doors
        token = bearer(scope)
        try:
            check_shape(token)
        except TiergateError as err:
            await send_bytes(send, *unauthorized(err))
            return True
        raw = await receive_small(receive)
        if raw is None:
            return True  # the client went away
        scope[BODY] = raw  # for the last resort, should what follows fail unforeseen
        found = seen.get(SESSION_HEADER)
        session = found.decode("latin-1") if found is not None else None
        held = session if session is not None and self.sessions is not None and self.sessions.holds(session) else None
        answer = await in_worker(self.serve, token, raw, version.decode("latin-1"))
        if isinstance(answer, _Pass):  # on to the doors, which check the token and read the body again
            scope[RECEIVED] = replay(raw, receive)
            return False
        status, payload, headers = answer
        if held is not None and status == 200:
            headers = [*headers, (SESSION_HEADER, held.encode("latin-1"))]
            self.touch(held)
        await send_bytes(send, status, payload, headers)
        return True

    async def allowed(self, scope: Scope, seen: dict[bytes, bytes]) -> bool:
        """The SDK's check of ``Content-Type``, ``Host`` and ``Origin`` (DNS rebinding), its answer
        kept for the values it let through (the settings never change while the server runs)."""
        key = (seen.get(b"content-type"), seen.get(b"host"), seen.get(b"origin"))
        if key in self.passed:
            return True
        if await self.security.validate_request(Request(scope), is_post=True) is not None:
            return False
        if len(self.passed) >= _PASSED_KEPT:
            self.passed.clear()
        self.passed.add(key)
        return True

    def serve(self, token: str, raw: bytes, version: str) -> tuple[int, bytes, Sequence[tuple[bytes, bytes]]] | _Pass:
        """In a worker thread: the token, the message, the tool call, the answer (or ``_Pass``)."""
        try:
            caller = Caller.from_credential(self.credentials.authenticate(token), via="mcp")
        except TiergateError as err:
            return unauthorized(err)
        try:
            message = wirejson.read(raw)
        except wirejson.WireRefused:
            return _Pass()  # refused and logged by the doors
        if not (isinstance(message, dict) and message.get("method") == "tools/call"):
            return _Pass()
        params = message.get("params")
        if not isinstance(params, dict) or params.get("requestState") is not None:
            return _Pass()
        try:
            request = jsonrpc_message_adapter.validate_python(message, by_name=False)
            if not isinstance(request, JSONRPCRequest):
                return _Pass()
            protocol.validate_client_request("tools/call", version, params)
            call = CallToolRequestParams.model_validate(params, by_name=False)
        except (ValidationError, KeyError):
            return _Pass()  # the SDK's own error answer
        try:
            result = self.server.call_tool_now(call.name, call.arguments or {}, caller)
        except MCPError as err:  # a protocol error, as the SDK's dispatcher answers it
            error = JSONRPCError(jsonrpc="2.0", id=request.id, error=err.error)
            return 200, error.model_dump_json(by_alias=True, exclude_unset=True).encode("utf-8"), ()
        if result is None:
            return _Pass()  # not a tool of this server: the SDK's answer
        if isinstance(result, EnvelopeText):  # a success: written from its text, else read back
            shaped = self.shaping.success(request.id, result, version)
            if shaped is not None:
                return 200, shaped, ()
            result = result.result()
        shaped = self.shaping.answer(request.id, result, version)
        if shaped is not None:
            return 200, shaped, ()
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True) if isinstance(result, BaseModel) \
            else dict(result)
        try:
            dumped = protocol.serialize_server_result("tools/call", version, dumped)
        except ValidationError:  # a result the protocol does not allow: as the SDK's runner answers it
            failed = ErrorData(code=INTERNAL_ERROR, message="Handler returned an invalid result")
            error = JSONRPCError(jsonrpc="2.0", id=request.id, error=failed)
            return 200, error.model_dump_json(by_alias=True, exclude_unset=True).encode("utf-8"), ()
        # Built without validating ``dumped`` again: it is what the SDK's serializer just made.
        body = JSONRPCResponse.model_construct(jsonrpc="2.0", id=request.id, result=dumped)
        return 200, body.model_dump_json(by_alias=True, exclude_unset=True).encode("utf-8"), ()

    def touch(self, session: str) -> None:
        """The session's idle time starts again, as when the SDK's transport serves one of its requests;
        moved by ``_IDLE_SLACK`` more at a time, so most calls leave the SDK's timer alone (moving it
        costs more than the rest of this): a session never ends sooner than the SDK's would, and at
        most that much later."""
        transport = self.sessions.open.get(session) if self.sessions is not None and self.sessions.open else None
        scope = getattr(transport, "idle_scope", None)
        timeout = getattr(self.sessions.stateful if self.sessions else None, "session_idle_timeout", None)
        if scope is None or timeout is None or scope.deadline == math.inf:
            return
        due = asyncio.get_running_loop().time() + timeout  # anyio.current_time() on asyncio, which uvicorn runs
        if scope.deadline < due:
            scope.deadline = due + _IDLE_SLACK


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The first value of each request header this path reads, in one pass."""
    seen: dict[bytes, bytes] = {}
    for key, value in scope.get("headers", ()):
        if key in _READ and key not in seen:
            seen[key] = bytes(value)
    return seen


def _small(seen: dict[bytes, bytes]) -> bool:
    """``doors.small_body`` on the headers read already."""
    if b"transfer-encoding" in seen:
        return False
    length = seen.get(b"content-length")
    if length is None:
        return True
    try:
        return int(length) <= READ_INLINE_BYTES
    except ValueError:
        return False


def _accepts_json(seen: dict[bytes, bytes]) -> bool:
    """The SDK's reading of ``Accept`` for a JSON answer: ``application/json``, ``application/*`` or ``*/*``."""
    value = seen.get(b"accept")
    if value is None:
        return False
    kinds = {part.split(";")[0].strip().lower() for part in value.decode("latin-1").split(",")}
    return bool(kinds & {_JSON, "application/*", "*/*"})


def _is_json(seen: dict[bytes, bytes]) -> bool:
    value = seen.get(b"content-type")
    if value is None:
        return False
    parts = [part.strip() for part in value.decode("latin-1").split(";")[0].split(",")]
    return _JSON in parts
