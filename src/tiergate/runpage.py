"""Everything a run's page shows, read in one go: the run as every door describes it, its log
(who did what and when), the check of its hash chain, for Tier 1 the pinned BPMN with the state
of each element, and the decisions evaluated in the run with the DMN each was evaluated with.

    view = run_view(engine, run_id)
    view["verify"]["ok"], view["diagram"]["elements"], view["decisions"][0]["matched_rules"]

The web page (``tiergate.web.runs``) and ``GET /api/runs/{run}/view`` both answer this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiergate import deployments
from tiergate import log as execution_log
from tiergate.store import runs as store

if TYPE_CHECKING:
    from tiergate.engine import Engine

#: The log events that evaluate a decision: a table of a Tier 1 business rule task or a Tier 2
#: ``decide`` step, and the routing table when the run started.
DECISION_EVENTS = ("decision_evaluated", "routed")
#: Log events that say an element of a Tier 1 run has run (the task tree keeps only what is live).
FINISHING_EVENTS = ("step_completed", "step_skipped", "decision_evaluated", "timer_fired", "message_received",
                    "signal_received", "signal_thrown")


def run_view(engine: Engine, run_id: str, described: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run page's data. ``described``: the run as ``Engine.described`` gives it, when the
    caller has it already (the operations layer reads it through its read path first)."""
    from tiergate.router import ROUTING_DECISION

    with engine.db.read() as conn:
        run = engine._get(conn, run_id)
        definition = engine._pinned(conn, run)
        rows = execution_log.entries(conn, run_id)
        runs_checked, entries_checked, broken = execution_log.verify(conn, run_id)
        tampered = store.tampered_definitions(conn, run.definition_version)
        deployed: dict[Any, dict[str, str]] = {}
        for row in rows:
            number = row["detail"].get("deployment") if row["event"] in DECISION_EVENTS else None
            if isinstance(number, int) and number not in deployed:
                deployed[number] = deployments.files_of(conn, deployments.get(conn, number))
    if described is None:
        described = engine.described(engine._info(run, definition))
    log = engine._log_rows(rows)
    view: dict[str, Any] = {
        "run": described,
        "log": log,
        "verify": {"ok": broken is None and not tampered, "entries": entries_checked,
                   "broken": None if broken is None else broken.__dict__, "definition_tampered": bool(tampered)},
        "diagram": None,
        "decisions": [],
        "tables": {},
    }
    runner = engine.runners[run.tier]
    if run.tier == 1 and hasattr(runner, "element_states"):
        elements = runner.element_states(definition, run.state)
        model = definition.model  # type: ignore[attr-defined]
        nodes = model.nodes
        starts = [n.id for n in nodes.values() if n.kind == "startEvent" and n.container == model.id]
        if len(starts) == 1 and any(e["event"] == "started" for e in log):
            elements.setdefault(starts[0], "finished")  # the one way in: the run went through it
        for entry in log:  # what the pruned task tree forgot, the log remembers
            element = entry["detail"].get("timer") if entry["event"] == "timer_fired" else entry["step"]
            if entry["event"] in FINISHING_EVENTS and element in nodes and element not in elements:
                elements[element] = "finished"
        view["diagram"] = {"bpmn": definition.xml, "source": definition.source,  # type: ignore[attr-defined]
                           "elements": elements}
    pinned: dict[str, str] = dict(getattr(definition, "decisions", {}) or {})
    tables: dict[str, dict[str, Any]] = {}
    for entry in log:
        if entry["event"] not in DECISION_EVENTS:
            continue
        detail = entry["detail"]
        decision = ROUTING_DECISION if entry["event"] == "routed" else str(detail.get("decision"))
        if entry["event"] == "routed":
            matched = [detail["matched_rule"]] if detail.get("matched_rule") else []
            outputs = {"tier": detail.get("tier"), "rationale": detail.get("rationale")}
        else:
            matched, outputs = list(detail.get("matched_rules") or []), detail.get("outputs") or {}
        view["decisions"].append({"seq": entry["seq"], "at": entry["at"], "event": entry["event"],
                                  "element": entry["step"], "decision": decision, "inputs": detail.get("inputs") or {},
                                  "matched_rules": matched, "outputs": outputs,
                                  "deployment": detail.get("deployment")})
        if decision not in tables:
            tables[decision] = _table(engine, decision, pinned, deployed.get(detail.get("deployment")))
    view["tables"] = tables
    return view


def _table(engine: Engine, decision: str, pinned: dict[str, str], files: dict[str, str] | None) -> dict[str, Any]:
    """The DMN a decision was evaluated with: pinned with the run's definition, else from the deployment
    the entry names, else (nothing deployed) the home's current file, said so."""
    path = f"decisions/{decision}.dmn"
    current = engine.definitions.decisions.get(decision)
    if decision in pinned:
        xml, where = pinned[decision], "pinned with the run's definition"
    elif files is not None and path in files:
        xml, where = files[path], "the deployment the run started from"
    elif current is not None:
        xml, where = current.xml.decode("utf-8"), "the home's current file (nothing was deployed)"
    else:
        return {"xml": None, "from": f"{path} is no longer available", "table": None}
    return {"xml": xml, "from": where, "table": _rows(decision, xml)}


def _rows(decision: str, xml: str) -> dict[str, Any] | None:
    """The decision's table as rows, for a page without scripts (None if it is not a table)."""
    from tiergate.definitions.decisions import Decision
    from tiergate.errors import TiergateError

    try:
        info = Decision(id=decision, xml=xml.encode("utf-8")).model.decision(decision)
    except TiergateError:
        return None
    table = info.table
    if table is None:
        return None
    return {"name": info.name, "hit_policy": table.hit_policy,
            "inputs": [clause.label or clause.expression for clause in table.inputs],
            "outputs": [clause.label or clause.name or "" for clause in table.outputs],
            "annotations": list(table.annotation_names),
            "rules": [{"id": rule.id, "index": rule.index, "inputs": list(rule.input_entries),
                       "outputs": list(rule.output_entries), "annotations": list(rule.annotations),
                       "description": rule.description} for rule in table.rules]}
