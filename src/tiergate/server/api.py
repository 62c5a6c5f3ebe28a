"""The JSON API under ``/api/``: one route per operation, answered with the ``--json`` envelope.

Each route names an operation of ``tiergate.operations`` and what it reads from the request;
the OpenAPI document (``/api/openapi.json``) is generated from the same table, so the two
cannot drift. Errors answer the same envelope and codes as the CLI, with an HTTP status that
says the kind (``STATUS``).
"""

from __future__ import annotations

from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, compile_path
from starlette.types import Receive, Scope, Send

from tiergate import incidents
from tiergate.credentials import Credentials, check_shape
from tiergate.envelope import failure
from tiergate.errors import TiergateError
from tiergate.jsonutil import canonical_json, to_jsonable
from tiergate.mcpserver import caller_key
from tiergate.operations import Caller, Operations
# The request body's reading and the route table, re-exported from here as before the split.
from tiergate.server.apibody import _attempt, _check_fields, _parse_body, _read_body, _TooLarge, _Unreadable
from tiergate.server.apiroutes import ROUTES, ApiRoute, Body, Handler, openapi  # noqa: F401
from tiergate.server.doors import (Answer, bearer, in_worker, json_bytes, receive_small, send_bytes, small_body,
                                   too_large, unauthorized)

#: HTTP status per error code, by whose the problem is (docs/server.md, "Status codes"); every code a
#: door can answer is here (tests/test_status_codes.py), and one that is not is taken as bad input (400).
STATUS = {
    # the request: what it sent cannot be used as it is
    **dict.fromkeys(("usage", "invalid_json", "invalid_input", "invalid_evidence", "invalid_encoding", "actor_missing",
                     "actor_invalid", "reason_missing", "limit_exceeded", "invalid_since", "invalid_time"), 400),
    "gate_failed": 422, "invalid_data": 422, "body_too_large": 413,
    # who is asking, and whether they may
    "unauthorized": 401, "sign_in_failed": 401, "locked_out": 401, "actor_mismatch": 403, "csrf_failed": 403,
    "not_found": 404, "method_not_allowed": 405, "conflict": 409, "data_store_stale": 409,
    # the server's own definitions, configuration or records: nothing the request can fix; the message
    # says what the operator must fix (`tiergate check`, `tiergate log verify`, the server's log)
    **dict.fromkeys(("internal_error", "error", "io_error", "definition_invalid", "definitions_invalid",
                     "definition_missing", "dmn_invalid", "bpmn_invalid", "template_error", "yaml_syntax",
                     "yaml_too_large", "decision_missing", "routing_missing", "feel_syntax", "feel_error",
                     "evaluation_failed", "config_invalid", "webhook_invalid", "key_invalid", "definition_tampered",
                     "log_tampered"), 500),
    # the database or its disk, not the request: the same request may succeed later
    **dict.fromkeys(("database_error", "connection_lost", "schema_outdated", "database_url", "database_readonly",
                     "disk_full", "database_locked", "not_a_database", "disk_error", "database_replaced"), 503),
}
#: A refusal (``refused``) is 409 (the run is not in a state for it) unless its reason says otherwise.
REFUSAL_STATUS = {"actor_not_allowed": 403, "same_actor": 403, "claimed_by_other": 409,
                  # the server's definitions: a role file, a gate or a tier's definition that is broken or missing
                  "roles_unreadable": 500, "gate_broken": 500, "tier_definition_missing": 500}


def http_status(err: TiergateError) -> int:
    if err.code == "refused":
        return REFUSAL_STATUS.get(str(err.details.get("reason")), 409)
    return STATUS.get(err.code, 400)


def _checked(route: ApiRoute, operations: Operations, caller: Caller, params: dict[str, str], body: Body) -> Any:
    _check_fields(route, body, operations, caller)
    return route.handler(operations, caller, params, body)


_SUCCESS = b'{"ok":true,"data":'


def answer(route: ApiRoute, operations: Operations, caller: Caller, params: dict[str, str], body: Body,
           run_locked: Callable[..., Any]) -> Answer:
    """Run ``route``'s operation (under ``run_locked``) and render the envelope: in a worker thread.

    The data is encoded once, in the canonical spelling (sorted keys, the JSON forms of
    ``tiergate.jsonutil``), the same bytes as ``to_jsonable`` and a JSON response would make.
    """
    try:
        data = run_locked(_checked, route, operations, caller, params, body)
        return 201 if route.creates else 200, _SUCCESS + canonical_json(data).encode("utf-8") + b"}", ()
    except TiergateError as err:
        return http_status(err), json_bytes(failure(err.code, err.message, to_jsonable(err.details))), ()
    except Exception as exc:  # noqa: BLE001 - the API's last catch: an incident, never a traceback
        incident = incidents.report(exc, door=caller.via, what=f"{route.method} {route.path}", actor=caller.principal)
        incidents.record(operations.engine, incident, door=caller.via, attempt=_attempt(route),
                         actor=caller.principal, credential=caller.door)
        return incidents.STATUS, json_bytes(incident.envelope()), ()


def routes(operations: Operations, *, max_body: int, run_locked: Callable[..., Any],
           on_refused: Callable[..., None] | None = None) -> list[Route]:
    """Starlette routes for ``ROUTES`` and the OpenAPI document (``HotPath`` serves most requests
    first; these serve the rest: a chunked or larger body, the document)."""

    def endpoint(route: ApiRoute) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            try:
                body = await _read_body(request, max_body) if route.method == "POST" else {}
            except _TooLarge as over:
                if on_refused is not None:
                    await run_in_threadpool(on_refused, over.refused, "api", request.scope.get(caller_key))
                return JSONResponse(too_large(max_body), status_code=413)
            except _Unreadable as unreadable:
                if on_refused is not None:
                    await run_in_threadpool(on_refused, unreadable.refused, "api", request.scope.get(caller_key))
                err = unreadable.error()
                return JSONResponse(failure(err.code, err.message, err.details), status_code=http_status(err))
            except TiergateError as err:
                return JSONResponse(failure(err.code, err.message, to_jsonable(err.details)),
                                    status_code=http_status(err))
            params = {**request.query_params, **request.path_params}
            status, payload, _ = await run_in_threadpool(answer, route, operations, request.scope[caller_key],
                                                         params, body, run_locked)
            return Response(payload, status_code=status, media_type="application/json")

        return handle

    async def openapi_document(request: Request) -> JSONResponse:
        return JSONResponse(openapi())

    return [Route("/api/openapi.json", openapi_document, methods=["GET"]),
            *(Route(r.path, endpoint(r), methods=[r.method]) for r in ROUTES)]


class HotPath:
    """The API's routes served in one hop to a worker thread, before Starlette's router and middleware.

    A request to one of ``ROUTES`` whose body is announced small (``doors.small_body``) is
    answered here: a missing or malformed token at once (401, nothing read, nothing logged); else
    the body is received, and one worker thread checks the token against the database (a revoked
    token fails at once), reads the body strictly, runs the operation and encodes the answer. Any
    other request (another path or method, a chunked or larger body) goes on to the doors and the
    routes above, which check the token first and count the body as it arrives.
    """

    def __init__(self, operations: Operations, credentials: Credentials, *, run_locked: Callable[..., Any],
                 on_refused: Callable[..., None] | None = None):
        self.operations, self.credentials = operations, credentials
        self.run_locked, self.on_refused = run_locked, on_refused
        self.table: dict[str, list[tuple[Any, ApiRoute]]] = {}
        for route in ROUTES:
            self.table.setdefault(route.method, []).append((compile_path(route.path)[0], route))

    def match(self, scope: Scope) -> tuple[ApiRoute, dict[str, str]] | None:
        for regex, route in self.table.get(scope["method"], ()):
            found = regex.match(scope["path"])
            if found is not None:
                return route, found.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if not scope["path"].startswith("/api/"):
            return False
        found = self.match(scope)
        if found is None or not small_body(scope):
            return False
        route, params = found
        scope["route"] = route  # for the request's span (``http.route``)
        token = bearer(scope)
        try:
            check_shape(token)
        except TiergateError as err:
            await send_bytes(send, *unauthorized(err))
            return True
        raw = b""
        if route.method == "POST":
            received = await receive_small(receive)
            if received is None:
                return True  # the client went away
            raw = received
        if scope.get("query_string"):
            params = {**QueryParams(scope["query_string"]), **params}
        await send_bytes(send, *await in_worker(self.serve, token, route, params, raw))
        return True

    def serve(self, token: str, route: ApiRoute, params: dict[str, str], raw: bytes) -> Answer:
        """In a worker thread: the token, the body, the operation, the answer."""
        try:
            caller = Caller.from_credential(self.credentials.authenticate(token))
        except TiergateError as err:
            return unauthorized(err)
        except Exception as exc:  # noqa: BLE001 - nobody is known yet: the incident is not recorded
            incident = incidents.report(exc, door="api", what=f"{route.method} {route.path}")
            return incidents.STATUS, json_bytes(incident.envelope()), ()
        try:
            body = _parse_body(raw)
        except _Unreadable as unreadable:
            if self.on_refused is not None:
                self.on_refused(unreadable.refused, "api", caller)
            problem = unreadable.error()
            return http_status(problem), json_bytes(failure(problem.code, problem.message, problem.details)), ()
        except TiergateError as err:
            return http_status(err), json_bytes(failure(err.code, err.message, to_jsonable(err.details))), ()
        return answer(route, self.operations, caller, params, body, self.run_locked)
