"""The tier router: ``decisions/tier_routing.dmn`` decides each run's tier.

    route = Router(decisions, catalog).route("support-triage", start_data)
    route.tier, route.rationale, route.matched_rule

The decision reads the catalog entry's risk facts (``tiers/catalog.yaml``), the process id,
and anything in the start data that the table names as an input. Start data can raise or
lower one kind of run; facts cannot be overridden by start data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tiergate.definitions.decisions import Decision
from tiergate.definitions.models import Catalog, CatalogEntry
from tiergate.errors import DefinitionError, EvaluationError, NotFoundError

ROUTING_DECISION = "tier_routing"


@dataclass
class Route:
    process: str
    tier: int
    rationale: str
    matched_rule: str | None
    inputs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def routing_inputs(entry: CatalogEntry, data: dict[str, Any] | None) -> dict[str, Any]:
    """What the routing table sees: start data first, then the process id and facts on top."""
    merged: dict[str, Any] = dict(data or {})
    merged.update(entry.facts.model_dump())
    merged["process_id"] = entry.id
    return merged


class Router:
    def __init__(self, decisions: dict[str, Decision], catalog: Catalog, source: str = "decisions/tier_routing.dmn"):
        self.decisions = decisions
        self.catalog = catalog
        self.source = source

    @property
    def decision(self) -> Decision:
        decision = self.decisions.get(ROUTING_DECISION)
        if decision is None:
            raise DefinitionError(f"{self.source} is missing or failed to load, so no run can be routed to a tier.",
                                  code="routing_missing", details={"see": "check"})
        return decision

    def entry(self, process_id: str) -> CatalogEntry:
        entry = self.catalog.get(process_id)
        if entry is None:
            known = ", ".join(p.id for p in self.catalog.processes)
            raise NotFoundError(f"process '{process_id}' is not in the catalog (tiers/catalog.yaml). "
                                f"Known processes: {known}.", details={"process": process_id, "see": "catalog"})
        return entry

    def route(self, process_id: str, data: dict[str, Any] | None = None) -> Route:
        return self.route_with(self.decision, self.entry(process_id), data)

    @staticmethod
    def route_with(decision: Decision, entry: CatalogEntry, data: dict[str, Any] | None) -> Route:
        inputs = routing_inputs(entry, data)
        outputs, matched = decision.evaluate(inputs)
        tier = outputs.get("tier")
        if tier not in (1, 2, 3):
            raise EvaluationError(f"{decision.source or ROUTING_DECISION}: rule {', '.join(matched) or '-'} gave tier "
                                  f"{tier!r} for '{entry.id}'; a tier must be 1, 2 or 3.",
                                  details={"process": entry.id, "outputs": outputs, "matched_rules": matched})
        used = {name: inputs.get(name) for name in decision.input_names}
        return Route(process=entry.id, tier=int(tier), rationale=str(outputs.get("rationale") or ""),
                     matched_rule=matched[0] if matched else None, inputs=used)
