"""The server's front door: who is calling (``Authorization: Bearer``), and how much they may send.

A pure ASGI middleware in front of every route. ``/healthz`` and ``/api/openapi.json`` are
public, and the web pages check their own sessions (``tiergate.web``: a token does not open
them); anything else needs a valid token, checked against the database on every request (a
revoked token stops working at once). A request without one is answered ``401`` and goes no
further: no operation runs and nothing is logged. The authenticated ``Caller`` is put in the
request's ASGI scope (``caller_key``), where the API and the MCP tools read it.

Bodies are limited before they are read whole: a ``Content-Length`` over the limit is refused
here at once with ``413``; a body sent in chunks is counted as it is read (``tiergate.server.api``
and ``mcp_body`` here) and refused as soon as it passes the limit. A body of MCP over HTTP is read
here by the strict parser of every door (``tiergate.wirejson``: no key twice, no NaN, bounded
depth) and refused with the JSON-RPC error before the MCP SDK sees it, so what the SDK reads is
JSON that every parser reads alike. Each refusal is recorded by ``on_refused``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from tiergate import wirejson
from tiergate.credentials import Credentials
from tiergate.envelope import failure
from tiergate.errors import TiergateError, UnauthorizedError
from tiergate.mcpserver import caller_key
from tiergate.operations import Caller
from tiergate.web import is_web_path

PUBLIC = frozenset({"/healthz", "/api/openapi.json"})
#: A body up to this size is read on the event loop (microseconds: less than a hop to a worker thread
#: and back costs); a larger one in a worker thread, so a long body never holds up other requests.
READ_INLINE_BYTES = 16 * 1024
#: Called with a refused message, the door it came to (``mcp`` or ``api``) and the caller (None: unknown).
OnRefused = Callable[[wirejson.WireRefused, str, "Caller | None"], None]


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


async def read_json(raw: bytes) -> Any:
    """``wirejson.read``: at once for a small body, in a worker thread for a large one."""
    if len(raw) <= READ_INLINE_BYTES:
        return wirejson.read(raw)
    return await run_in_threadpool(wirejson.read, raw)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class Doors:
    """Authenticate every request but the public ones, and bound every body to ``max_body`` bytes."""

    def __init__(self, app: ASGIApp, credentials: Credentials, max_body: int, on_refused: OnRefused | None = None):
        self.app = app
        self.credentials = credentials
        self.max_body = max_body
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] not in PUBLIC and not is_web_path(scope["path"]):
            try:
                credential = await run_in_threadpool(self.credentials.authenticate, _bearer(scope))
            except UnauthorizedError as err:
                await send_json(send, 401, failure(err.code, err.message, err.details),
                                [(b"www-authenticate", b'Bearer realm="tiergate"')])
                return
            except TiergateError as err:  # the database is unreachable: nobody can be checked
                await send_json(send, 503, failure(err.code, err.message, err.details))
                return
            scope[caller_key] = Caller.from_credential(credential, via="mcp" if scope["path"] == "/mcp" else "api")
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            if scope["path"] == "/mcp":
                await self.refuse_rpc(send, wirejson.too_large(length, "", b""), scope)
                return
            if self.on_refused is not None and scope["path"] not in PUBLIC:
                await run_in_threadpool(self.on_refused, wirejson.too_large(length, "", b""), "api",
                                        scope.get(caller_key))
            await send_json(send, 413, too_large(self.max_body))
            return
        if scope["path"] == "/mcp" and scope.get("method") == "POST":
            await self.mcp_body(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def mcp_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read an MCP request's body (counted as it arrives), strictly; pass it on, or answer the JSON-RPC error."""
        chunks: list[bytes] = []
        size, more, digest = 0, True, hashlib.sha256()
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk, more = message.get("body", b""), message.get("more_body", False)
            size += len(chunk)
            digest.update(chunk)
            if size > self.max_body:  # the rest is never read
                head = (b"".join(chunks)[:4096] + chunk)[:4096]
                await self.refuse_rpc(send, wirejson.too_large(size, digest.hexdigest(), head), scope)
                return
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            await read_json(raw)
        except wirejson.WireRefused as refused:
            await self.refuse_rpc(send, refused, scope)
            return
        delivered = False

        async def replay() -> Any:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)

    async def refuse_rpc(self, send: Send, refused: wirejson.WireRefused, scope: Scope) -> None:
        if self.on_refused is not None:
            await run_in_threadpool(self.on_refused, refused, "mcp", scope.get(caller_key))
        kind = "Parse error" if refused.rpc_code == wirejson.PARSE_ERROR else "Invalid Request"
        body = {"jsonrpc": "2.0", "id": refused.request_id,
                "error": {"code": refused.rpc_code, "message": f"{kind}: {refused.message}.", "data": refused.data()}}
        await send_json(send, 413 if refused.problem == "message_bytes" else 400, body)


def too_large(limit: int) -> dict[str, Any]:
    return failure("body_too_large", f"the request body is over {limit} bytes, the limit. Store large artefacts "
                   "elsewhere and send a link to them as evidence.", {"limit": limit})
