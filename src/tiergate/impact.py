"""Change impact of an edited decision, for leads: what would have gone differently?

``impact(new, old, catalog, logged)`` compares two versions of a decision. For
``tier_routing`` it lists the catalog processes whose tier changes and those the new table can
route (for some start data) to a tier they have no definition for; for every decision it
replays the inputs stored in the log (``routed`` entries for the router, ``decision_evaluated``
entries for decide steps) through both versions and counts the answers that differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from tiergate.definitions.decisions import Decision
from tiergate.definitions.models import Catalog
from tiergate.errors import TiergateError
from tiergate.router import ROUTING_DECISION, Router

MAX_EXAMPLES = 5


def _answer(decision: Decision, inputs: dict[str, Any]) -> dict[str, Any] | str:
    try:
        return decision.evaluate(inputs)[0]
    except TiergateError as err:
        return f"error: {err.message}"


def unroutable(decision: Decision, catalog: Catalog, root: Path) -> list[dict[str, Any]]:
    """Catalog processes ``decision`` can route (for some start data) to a tier they have no definition for."""
    from tiergate.definitions.home import TIER_FILES
    from tiergate.reach import reachable_tiers

    found = []
    for process in catalog.processes:
        try:
            reached = reachable_tiers(decision, process)
        except TiergateError:
            continue  # reported in "catalog" as an error
        for tier, reach in sorted(reached.items()):
            expected = TIER_FILES[tier].format(id=process.id)
            if not (root / expected).is_file():
                found.append({"process": process.id, "tier": tier, "rule": reach.rule, "data": reach.data,
                              "missing": expected})
    return found


def impact(new: Decision, old: Decision, catalog: Catalog | None,
           logged: Iterable[dict[str, Any]], root: Path | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"decision": new.id, "catalog": [], "replayed": 0, "changed": 0, "examples": []}
    if new.id == ROUTING_DECISION and catalog is not None and root is not None:
        report["unroutable"] = unroutable(new, catalog, root)
    if new.id == ROUTING_DECISION and catalog is not None:
        for entry in catalog.processes:
            try:
                before = Router.route_with(old, entry, None)
                after = Router.route_with(new, entry, None)
            except TiergateError as err:
                report["catalog"].append({"process": entry.id, "error": err.message})
                continue
            if before.tier != after.tier:
                report["catalog"].append({"process": entry.id, "old_tier": before.tier, "new_tier": after.tier,
                                          "old_rule": before.matched_rule, "new_rule": after.matched_rule,
                                          "rationale": after.rationale})
    for entry in logged:
        inputs = entry["detail"].get("inputs")
        if not isinstance(inputs, dict):
            continue
        report["replayed"] += 1
        before, after = _answer(old, inputs), _answer(new, inputs)
        if before != after:
            report["changed"] += 1
            if len(report["examples"]) < MAX_EXAMPLES:
                report["examples"].append({"run": entry["run"], "process": entry["process"], "at": entry["at"],
                                           "inputs": inputs, "old": before, "new": after})
    return report
