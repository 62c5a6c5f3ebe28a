"""Starting a run (``/start/{process}``): a form drawn from the process's ``inputs`` schema.

Submitting calls ``Operations.start`` as the signed-in person; data that does not pass ``inputs``
shows the form again with each message next to its field (422). After a start the person goes to
the first ready step they may do, or back to the inbox.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from tiergate.errors import NotFoundError, TiergateError
from tiergate.server.api import http_status
from tiergate.web.forms import Form, field_errors
from tiergate.web.pages import Page, Visit


async def _process(visit: Visit) -> dict[str, Any]:
    wanted = visit.request.path_params["process"]
    processes: list[dict[str, Any]] = await visit.call("processes")
    found = next((p for p in processes if p["id"] == wanted and p.get("tier")), None)
    if found is None:
        raise NotFoundError(f"no process '{wanted}' to start. The inbox lists the processes you may start.",
                            details={"process": wanted})
    return found


def _page(process: dict[str, Any], form: Form, typed: Any = None, errors: dict[str, str] | None = None,
          general: list[str] | None = None, status: int = 200, answer: Any = None) -> Page:
    data = answer if answer is not None else {k: process.get(k) for k in ("id", "title", "tier", "inputs",
                                                                          "rationale")}
    return Page("start.html", data, status=status, title=f"Start: {process.get('title') or process['id']}",
                context={"process": process, "fields": form.fields(typed, errors), "general_errors": general or []})


async def show(visit: Visit) -> Page:
    process = await _process(visit)
    # a GET has no form; what was typed before a sign-in (tiergate.web.signin) fills it in
    return _page(process, Form(process.get("inputs") or {}), visit.form or None)


async def submit(visit: Visit) -> Page | Response:
    process = await _process(visit)
    form = Form(process.get("inputs") or {})
    data, names = form.read(visit.form)
    try:
        run = await visit.call("start", process["id"], data if isinstance(data, dict) else {})
    except TiergateError as err:
        if err.code not in ("invalid_data", "invalid_input", "limit_exceeded"):
            raise
        by_field, general = field_errors(list(err.details.get("errors") or []), names)
        if not by_field and not general:
            general = [err.message]
        answer = {"ok": False, "error": {"code": err.code, "message": err.message, "details": err.details}}
        return _page(process, form, visit.form, by_field, general, status=http_status(err), answer=answer)
    if visit.wants_json:
        return Page("start.html", run, status=201)
    visit.say(f"Started run {run['id']} of {process.get('title') or process['id']}.")
    mine = [s for s in run.get("steps") or [] if s.get("state") == "ready" and s.get("decide") is None]
    items = await visit.call("inbox")
    for step in mine:
        if any(i["run"] == run["id"] and i["step"] == step["id"] for i in items):
            return visit.redirect(f"/runs/{run['id']}/steps/{step['id']}")
    return visit.redirect("/")
