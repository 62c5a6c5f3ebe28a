"""A step's form (``/runs/{run}/steps/{step}``): its instructions, and fields drawn from its gate.

The page is ``Operations.guide`` for the run (the ready step's instructions, its gate with
``$ref``s inlined, and whether the signed-in person may do it); submitting calls
``Operations.complete`` with the form read back into JSON (``tiergate.web.forms``), so the gate
that judges it is the one every door uses. A failing gate shows the form again with each message
next to its field and everything typed kept (422). Skip (optional steps) and cancel take a reason.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from tiergate.errors import NotFoundError, RefusedError, TiergateError
from tiergate.server.api import http_status
from tiergate.web.forms import Form, field_errors
from tiergate.web.pages import Page, Visit


async def _ready_step(visit: Visit) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run's guidance and its ready step named in the path, if the signed-in person may do it."""
    run, step = visit.request.path_params["run"], visit.request.path_params["step"]
    guide: dict[str, Any] = await visit.call("guide", run, channel="mcp")
    found = next((s for s in guide.get("ready") or [] if s["id"] == step), None)
    if found is None:
        raise NotFoundError(f"run {run} has no step '{step}' ready now. The inbox lists the steps waiting for you.",
                            details={"run": run, "step": step})
    if found.get("you_may") is False:
        raise RefusedError(f"you may not do step '{step}' of run {run}: {found.get('why_not') or 'not allowed'}.",
                           reason="actor_not_allowed", details={"run": run, "step": step})
    return guide, found


def _page(guide: dict[str, Any], step: dict[str, Any], form: Form, typed: Any = None,
          errors: dict[str, str] | None = None, general: list[str] | None = None, status: int = 200,
          answer: Any = None) -> Page:
    data = answer if answer is not None else {
        "run": guide["run"], "process": guide["process"], "tier": guide["tier"], "status": guide["status"],
        "step": {k: step.get(k) for k in ("id", "title", "optional", "instructions", "who", "evidence_words",
                                          "evidence_schema")}}
    return Page("step.html", data, status=status, title=step.get("title") or step["id"],
                context={"guide": guide, "step": step, "fields": form.fields(typed, errors),
                         "general_errors": general or []})


async def show(visit: Visit) -> Page:
    guide, step = await _ready_step(visit)
    # a GET has no form; what was typed before a sign-in (tiergate.web.signin) fills it in
    return _page(guide, step, Form(step.get("evidence_schema") or {}), visit.form or None)


async def submit(visit: Visit) -> Page | Response:
    guide, step = await _ready_step(visit)
    form = Form(step.get("evidence_schema") or {})
    evidence, names = form.read(visit.form)
    try:
        result = await visit.call("complete", guide["run"], step["id"], evidence)
    except TiergateError as err:
        if err.code not in ("gate_failed", "invalid_evidence", "limit_exceeded"):
            raise
        by_field, general = field_errors(list(err.details.get("errors") or []), names)
        if not by_field and not general:
            general = [err.message]
        answer = {"ok": False, "error": {"code": err.code, "message": err.message, "details": err.details}}
        return _page(guide, step, form, visit.form, by_field, general, status=http_status(err), answer=answer)
    if visit.wants_json:
        return Page("step.html", result)
    ready = [s["id"] for s in result.get("steps") or [] if s.get("state") == "ready"]
    visit.say(f"Done: '{step.get('title') or step['id']}' of run {guide['run']}."
              + (f" Ready now: {', '.join(ready)}." if ready else f" The run is {result.get('status')}."))
    return visit.redirect("/")


async def _with_reason(visit: Visit, operation: str, *args: str, done: str, back: str) -> Response | Page:
    reason = visit.value("reason").strip()
    try:
        result = await visit.call(operation, *args, reason)
    except TiergateError as err:
        if visit.wants_json or http_status(err) in (403, 404):
            raise
        visit.say(err.message, "error")
        return visit.redirect(back)
    if visit.wants_json:
        return Page("step.html", result)
    visit.say(done)
    return visit.redirect("/")


async def skip(visit: Visit) -> Response | Page:
    run, step = visit.request.path_params["run"], visit.request.path_params["step"]
    return await _with_reason(visit, "skip", run, step, done=f"Skipped '{step}' of run {run}.",
                              back=f"/runs/{run}/steps/{step}")


async def cancel(visit: Visit) -> Response | Page:
    run = visit.request.path_params["run"]
    back = visit.value("back") if visit.value("back").startswith("/runs/") else "/"
    return await _with_reason(visit, "cancel", run, done=f"Cancelled run {run}.", back=back)
