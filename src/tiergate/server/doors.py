"""The server's front door: who is calling (``Authorization: Bearer``), and how much they may send.

A pure ASGI middleware in front of every route. ``/healthz`` and ``/api/openapi.json`` are
public, and the web pages check their own sessions (``tiergate.web``: a token does not open
them); anything else needs a valid token, checked against the database on every request (a
revoked token stops working at once). A request without one is answered ``401`` and goes no
further: no operation runs and nothing is logged. The authenticated ``Caller`` is put in the
request's ASGI scope (``caller_key``), where the API and the MCP tools read it.

Bodies are limited before they are read whole: a ``Content-Length`` over the limit is refused
here at once with ``413``; a body sent in chunks is counted as it is read (``tiergate.server.api``
and the MCP transport's own limit) and refused as soon as it passes the limit.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from tiergate.credentials import Credentials
from tiergate.envelope import failure
from tiergate.errors import TiergateError, UnauthorizedError
from tiergate.mcpserver import caller_key
from tiergate.operations import Caller
from tiergate.web import is_web_path

PUBLIC = frozenset({"/healthz", "/api/openapi.json"})


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


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

    def __init__(self, app: ASGIApp, credentials: Credentials, max_body: int):
        self.app = app
        self.credentials = credentials
        self.max_body = max_body

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
            scope[caller_key] = Caller.from_credential(credential)
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            await send_json(send, 413, too_large(self.max_body))
            return
        await self.app(scope, receive, send)


def too_large(limit: int) -> dict[str, Any]:
    return failure("body_too_large", f"the request body is over {limit} bytes, the limit. Store large artefacts "
                   "elsewhere and send a link to them as evidence.", {"limit": limit})
