"""Benchmark: tiergate's DMN engine against SpiffWorkflow 3.2.0's DMNEngine and GoRules' zen-engine.

    python bench/dmn.py                         # decisions/tier_routing.dmn, both engines
    python bench/dmn.py -n 50000                # more evaluations
    python bench/dmn.py --decisions-file decisions/routing.dmn --decision routing \
        --inputs '{"client_data": true}'        # a real FEEL model (tiergate only)

tiergate evaluates the platform's own ``decisions/tier_routing.dmn`` (FEEL, as a modeler writes
it). SpiffWorkflow gets the same four rules written in its Python-expression cell syntax (it
evaluates cells with Python ``eval``). Both evaluate the same rows (every catalog process with
its real facts, plain and raised by start data); the script checks the tiers agree first.
GoRules' zen-engine (a Rust engine with Python bindings, ``pip install zen-engine``) gets the
same table in its JSON decision model (JDM).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from itertools import cycle, islice
from pathlib import Path

# The platform's decisions/tier_routing.dmn (FIRST), written again in SpiffWorkflow's cell syntax:
# Python expressions evaluated with ``eval`` (the four rules the file has since a15289d dropped the
# production and emergency raises). Columns, in the file's order:
INPUTS = ["process_id", "compliance_critical", "touches_live_systems", "client_data", "structured",
          "human_approval", "reversible", "environment", "emergency"]
# Each rule: a Python test per column (None = any), then (tier, rationale).
RULES = [
    ([None, "True", None, None, None, None, None, None, None], 1, "Tier 1: compliance-critical"),
    ([None, None, "True", None, None, None, None, None, None], 1, "Tier 1: touches live systems"),
    ([None, None, None, None, "True", None, None, None, None], 2, "Tier 2: structured"),
    ([None] * 9, 3, "Tier 3: unstructured and low stakes"),
]
REPO = Path(__file__).resolve().parents[1]


def routing_rows() -> list[dict]:
    """Every catalog process with its real facts, and each again as a production and an emergency run."""
    import yaml

    catalog = yaml.safe_load((REPO / "tiers" / "catalog.yaml").read_text())["processes"]
    base = [{"process_id": p["id"], "human_approval": False, "reversible": True, **p["facts"],
             "environment": None, "emergency": None} for p in catalog]
    return base + [{**r, "environment": "production"} for r in base] + [{**r, "emergency": True} for r in base]


def table_xml() -> str:
    """The routing table in SpiffWorkflow's Python cell syntax, as DMN 1.3 XML."""
    inputs = "".join(
        f'<input id="in_{name}" label="{name}"><inputExpression id="ie_{name}" typeRef="string">'
        f'<text>{name}</text></inputExpression></input>' for name in INPUTS)
    rules = []
    for i, (cells, tier, why) in enumerate(RULES, 1):
        entries = "".join(f'<inputEntry id="r{i}_i{j}"><text>{_esc(c) if c else "-"}</text></inputEntry>'
                          for j, c in enumerate(cells))
        rules.append(f'<rule id="rule_{i}">{entries}<outputEntry id="r{i}_o1"><text>{tier}</text></outputEntry>'
                     f'<outputEntry id="r{i}_o2"><text>"{why}"</text></outputEntry></rule>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="bench" name="bench" '
        'namespace="https://tiergate.example/bench">'
        '<decision id="routing" name="routing"><decisionTable id="routing_table" hitPolicy="FIRST">'
        f'{inputs}<output id="out_tier" name="tier" typeRef="number"/>'
        f'<output id="out_rationale" name="rationale" typeRef="string"/>{"".join(rules)}'
        '</decisionTable></decision></definitions>')


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def time_it(fn, rows: list, n: int) -> float:
    """Microseconds per call of ``fn(row)`` over ``n`` calls (best of 3 runs)."""
    best = float("inf")
    for _ in range(3):
        batch = list(islice(cycle(rows), n))
        start = time.perf_counter()
        for row in batch:
            fn(row)
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def tiergate_engine(source, decision: str):
    from tiergate.dmn import load_dmn

    model = load_dmn(source)
    return model, (lambda row: model.evaluate(decision, row))


def spiff_engine(xml: str):
    from lxml import etree
    from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
    from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
    from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser

    parser = BpmnDmnParser()
    parser.add_dmn_xml(etree.fromstring(xml.encode()))
    dmn_parser = parser.dmn_parsers["routing"]
    dmn_parser.parse()
    engine = DMNEngine(dmn_parser.decision.decisionTables[0])

    class Workflow:  # what DMNEngine reads from a task: task.workflow.script_engine, task.data
        script_engine = PythonScriptEngine()

    class Task:
        workflow = Workflow()

        def __init__(self, data):
            self.data = data

    return lambda row: engine.result(Task(dict(row)))


def zen_content() -> dict:
    """The same table in GoRules' JSON decision model (JDM): input -> decision table -> output.
    Cells are zen unary tests: ``false``, ``"production"``; an empty cell matches anything."""
    inputs = [{"id": f"in_{name}", "name": name, "field": name} for name in INPUTS]
    outputs = [{"id": "out_tier", "name": "tier", "field": "tier"},
               {"id": "out_rationale", "name": "rationale", "field": "rationale"}]
    rules = []
    for i, (cells, tier, why) in enumerate(RULES, 1):
        rule = {"_id": f"rule_{i}", "out_tier": str(tier), "out_rationale": json.dumps(why)}
        for name, cell in zip(INPUTS, cells):
            rule[f"in_{name}"] = "" if cell is None else {"True": "true", "False": "false"}.get(cell, cell)
        rules.append(rule)
    table = {"id": "routing", "type": "decisionTableNode", "name": "routing",
             "position": {"x": 200, "y": 0},
             "content": {"hitPolicy": "first", "inputs": inputs, "outputs": outputs, "rules": rules}}
    return {"contentType": "application/vnd.gorules.decision",
            "nodes": [{"id": "request", "type": "inputNode", "name": "Request", "position": {"x": 0, "y": 0}},
                      table,
                      {"id": "response", "type": "outputNode", "name": "Response", "position": {"x": 400, "y": 0}}],
            "edges": [{"id": "e1", "sourceId": "request", "targetId": "routing", "type": "edge"},
                      {"id": "e2", "sourceId": "routing", "targetId": "response", "type": "edge"}]}


def zen_engine():
    """GoRules zen-engine (Rust, Python bindings): the table compiled once, evaluated per row."""
    import zen

    decision = zen.ZenEngine().create_decision(json.dumps(zen_content()))
    return lambda row: decision.evaluate(row)["result"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20000, help="evaluations per timing run (default 20000)")
    ap.add_argument("--decisions-file", type=Path, help="bench this DMN file with tiergate instead")
    ap.add_argument("--decision", help="decision id or name in --decisions-file (default: the first)")
    ap.add_argument("--inputs", help="JSON object (or @file) of inputs for --decisions-file")
    args = ap.parse_args(argv)

    if args.decisions_file:
        from tiergate.dmn import load_dmn

        model = load_dmn(args.decisions_file)
        decision = args.decision or model.decisions[0].id
        raw = args.inputs or "{}"
        rows = [json.loads(Path(raw[1:]).read_text() if raw.startswith("@") else raw)]
        us = time_it(lambda row: model.evaluate(decision, row), rows, args.n)
        result = model.evaluate(decision, rows[0])
        print(f"tiergate  {args.decisions_file} / {decision}: {us:.1f} us per evaluation "
              f"(value {result.value!r}, rules {result.matched_rules})")
        return 0

    model, ours = tiergate_engine(REPO / "decisions" / "tier_routing.dmn", "tier_routing")
    theirs = spiff_engine(table_xml())
    zen = zen_engine()
    inputs = routing_rows()
    for row in inputs:  # the same tiers before timing anything
        mine, spiff, gorules = ours(row).value, theirs(row), zen(row)
        assert mine["tier"] == Decimal(spiff["tier"]), (row, mine, spiff)
        assert mine["tier"] == Decimal(str(gorules["tier"])), (row, mine, gorules)
    us_ours = time_it(ours, inputs, args.n)
    us_zen = time_it(zen, inputs, args.n)
    us_spiff = time_it(theirs, inputs, max(args.n // 10, 1000))
    print(f"decisions/tier_routing.dmn: {len(RULES)} rules, {len(INPUTS)} inputs, FIRST, {len(inputs)} input rows "
          "(the catalog's 11 processes, plain, production and emergency runs)")
    print(f"tiergate.dmn        {us_ours:8.1f} us per evaluation")
    print(f"zen-engine {_version('zen-engine'):8} {us_zen:8.1f} us per evaluation   "
          f"(tiergate {us_zen / us_ours:.1f}x faster)")
    print(f"SpiffWorkflow 3.2.0 {us_spiff:8.1f} us per evaluation   (tiergate {us_spiff / us_ours:.1f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
