"""The JSON API's table: one ``ApiRoute`` per operation (its method, path, summary, handler, query
and body schema), and the OpenAPI document generated from it. ``tiergate.server.api`` serves the
table and re-exports these names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tiergate import __version__
from tiergate.errors import UsageError
from tiergate.operations import Caller, Operations

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
