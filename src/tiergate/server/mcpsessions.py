"""MCP over streamable HTTP at ``/mcp``: a session kept for a client that keeps one, a stateless
answer for anything else.

    app = mount(build_server(engine), max_body=..., host="127.0.0.1", sessions=True)   # a Starlette app
    app.state.mcp_sessions                        # its Sessions (None without sessions)

Both ways are the official MCP SDK's (``StreamableHTTPSessionManager``); this module only chooses,
per request, which of its two managers answers (a tool call is mostly answered before it gets
here, by ``tiergate.server.mcphot``, which keeps a session it names alive as these managers would):

- ``POST`` of an ``initialize`` without an ``Mcp-Session-Id``: the stateful manager opens a
  session, whose id goes back in the answer's header. The SDK's client sends it with every later
  request, and those requests are served by that session: its server task, streams and
  initialization are paid once per client, not once per call (about 0.3 ms of the server's CPU a
  call; docs/performance.md).
- a request naming a session this process holds: that session.
- anything else (no session id and not ``initialize``, a session that ended or timed out, or one
  another server process opened, with ``tiergate serve --workers N``): the stateless manager,
  which answers any request without a session. So a client never depends on reaching the
  process that opened its session.
- ``GET /mcp`` (the optional stream of server-initiated messages): ``405``. tiergate sends no
  server-initiated messages (answers are JSON, one per request), and so no connection stays open
  past the token check of the request that opened it.

A session carries no authority: every request is authenticated by its own bearer token
(``tiergate.server.doors``), and each tool call acts as that request's principal; a revoked token
is refused at once even inside a session.

With ``sessions=False`` (setting ``mcp_sessions``) every request is answered statelessly.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tiergate.server.doors import header, replay as replay_body

PATH = "/mcp"
SESSION_HEADER = b"mcp-session-id"


def mount(server: MCPServer, *, max_body: int, host: str, sessions: bool = True) -> Starlette:  # type: ignore[type-arg]
    """The SDK's Starlette application for ``server`` with ``/mcp`` served as this module says."""
    app = server.streamable_http_app(streamable_http_path=PATH, stateless_http=not sessions, json_response=True,
                                     max_request_body_size=max_body, host=host)
    app.state.mcp_sessions = None
    if not sessions:
        return app
    router = app.state.mcp_sessions = Sessions(server.session_manager, max_body)
    for index, route in enumerate(app.router.routes):
        if isinstance(route, Route) and route.path == PATH:
            app.router.routes[index] = Route(PATH, endpoint=router)
            break
    opened = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(starlette: Any) -> AsyncIterator[Any]:
        async with opened(starlette) as state, router.stateless.run():
            yield state

    app.router.lifespan_context = lifespan
    return app


class Sessions:
    """The ASGI endpoint of ``/mcp``: a request to the session it names if this process holds it,
    an ``initialize`` to a new session, anything else answered statelessly."""

    def __init__(self, stateful: StreamableHTTPSessionManager, max_body: int):
        self.stateful = stateful
        # The SDK's open sessions by id (its own; it adds and removes them, never replaces the dict).
        # Without it (a later SDK that renames it) no session is opened and every request is answered
        # statelessly: correct, only slower, and tests/test_mcp_sessions.py fails on it.
        self.open: dict[str, Any] | None = getattr(stateful, "_server_instances", None)
        self.stateless = StreamableHTTPSessionManager(app=stateful.app, json_response=True, stateless=True,
                                                      security_settings=stateful.security_settings,
                                                      max_request_body_size=max_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if method == "GET":
            await _no_stream(send)
            return
        found = header(scope, SESSION_HEADER)
        session = found.decode("latin-1") if found is not None else None
        if session is not None:
            manager = self.stateful if self.holds(session) else self.stateless
            await manager.handle_request(scope, receive, send)
            return
        if method == "POST" and self.has_room():
            body = await _body(receive)
            replay = replay_body(body, receive)
            manager = self.stateful if _is_initialize(body) else self.stateless
            await manager.handle_request(scope, replay, send)
            return
        await self.stateless.handle_request(scope, receive, send)

    def holds(self, session: str) -> bool:
        return self.open is not None and session in self.open

    def has_room(self) -> bool:
        """Below the SDK's limit of open sessions (over it, clients are served statelessly, not refused)."""
        limit = self.stateful.max_sessions
        return self.open is not None and (limit is None or len(self.open) < limit)


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _is_initialize(body: bytes) -> bool:
    try:
        message = json.loads(body)  # read strictly already (tiergate.server.doors); here only its method
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("method") == "initialize"


async def _no_stream(send: Send) -> None:
    payload = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "Method Not Allowed: this server sends no server-initiated messages; "
                                   "POST requests to /mcp."}}).encode()
    await send({"type": "http.response.start", "status": 405,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"allow", b"POST, DELETE")]})
    await send({"type": "http.response.body", "body": payload})
