"""Where the tier routing can send a process, for any start data.

The router (``tiergate.router``) reads a process's catalog facts, which a run cannot change,
and start data, which it can (``environment``, ``emergency``, ...). ``reachable_tiers`` tries
every value of the start-data inputs that can make a difference to the table: null, true and
false for booleans, each value listed in the input's ``inputValues``, and each literal a rule
compares the input with (and its neighbours, for ranges). ``tiergate check`` uses it to refuse a
catalog whose processes can be routed to a tier they have no definition for, and
``tiergate decisions impact`` to say so for an edited table.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from tiergate.definitions.decisions import Decision
from tiergate.definitions.models import CatalogEntry, RiskFacts
from tiergate.errors import TiergateError
from tiergate.router import Router

#: At most this many combinations of start-data values are tried per process.
MAX_COMBINATIONS = 4096
_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"|(?<![\w.])(-?\d+(?:\.\d+)?)(?![\w.])|\b(true|false)\b')


@dataclass
class Reach:
    tier: int
    rule: str | None
    data: dict[str, Any]
    """Start data that routes the process there ({} for the catalog facts alone)."""


def _literals(text: str | None) -> list[Any]:
    values: list[Any] = []
    for string, number, boolean in _LITERAL.findall(text or ""):
        if string or (not number and not boolean):
            values.append(string.replace('\\"', '"'))
        elif number:
            value = float(number) if "." in number else int(number)
            values.extend([value, value - 1, value + 1])
        else:
            values.append(boolean == "true")
    return values


def start_data_candidates(decision: Decision) -> dict[str, list[Any]]:
    """For each start-data input of the routing table, the values worth trying."""
    fixed = set(RiskFacts.model_fields) | {"process_id"}
    free = [name for name in decision.input_names if name not in fixed]
    candidates: dict[str, list[Any]] = {name: [None] for name in free}
    table = decision.model.decision(decision.id).table
    for index, clause in enumerate(table.inputs if table is not None else ()):
        name = clause.expression.strip()
        if name not in candidates:
            continue
        found = candidates[name]
        if (clause.type_ref or "").lower() == "boolean":
            found.extend([True, False])
        found.extend(_literals(clause.input_values))
        for rule in table.rules:  # type: ignore[union-attr]
            found.extend(_literals(rule.input_entries[index]))
    return {name: list({repr(v): v for v in values}.values()) for name, values in candidates.items()}


def reachable_tiers(decision: Decision, entry: CatalogEntry) -> dict[int, Reach]:
    """Each tier ``entry`` can be routed to, with the first start data found that does it."""
    candidates = start_data_candidates(decision)
    names = list(candidates)
    combinations: Any = itertools.product(*(candidates[n] for n in names))
    found: dict[int, Reach] = {}
    for values in itertools.islice(combinations, MAX_COMBINATIONS):
        data = {name: value for name, value in zip(names, values) if value is not None}
        try:
            route = Router.route_with(decision, entry, data)
        except TiergateError:
            continue  # no rule matches such a run: the router refuses it at start, as it should
        found.setdefault(route.tier, Reach(route.tier, route.matched_rule, data))
    return found
