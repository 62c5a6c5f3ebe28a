"""The server's front door: who is calling (``Authorization: Bearer``), and how much they may send.

A pure ASGI middleware in front of every route. ``/healthz`` and ``/api/openapi.json`` are
public, and the web pages check their own sessions (``tiergate.web``: a token does not open
them); anything else needs a valid token, checked against the database on every request (a
revoked token stops working at once). A request without one is answered ``401`` and goes no
further: no operation runs and nothing is logged. The authenticated ``Caller`` is put in the
request's ASGI scope (``caller_key``), where the API and the MCP tools read it. Most API requests
never reach that check: ``hot`` (``tiergate.server.api.HotPath``) serves a request to an API
route with a small announced body itself, checking its token in the worker thread that then runs
its operation (one hop instead of two); a missing or malformed token is still answered 401 before
anything is read.

Bodies are limited before they are read whole: a ``Content-Length`` over the limit is refused
here at once with ``413``; a body sent in chunks is counted as it is read (``tiergate.server.api``
and ``mcp_body`` here) and refused as soon as it passes the limit. A body of MCP over HTTP is read
here by the strict parser of every door (``tiergate.wirejson``: no key twice, no NaN, bounded
depth) and refused with the JSON-RPC error before the MCP SDK sees it, so what the SDK reads is
JSON that every parser reads alike. Each refusal is recorded by ``on_refused``.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
from typing import Any, Awaitable, Callable, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from tiergate import wirejson
from tiergate.credentials import Credentials
from tiergate.envelope import failure
from tiergate.errors import TiergateError, UnauthorizedError
from tiergate.inputs import Facts
from tiergate.mcpserver import caller_key
from tiergate.operations import Caller
from tiergate.web import is_web_path, plain

PUBLIC = frozenset({"/healthz", "/api/openapi.json"})
#: A body up to this size is read on the event loop (microseconds: less than a hop to a worker thread
#: and back costs); a larger one in a worker thread, so a long body never holds up other requests.
READ_INLINE_BYTES = 16 * 1024
#: Called with a refused message, the door it came to (``mcp`` or ``api``) and the caller (None: unknown).
OnRefused = Callable[[wirejson.WireRefused, str, "Caller | None"], None]
#: Serves a request itself and answers True, or answers False and leaves it to the doors
#: (``tiergate.server.api.HotPath``: the API's routes in one hop to a worker thread).
HotPath = Callable[[Scope, Receive, Send], Awaitable[bool]]


#: Where a hot path that received a request's body, then left the request to the doors, puts a
#: ``receive`` that hands that body on (``replay``).
RECEIVED = "tiergate.received"
#: Where the doors keep an MCP request's body once it is read whole: the last resort's answer to a
#: failure names the request's JSON-RPC ``id`` from it (``tiergate.server.lastresort``).
BODY = "tiergate.body"
#: An answer made in a worker thread: HTTP status, JSON body, extra headers.
Answer = tuple[int, bytes, Sequence[tuple[bytes, bytes]]]
_CHALLENGE = [(b"www-authenticate", b'Bearer realm="tiergate"')]


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


async def send_bytes(send: Send, status: int, payload: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send_bytes(send, status, json_bytes(body), headers)


def unauthorized(err: TiergateError) -> Answer:
    """401 for a missing, unknown, revoked or expired token; 503 when the database cannot say."""
    if isinstance(err, UnauthorizedError):
        return 401, json_bytes(failure(err.code, err.message, err.details)), _CHALLENGE
    return 503, json_bytes(failure(err.code, err.message, err.details)), ()


def header(scope: Scope, name: bytes) -> bytes | None:
    """The request's first header ``name`` (lower case), as sent; None when it has none."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def small_body(scope: Scope) -> bool:
    """Whether the request's body is announced, and small enough to read before its token is checked
    (``READ_INLINE_BYTES``): no chunked body, a ``Content-Length`` of at most that, or none."""
    if header(scope, b"transfer-encoding") is not None:
        return False
    if header(scope, b"content-length") is None:
        return True
    length = _content_length(scope)  # None: not a number
    return length is not None and length <= READ_INLINE_BYTES


async def receive_small(receive: Receive) -> bytes | None:
    """The whole body of a request ``small_body`` let through (None: the client went away)."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk, more = message.get("body", b""), message.get("more_body", False)
        size += len(chunk)
        if size > READ_INLINE_BYTES:  # more than announced: what was read is answered as unreadable
            break
        chunks.append(chunk)
    return b"".join(chunks)


async def in_worker(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a worker thread of the event loop's executor, in a copy of the request's
    context (so spans nest). Cheaper than Starlette's ``run_in_threadpool`` (anyio's capacity
    limiter, checkpoints and cancel scopes), for the hot path's one hop a request; the executor
    ends with the loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, contextvars.copy_context().run, function, *args)


async def read_json(raw: bytes) -> Any:
    """``wirejson.read``: at once for a small body, in a worker thread for a large one."""
    if len(raw) <= READ_INLINE_BYTES:
        return wirejson.read(raw)
    return await run_in_threadpool(wirejson.read, raw)


def bearer(scope: Scope) -> str | None:
    value = header(scope, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _content_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class Doors:
    """Authenticate every request but the public ones, and bound every body to ``max_body`` bytes."""

    def __init__(self, app: ASGIApp, credentials: Credentials, max_body: int, on_refused: OnRefused | None = None,
                 hot: HotPath | None = None):
        self.app = app
        self.credentials = credentials
        self.max_body = max_body
        self.on_refused = on_refused
        self.hot = hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.hot is not None and await self.hot(scope, receive, send):
            return
        receive = scope.pop(RECEIVED, receive)  # a hot path that received the body and passed the request on
        if scope["path"] not in PUBLIC and not is_web_path(scope["path"]):
            try:
                credential = await run_in_threadpool(self.credentials.authenticate, bearer(scope))
            except TiergateError as err:  # 401; or 503: the database is unreachable, nobody can be checked
                await send_bytes(send, *unauthorized(err))
                return
            scope[caller_key] = Caller.from_credential(credential, via="mcp" if scope["path"] == "/mcp" else "api")
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            if scope["path"] == "/mcp":
                await self.refuse_rpc(send, wirejson.too_large(length, "", b""), scope)
                return
            # Recorded only for a caller whose token was checked: a web page's session is checked
            # later, and a request nobody is known for must not write to the database (a flood).
            if self.on_refused is not None and scope.get(caller_key) is not None:
                await run_in_threadpool(self.on_refused, wirejson.too_large(length, "", b""), "api",
                                        scope[caller_key])
            if is_web_path(scope["path"]) and not plain.wants_json(scope):  # a person's form: a page
                page = plain.error_page("Too large", plain.form_too_large(self.max_body), "body_too_large")
                await plain.send_page(send, 413, page)
                return
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
        raw = scope[BODY] = b"".join(chunks)
        kind = (header(scope, b"content-type") or b"").split(b";", 1)[0].strip().lower()
        if kind != b"application/json":  # the SDK would answer plain text, which no MCP client reads
            shown = kind.decode("latin-1")[:60] or "missing"
            await self.refuse_rpc(send, wirejson.WireRefused(
                "content_type", f"the request's Content-Type is {shown}; send the JSON-RPC message as application/json",
                Facts(digest.hexdigest(), size), wirejson.head_id(raw[:4096])), scope)
            return
        try:
            refused = wirejson.not_a_message(await read_json(raw), raw)
        except wirejson.WireRefused as unreadable:
            refused = unreadable
        if refused is not None:
            await self.refuse_rpc(send, refused, scope)
            return
        await self.app(scope, replay(raw, receive), send)

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


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands on ``body``, already read whole, then whatever ``receive`` says
    next (a disconnect): for an app behind a door that had to read the body first."""
    delivered = False

    async def replayed() -> Any:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
