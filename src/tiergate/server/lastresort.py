"""The server's last catch: an exception no door caught is answered, never a bare 500 or a traceback.

    app = LastResort(app, engine)         # around the whole server, and inside the Starlette app

Each door catches what it can foresee, and its own unforeseen failures (the API's ``answer``, the
MCP tools' ``call``, the web pages' ``Web.endpoint``). What still escapes (in the doors, the MCP
SDK's transport, a route outside those, Starlette itself) reaches this middleware, which reports
an incident (``tiergate.incidents``: the traceback on standard error under a new id), records it
when the caller is known, and answers in the request's own kind, with status 500:

- ``/mcp``: the JSON-RPC error ``-32603`` (internal error) for the request's ``id`` (when its body
  could be read), whose ``data`` is the envelope with the incident;
- the web pages: an error page (the envelope for a request that asks for JSON);
- anything else (the API, ``/metrics``, ``/healthz``): the envelope.

An exception after the answer began cannot be answered: it is reported, and the connection is
closed without the rest of the answer.

``no_route`` answers a request that no route takes (Starlette's 404 and 405) in the same kinds:
a page for a browser, the envelope for the API (``not_found``, ``method_not_allowed``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tiergate import incidents
from tiergate.mcpserver import caller_key
from tiergate.web import is_web_path, plain

if TYPE_CHECKING:
    from tiergate.engine import Engine

#: How much of an MCP request's body is kept to find its ``id`` if it fails (an id is near the start).
_KEEP_BYTES = 64 * 1024


class LastResort:
    """ASGI middleware: an exception that escapes ``app`` becomes an incident and an answer."""

    def __init__(self, app: ASGIApp, engine: Engine | None = None):
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        kept: list[bytes] | None = [] if scope["path"] == "/mcp" and scope.get("method") == "POST" else None

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def receiving() -> Message:
            message = await receive()
            if kept is not None and message["type"] == "http.request" and sum(map(len, kept)) < _KEEP_BYTES:
                kept.append(message.get("body", b""))
            return message

        try:
            await self.app(scope, receiving if kept is not None else receive, sending)
        except Exception as exc:  # noqa: BLE001 - the point of this middleware
            await self.answer(scope, send, exc, started, kept)

    async def answer(self, scope: Scope, send: Send, error: Exception, started: bool, kept: list[bytes] | None) -> None:
        path = scope["path"]
        door = "mcp" if path == "/mcp" else "web" if is_web_path(path) else "api"
        caller = scope.get(caller_key)
        principal = getattr(caller, "principal", None)
        incident = incidents.report(error, door=door, what=f"{scope.get('method')} {path}", actor=principal)
        if self.engine is not None and principal is not None:
            await run_in_threadpool(incidents.record, self.engine, incident, door=getattr(caller, "via", door),
                                    attempt=f"{scope.get('method')} {path}"[:32], actor=principal,
                                    credential=getattr(caller, "door", None))
        if started:
            return  # the answer began: the server closes the connection
        if door == "web" and not plain.wants_json(scope):
            await plain.send_page(send, incidents.STATUS, plain.error_page("Something went wrong", incident.message,
                                                                           incidents.CODE))
            return
        body: dict[str, Any] = incident.envelope()
        if door == "mcp":
            body = {"jsonrpc": "2.0", "id": _request_id(kept), "error": {
                "code": incidents.RPC_CODE, "message": f"Internal error: {incident.message}", "data": body}}
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        await send({"type": "http.response.start", "status": incidents.STATUS,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def _request_id(kept: list[bytes] | None) -> Any:
    """The JSON-RPC ``id`` of the request whose body began with ``kept``, or None."""
    try:
        message = json.loads(b"".join(kept or ()))
    except (ValueError, RecursionError):
        return None
    found = message.get("id") if isinstance(message, dict) else None
    return found if isinstance(found, (str, int)) and not isinstance(found, bool) else None


async def no_route(request: Request, problem: Exception) -> Response:
    """Starlette's handler of ``HTTPException``: no route at this path (404), or not with this method (405)."""
    status = getattr(problem, "status_code", 404)
    headers = dict(getattr(problem, "headers", None) or {})
    method, path = request.method, request.url.path[:200]
    web = is_web_path(request.url.path)
    if status == 405:
        allowed = headers.get("Allow", "")
        code, title = "method_not_allowed", "Not allowed"
        message = (f"{method} is not taken at {path}; it takes {allowed}." if allowed else
                   f"{method} is not taken at {path}.") + (" Use the page's links and forms." if web else
                                                          " The routes are listed at /api/openapi.json.")
        details: dict[str, Any] = {"method": method, "allow": sorted(m.strip() for m in allowed.split(",") if m.strip())}
    elif status == 404:
        code, title = "not_found", "Not found"
        message = (f"there is no page at {path}. Go to the inbox, or check the address." if web else
                   f"there is no route {method} {path}. The routes are listed at /api/openapi.json.")
        details = {"method": method, "path": path}
    else:
        code, title = "usage", "Bad request"
        message, details = f"{method} {path}: {getattr(problem, 'detail', '')}", {"status": status}
    if web and not plain.wants_json(request.scope):
        page = plain.error_page(title, message, code)
        return Response(page, status_code=status, headers={**headers, **plain.SECURITY_HEADERS},
                        media_type="text/html; charset=utf-8")
    return JSONResponse({"ok": False, "error": {"code": code, "message": message, "details": details}},
                        status_code=status, headers=headers)


__all__ = ["HTTPException", "LastResort", "no_route"]
