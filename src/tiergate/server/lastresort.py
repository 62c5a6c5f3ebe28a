"""The server's last catch: an exception no door caught is answered, never a bare 500 or a traceback.

    app = LastResort(app, engine)         # around the whole server, and inside the Starlette app

Each door catches what it can foresee, and its own unforeseen failures (the API's ``answer``, the
MCP tools' ``call``, the web pages' ``Web.endpoint``). What still escapes (in the doors, the MCP
SDK's transport, a route outside those, Starlette itself) reaches this middleware, which reports
an incident (``tiergate.incidents``: the traceback on standard error under a new id), records it
when the caller is known, and answers in the request's own kind, with status 500:

- ``/mcp``: the JSON-RPC error ``-32603`` (internal error) for the request's ``id`` (when its body
  had been read whole: the doors keep it in the scope), whose ``data`` is the envelope with the incident;
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
from starlette.types import ASGIApp, Receive, Scope, Send

from tiergate import incidents
from tiergate.mcpserver import caller_key
from tiergate.server.doors import BODY
from tiergate.web import is_web_path, plain

if TYPE_CHECKING:
    from tiergate.engine import Engine

class LastResort:
    """ASGI middleware: an exception that escapes ``app`` becomes an incident and an answer.

    It costs a request nothing but a ``try`` (no wrapper of ``receive`` or ``send``, nothing kept):
    an MCP request's ``id`` is read from the body the doors keep in the scope (``doors.BODY``), and
    whether the answer had begun is learnt by answering: the server refuses a second start."""

    def __init__(self, app: ASGIApp, engine: Engine | None = None):
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 - the point of this middleware
            if scope["type"] != "http":
                raise
            await self.answer(scope, send, exc)

    async def answer(self, scope: Scope, send: Send, error: Exception) -> None:
        path = scope["path"]
        door = "mcp" if path == "/mcp" else "web" if is_web_path(path) else "api"
        caller = scope.get(caller_key)
        principal = getattr(caller, "principal", None)
        incident = incidents.report(error, door=door, what=f"{scope.get('method')} {path}", actor=principal)
        if self.engine is not None and principal is not None:
            await run_in_threadpool(incidents.record, self.engine, incident, door=getattr(caller, "via", door),
                                    attempt=f"{scope.get('method')} {path}"[:32], actor=principal,
                                    credential=getattr(caller, "door", None))
        if door == "web" and not plain.wants_json(scope):
            payload = plain.error_page("Something went wrong", incident.message, incidents.CODE)
            headers = [(b"content-type", b"text/html; charset=utf-8"),
                       *((name.encode(), value.encode()) for name, value in plain.SECURITY_HEADERS.items())]
        else:
            body: dict[str, Any] = incident.envelope()
            if door == "mcp":
                body = {"jsonrpc": "2.0", "id": _request_id(scope.get(BODY)), "error": {
                    "code": incidents.RPC_CODE, "message": f"Internal error: {incident.message}", "data": body}}
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers = [(b"content-type", b"application/json")]
        try:
            await send({"type": "http.response.start", "status": incidents.STATUS,
                        "headers": [*headers, (b"content-length", str(len(payload)).encode())]})
        except Exception:  # noqa: BLE001 - the answer had begun (the server refuses a second start): it closes
            return         # the connection without the rest of the answer
        await send({"type": "http.response.body", "body": payload})


def _request_id(raw: Any) -> Any:
    """The JSON-RPC ``id`` of the request whose body is ``raw`` (bytes, or None if it was not read), or None."""
    if not isinstance(raw, bytes):
        return None
    try:
        message = json.loads(raw)  # at most the server's body limit: the doors read no more
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
