"""The JSON API under ``/api/``: one route per operation, answered with the ``--json`` envelope.

Each route names an operation of ``tiergate.operations`` and what it reads from the request;
the OpenAPI document (``/api/openapi.json``) is generated from the same table, so the two
cannot drift. Errors answer the same envelope and codes as the CLI, with an HTTP status that
says the kind (``STATUS``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, compile_path
from starlette.types import Receive, Scope, Send

from tiergate import __version__, doorlog, incidents, wirejson
from tiergate.credentials import Credentials, check_shape
from tiergate.envelope import failure
from tiergate.errors import LimitExceededError, TiergateError, UsageError
from tiergate.jsonutil import canonical_json, to_jsonable
from tiergate.mcpserver import caller_key
from tiergate.operations import Caller, Operations
from tiergate.server.doors import (Answer, bearer, in_worker, json_bytes, read_json, receive_small, send_bytes,
                                   small_body, too_large, unauthorized)

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

Body = dict[str, Any]
Handler = Callable[[Operations, Caller, dict[str, str], Body], Any]


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    summary: str
    handler: Handler
    query: tuple[str, ...] = ()
    body: dict[str, Any] | None = None  # JSON Schema of the body
    tag: str = "runs"
    changes: bool = field(default=False)

    @property
    def creates(self) -> bool:
        """Answered ``201 Created`` (starting a run), not ``200``."""
        return self.method == "POST" and self.path == "/api/runs"


def _obj(**properties: Any) -> dict[str, Any]:
    required = [name.rstrip("?") for name in properties if not name.endswith("?")]
    return {"type": "object", "required": required,
            "properties": {name.rstrip("?"): schema for name, schema in properties.items()}}


_STR = {"type": "string"}
_ANY_OBJECT = {"type": "object"}


def _q(query: dict[str, str], name: str) -> str | None:
    return query.get(name) or None


def _tier(query: dict[str, str]) -> int | None:
    """``?tier=N``: absent or empty is every tier; anything but a whole number is refused, not ignored."""
    text = query.get("tier", "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"tier {text[:20]!r} is not a tier. Use tier=1, 2 or 3, or leave it out for every tier.",
                         code="usage", details={"tier": text[:20]})
    return int(text)


def _flag(query: dict[str, str], name: str) -> bool:
    text = query.get(name, "").strip().lower()
    if text not in ("", "0", "1", "false", "true"):
        raise UsageError(f"{name}={text[:20]!r} is not a yes or no. Use {name}=1 (or true), {name}=0, or leave it out.",
                         code="usage", details={name: text[:20]})
    return text in ("1", "true")


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/api/processes", "Every process, with its tier and start-data schema.",
             lambda ops, who, q, b: ops.processes(who), tag="processes"),
    ApiRoute("GET", "/api/route", "Where runs of a process (or of all) are routed, and why.",
             lambda ops, who, q, b: ops.route(who, _q(q, "process")), query=("process",), tag="processes"),
    ApiRoute("POST", "/api/runs", "Start a run, as the token's principal.",
             lambda ops, who, q, b: ops.start(who, b.get("process", ""), b.get("data"), actor=b.get("actor")),
             body=_obj(process=_STR, **{"data?": _ANY_OBJECT, "actor?": _STR}), changes=True),
    ApiRoute("GET", "/api/runs", "Runs, newest first (mine=1: only those the caller started).",
             lambda ops, who, q, b: ops.runs(who, process=_q(q, "process"), status=_q(q, "status"),
                                             mine=_flag(q, "mine")),
             query=("process", "status", "mine")),
    ApiRoute("GET", "/api/runs/{run}", "A run: its status, steps and data.",
             lambda ops, who, q, b: ops.status(who, q["run"])),
    ApiRoute("GET", "/api/runs/{run}/view", "Everything a run's page shows: the run, its log and the check of its "
             "chain, the Tier 1 diagram with each element's state, the decisions evaluated with their tables.",
             lambda ops, who, q, b: ops.run_view(who, q["run"])),
    ApiRoute("GET", "/api/runs/{run}/guide", "What to do now in a run, for the caller.",
             lambda ops, who, q, b: ops.guide(who, q["run"], actor=_q(q, "actor"),
                                              channel="cli" if q.get("channel") == "cli" else "mcp"),
             query=("actor", "channel")),
    ApiRoute("POST", "/api/runs/{run}/steps/{step}/complete", "Complete a step with evidence for its gate.",
             lambda ops, who, q, b: ops.complete(who, q["run"], q["step"], b.get("evidence", {}),
                                                 actor=b.get("actor")),
             body=_obj(**{"evidence?": _ANY_OBJECT, "actor?": _STR}), changes=True),
    ApiRoute("POST", "/api/runs/{run}/steps/{step}/skip", "Skip an optional step, with a reason.",
             lambda ops, who, q, b: ops.skip(who, q["run"], q["step"], b.get("reason", ""), actor=b.get("actor")),
             body=_obj(reason=_STR, **{"actor?": _STR}), changes=True),
    ApiRoute("POST", "/api/runs/{run}/steps/{step}/retry", "Run a failed Tier 1 element again.",
             lambda ops, who, q, b: ops.retry(who, q["run"], q["step"], b.get("data"), actor=b.get("actor")),
             body=_obj(**{"data?": _ANY_OBJECT, "actor?": _STR}), changes=True),
    ApiRoute("POST", "/api/runs/{run}/cancel", "Cancel a run, with a reason.",
             lambda ops, who, q, b: ops.cancel(who, q["run"], b.get("reason", ""), actor=b.get("actor")),
             body=_obj(reason=_STR, **{"actor?": _STR}), changes=True),
    ApiRoute("POST", "/api/messages", "Deliver a message to the one Tier 1 run waiting for it (the caller is the "
             "sender).",
             lambda ops, who, q, b: ops.message(who, b.get("name", ""), b.get("correlate"), b.get("data"),
                                                actor=b.get("actor")),
             body=_obj(name=_STR, **{"correlate?": _ANY_OBJECT, "data?": _ANY_OBJECT, "actor?": _STR}), changes=True),
    ApiRoute("POST", "/api/signals", "Broadcast a signal to every Tier 1 run waiting for it and start every "
             "process that starts on it (the caller is the sender); answers how many it reached (0 is no error).",
             lambda ops, who, q, b: ops.signal(who, b.get("name", ""), b.get("data"), actor=b.get("actor")),
             body=_obj(name=_STR, **{"data?": _ANY_OBJECT, "actor?": _STR}), changes=True),
    ApiRoute("GET", "/api/signals", "The signal broadcasts still pending (all=1: the latest ones, delivered too), "
             "as `tiergate signals`; for auditors.",
             lambda ops, who, q, b: ops.signals(who, all_=_flag(q, "all")), query=("all",)),
    ApiRoute("GET", "/api/inbox", "Every ready step the caller may do now, oldest first, with who claimed it.",
             lambda ops, who, q, b: ops.inbox(who, actor=_q(q, "actor")), query=("actor",), tag="inbox"),
    ApiRoute("POST", "/api/runs/{run}/steps/{step}/claim", "Claim a ready step: others are refused it.",
             lambda ops, who, q, b: ops.claim(who, q["run"], q["step"], actor=b.get("actor")),
             body=_obj(**{"actor?": _STR}), tag="inbox", changes=True),
    ApiRoute("POST", "/api/runs/{run}/steps/{step}/unclaim", "Release a claim.",
             lambda ops, who, q, b: ops.unclaim(who, q["run"], q["step"], actor=b.get("actor")),
             body=_obj(**{"actor?": _STR}), tag="inbox", changes=True),
    ApiRoute("POST", "/api/runs/{run}/steps/{step}/assign", "Assign a ready step (the process owner's role).",
             lambda ops, who, q, b: ops.assign(who, q["run"], q["step"], b.get("assignee", ""),
                                               actor=b.get("actor")),
             body=_obj(assignee=_STR, **{"actor?": _STR}), tag="inbox", changes=True),
    ApiRoute("GET", "/api/runs/{run}/log", "A run's execution log.",
             lambda ops, who, q, b: ops.log(who, q["run"]), tag="log"),
    ApiRoute("GET", "/api/log", "The whole execution log, oldest first.",
             lambda ops, who, q, b: ops.log(who), tag="log"),
    ApiRoute("GET", "/api/log/verify", "Check every run's hash chain.",
             lambda ops, who, q, b: ops.verify_log(who), tag="log"),
    ApiRoute("GET", "/api/metrics", "Completion, deviations and step times.",
             lambda ops, who, q, b: ops.metrics(who, process=_q(q, "process"),
                                                tier=_tier(q),
                                                since=_q(q, "since")),
             query=("process", "tier", "since"), tag="metrics"),
    ApiRoute("GET", "/api/gaps", "Gaps found in the log, classified.",
             lambda ops, who, q, b: ops.gaps(who, since=_q(q, "since")), query=("since",), tag="metrics"),
    ApiRoute("GET", "/api/report", "What `tiergate report` shows: the metrics and the open gaps.",
             lambda ops, who, q, b: ops.report(who, since=_q(q, "since")), query=("since",), tag="metrics"),
    ApiRoute("GET", "/api/catalog", "Every process with its routed tier, the routing rule that matched and its inputs.",
             lambda ops, who, q, b: ops.catalog(who), tag="processes"),
)


def http_status(err: TiergateError) -> int:
    if err.code == "refused":
        return REFUSAL_STATUS.get(str(err.details.get("reason")), 409)
    return STATUS.get(err.code, 400)


async def _read_body(request: Request, limit: int) -> Body:
    chunks, size, digest = [], 0, hashlib.sha256()
    async for chunk in request.stream():
        size += len(chunk)
        digest.update(chunk)
        if size > limit:  # the rest is never read
            raise _TooLarge(wirejson.too_large(size, digest.hexdigest()))
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:  # the one strict reading of every door: no key twice, no NaN, bounded depth
        body = await read_json(raw)
    except wirejson.WireRefused as refused:
        raise _Unreadable(refused) from None
    return _object(body, raw)


def _parse_body(raw: bytes) -> Body:
    """``_read_body``'s reading of a body already received (a small one, in a worker thread)."""
    if not raw.strip():
        return {}
    try:
        body = wirejson.read(raw)
    except wirejson.WireRefused as refused:
        raise _Unreadable(refused) from None
    return _object(body, raw)


def _object(body: Any, raw: bytes) -> Body:
    if not isinstance(body, dict):  # refused and recorded as a body no parser reads is
        raise _Unreadable(wirejson.WireRefused("not_an_object", f"it is {_json_type(body)}, not an object",
                                               wirejson.facts(raw)))
    return body


#: Fields whose shape the engine checks itself (and logs in the run's log when refused): the door
#: checks only that the field is one this request takes.
_ENGINE_CHECKS = frozenset({"evidence", "data", "reason", "correlate"})


def _check_fields(route: ApiRoute, body: Body, operations: Operations, caller: Caller) -> None:
    """Refuse a body field the route does not take, a text field that is not text, a required one
    missing: before the operation, so a misspelt ``evidnce`` never completes a step with none.

    Recorded as a row of ``door_refusals`` (``tiergate log refusals``), as a body no parser reads is.
    """
    schema = route.body
    if schema is None or not body and not schema["required"]:
        return
    fields = schema["properties"]
    error: UsageError | None = None
    for name, value in body.items():
        pointer = "/" + name.replace("~", "~0").replace("/", "~1")
        if name not in fields:
            error = UsageError(
                f"the request body has a field {pointer[:80]!r} that {route.method} {route.path} does not take "
                f"(it takes {', '.join(fields)}). Nothing was changed; remove or rename that field.",
                code="invalid_input", details={"pointer": pointer[:80], "problem": "unknown_field",
                                               "fields": list(fields)})
        elif name not in _ENGINE_CHECKS and fields[name].get("type") == "string" and not isinstance(value, str) \
                and value is not None:  # null: as if left out
            error = UsageError(
                f"the field {pointer} of the request body must be text, not {_json_type(value)}. Nothing was "
                "changed; send it as a JSON string.", code="invalid_input",
                details={"pointer": pointer, "problem": "not_text"})
        if error is not None:
            break
    missing = [name for name in schema["required"] if name not in _ENGINE_CHECKS and body.get(name) is None]
    if error is None and missing:
        error = UsageError(f"the request body has no field /{missing[0]}, which {route.method} {route.path} needs. "
                           f"Nothing was changed; send {{\"{missing[0]}\": ...}}.", code="invalid_input",
                           details={"pointer": f"/{missing[0]}", "problem": "missing_field"})
    if error is not None:
        doorlog.record(operations.engine, door=caller.via, attempt=_attempt(route), code=error.code,
                       problem=error.details["problem"], actor=caller.principal, credential=caller.door)
        raise error


def _attempt(route: ApiRoute) -> str:
    """What a refusal on ``route`` records as its attempt: ``start``, ``complete``, ``message``, ``runs``, ..."""
    last = route.path.rsplit("/", 1)[-1]
    if route.method == "POST":
        return {"runs": "start", "messages": "message", "signals": "signal"}.get(last, last)
    return "read " + last.strip("{}")


def _checked(route: ApiRoute, operations: Operations, caller: Caller, params: dict[str, str], body: Body) -> Any:
    _check_fields(route, body, operations, caller)
    return route.handler(operations, caller, params, body)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "an array", type(None): "null"}.get(type(value), "text")


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


class _TooLarge(Exception):
    def __init__(self, refused: wirejson.WireRefused):
        super().__init__(refused.message)
        self.refused = refused


class _Unreadable(Exception):
    def __init__(self, refused: wirejson.WireRefused):
        super().__init__(refused.message)
        self.refused = refused

    def error(self) -> TiergateError:
        refused = self.refused
        if refused.problem == "message_depth":
            return LimitExceededError(f"the request body: {refused.message}.", details=refused.data())
        return UsageError(f"the request body is not acceptable JSON: {refused.message}. Send a JSON object, each key "
                          "once, finite numbers only.", code="invalid_json", details=refused.data())


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


_ENVELOPE = {
    "type": "object", "required": ["ok"],
    "properties": {"ok": {"type": "boolean"}, "data": {},
                   "error": _obj(code=_STR, message=_STR, details=_ANY_OBJECT)},
}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API, from ``ROUTES``."""
    paths: dict[str, Any] = {}
    for route in ROUTES:
        parameters = [{"name": name, "in": "path", "required": True, "schema": _STR}
                      for name in ("run", "step") if "{" + name + "}" in route.path]
        parameters += [{"name": name, "in": "query", "required": False, "schema": _STR} for name in route.query]
        operation: dict[str, Any] = {
            "summary": route.summary, "tags": [route.tag], "parameters": parameters,
            "responses": {
                "201" if route.creates else "200":
                    {"description": "The envelope with `data`.",
                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
                "401": {"description": "No token, or a revoked or expired one."},
                "default": {"description": "The envelope with `error` (code, message, details).",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
            },
        }
        if route.body is not None:
            operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": route.body}}}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "tiergate API", "version": __version__,
                 "description": "Processes with enforced steps. Every answer is the envelope "
                                "{ok, data} or {ok: false, error: {code, message, details}}."},
        "paths": paths,
        "components": {"schemas": {"Envelope": _ENVELOPE},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
