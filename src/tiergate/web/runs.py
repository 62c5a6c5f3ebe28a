"""A run's page (``/runs/{run}``): ``Operations.run_view`` (what ``GET /api/runs/{run}/view`` answers)
rendered for people.

Server-rendered, so it reads without scripts: the status of every step with its evidence, who did
what and when (the run's log) with the check of the run's hash chain, and each decision evaluated
in the run with its inputs, outputs and table, the matched rules marked. With scripts, the vendored
viewers enhance it: bpmn-js draws the pinned BPMN of a Tier 1 run with finished, ready, waiting and
failed elements marked (``canvas.addMarker``), and dmn-js draws each decision's table with its
matched rules highlighted (``static/runs.js``). Their data travels in a JSON block of the page,
never in an inline script (the pages' Content-Security-Policy allows none).
"""

from __future__ import annotations

import json
from typing import Any

from tiergate.web.pages import Page, Visit

BPMN_JS = "vendor/bpmn-js-18.31.1"
DMN_JS = "vendor/dmn-js-17.10.2"
#: How each element state reads in the legend (and its CSS marker class: ``tg-<state>``).
ELEMENT_STATES = {"finished": "finished", "ready": "ready: waiting for a person or an agent",
                  "waiting": "waiting: a timer, a message or a subprocess", "failed": "failed"}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _what(entry: dict[str, Any]) -> str:
    """One log entry's detail in a few words."""
    detail = entry.get("detail") or {}
    event = entry["event"]
    if event in ("refused", "gate_failed"):
        return str(detail.get("message") or detail.get("reason") or "")
    if event in ("step_skipped", "cancelled"):
        return f"reason: {detail.get('reason', '')}"
    if event == "failed":
        return str(detail.get("error") or "")
    if event == "routed":
        return f"{detail.get('rationale') or 'tier ' + str(detail.get('tier'))} (rule {detail.get('matched_rule')})"
    if event == "decision_evaluated":
        return f"{detail.get('decision')}: rules {', '.join(detail.get('matched_rules') or []) or 'none'}"
    if event in ("claimed", "unclaimed", "assigned"):
        return ", ".join(f"{k} {v}" for k, v in detail.items() if isinstance(v, (str, int)))
    return ""


def context(view: dict[str, Any]) -> dict[str, Any]:
    """What the template shows besides the view: rows ready to print, and the viewers' data."""
    run = view["run"]
    steps = [{**step, "evidence_json": _json(step["evidence"]) if step.get("evidence") is not None else ""}
             for step in run["steps"]]
    log = [{**entry, "what": _what(entry)} for entry in view["log"]]
    decisions = []
    for number, item in enumerate(view["decisions"], start=1):
        table = view["tables"].get(item["decision"]) or {}
        matched = set(item["matched_rules"])
        rows = (table.get("table") or {}).get("rules") or []
        decisions.append({**item, "number": number, "from": table.get("from"), "table": table.get("table"),
                          "rows": [{**row, "matched": row["id"] in matched} for row in rows],
                          "inputs_json": _json(item["inputs"]), "outputs_json": _json(item["outputs"])})
    diagram = view.get("diagram")
    counts: dict[str, int] = {}
    for state in (diagram or {}).get("elements", {}).values():
        counts[state] = counts.get(state, 0) + 1
    viewers = {"bpmn": diagram["bpmn"] if diagram else None, "elements": diagram["elements"] if diagram else {},
               "tables": {name: table.get("xml") for name, table in view["tables"].items()},
               "decisions": [{"number": d["number"], "decision": d["decision"], "matched_rules": d["matched_rules"]}
                             for d in decisions]}
    return {"steps": steps, "log": log, "decisions": decisions, "element_counts": counts,
            "element_states": ELEMENT_STATES, "viewers": viewers, "bpmn_js": BPMN_JS, "dmn_js": DMN_JS}


async def show(visit: Visit) -> Page:
    run = visit.request.path_params["run"]
    view: dict[str, Any] = await visit.call("run_view", run)
    title = f"Run {run} · {view['run']['title']}"
    return Page("run.html", view, title=title, context=context(view))
