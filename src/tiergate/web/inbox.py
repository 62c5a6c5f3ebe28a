"""The inbox (``/``): the ready steps the signed-in person may do now, and the runs they may start.

It is ``Operations.inbox`` (what ``GET /api/inbox`` answers) grouped by process, with filters by
process and role (``?process=...&role=...``), and ``Operations.processes`` for the start links.
Claim and unclaim are POST forms that redirect back here.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from tiergate.errors import TiergateError
from tiergate.server.api import http_status
from tiergate.web.pages import Page, Visit


def _back(visit: Visit) -> str:
    kept = {k: visit.value(k) for k in ("process", "role") if visit.value(k)}
    return "/" + (f"?{urlencode(kept)}" if kept else "")


async def show(visit: Visit) -> Page:
    process = visit.request.query_params.get("process") or ""
    role = visit.request.query_params.get("role") or ""
    items: list[dict[str, Any]] = await visit.call("inbox")
    processes: list[dict[str, Any]] = await visit.call("processes")
    roles = sorted({r for item in items for r in item.get("roles") or []})
    shown = [i for i in items if (not process or i["process"] == process) and (not role or role in (i.get("roles") or []))]
    me = visit.principal
    for item in shown:
        item["mine"] = item["claimed_by"] == me
    ordered = sorted(shown, key=lambda i: (i["title"], i["process"]))
    groups = [{"process": pid, "title": next(iter(rows))["title"] if rows else pid, "items": rows}
              for pid, rows in ((pid, list(rows)) for pid, rows in groupby(ordered, key=lambda i: i["process"]))]
    startable = [{"id": p["id"], "title": p.get("title") or p["id"], "tier": p.get("tier"),
                  "has_inputs": bool(p.get("inputs"))} for p in processes if p.get("tier")]
    data = {"principal": me, "filters": {"process": process or None, "role": role or None}, "count": len(shown),
            "groups": groups, "processes": startable,
            "filter_choices": {"processes": sorted({(i["process"], i["title"]) for i in items}), "roles": roles}}
    return Page("inbox.html", data, title="Inbox")


async def _change(visit: Visit, operation: str, done: str) -> Response:
    run, step = visit.request.path_params["run"], visit.request.path_params["step"]
    try:
        await visit.call(operation, run, step)
    except TiergateError as err:
        if visit.wants_json or http_status(err) in (403, 404):
            raise  # an error page: an unknown run, or a step this person may not act on
        visit.say(err.message, "error")  # taken by someone else meanwhile, no longer ready: said on the inbox
        return visit.redirect(_back(visit))
    visit.say(done.format(run=run, step=step))
    return visit.redirect(_back(visit))


async def claim(visit: Visit) -> Response:
    return await _change(visit, "claim", "You claimed '{step}' of run {run}: others are refused it until you "
                                         "release it.")


async def unclaim(visit: Visit) -> Response:
    return await _change(visit, "unclaim", "You released '{step}' of run {run}.")
