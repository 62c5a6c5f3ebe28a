"""A request body of the JSON API as a door reads it: strictly, within its size, an object whose
fields the route takes, each refusal recorded (``door_refusals``). ``tiergate.server.api`` uses it
for the routes and the hot path.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request

from tiergate import doorlog, wirejson
from tiergate.errors import LimitExceededError, TiergateError, UsageError
from tiergate.operations import Caller, Operations
from tiergate.server.apiroutes import ApiRoute, Body
from tiergate.server.doors import read_json


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



def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {dict: "an object", list: "an array", type(None): "null"}.get(type(value), "text")


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
