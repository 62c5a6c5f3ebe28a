"""Benchmark: tiergate's DMN engine against SpiffWorkflow 3.2.0's DMNEngine.

    python bench/dmn.py                         # the inline routing table, both engines
    python bench/dmn.py -n 50000                # more evaluations
    python bench/dmn.py --decisions-file decisions/routing.dmn --decision routing \
        --inputs '{"client_data": true}'        # a real FEEL model (tiergate only)

The inline table is a routing-like FIRST table: inputs compliance_critical, touches_live_systems,
client_data, structured (booleans) and process_id (string); outputs tier (number) and rationale
(string); 10 rules. SpiffWorkflow gets the same table with its Python-expression cell syntax
(it evaluates cells with Python ``eval``), tiergate the FEEL one. Both evaluate the same input
rows in the same order; the script checks they agree before timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from itertools import cycle, islice
from pathlib import Path

# (compliance_critical, touches_live_systems, client_data, structured, process_id) -> (tier, why)
# Each cell: (FEEL unary test, Spiff Python test); None = any value.
RULES = [
    (("true", "True"), None, None, None, None, 3, "compliance-critical work"),
    (None, ("true", "True"), ("true", "True"), None, None, 3, "live systems with client data"),
    (None, None, None, None, ('"incident-response","payroll-run"', ' in ["incident-response", "payroll-run"]'),
     3, "process always at tier 3"),
    (None, ("true", "True"), None, None, None, 2, "touches live systems"),
    (None, None, ("true", "True"), ("false", "False"), None, 2, "unstructured client data"),
    (None, None, None, ("false", "False"), ('"release-train"', '"release-train"'), 2, "unstructured release"),
    (None, None, ("true", "True"), None, None, 2, "client data"),
    (None, None, None, ("true", "True"), ('"docs-update"', '"docs-update"'), 0, "structured docs update"),
    (None, None, None, ("false", "False"), None, 1, "unstructured internal work"),
    (None, None, None, None, None, 1, "default"),
]
INPUTS = ["compliance_critical", "touches_live_systems", "client_data", "structured", "process_id"]
ROWS = [
    {"compliance_critical": False, "touches_live_systems": False, "client_data": False, "structured": True,
     "process_id": "docs-update"},
    {"compliance_critical": False, "touches_live_systems": False, "client_data": False, "structured": False,
     "process_id": "refactor"},
    {"compliance_critical": False, "touches_live_systems": True, "client_data": False, "structured": True,
     "process_id": "deploy"},
    {"compliance_critical": False, "touches_live_systems": False, "client_data": True, "structured": True,
     "process_id": "report"},
    {"compliance_critical": True, "touches_live_systems": False, "client_data": False, "structured": True,
     "process_id": "audit"},
    {"compliance_critical": False, "touches_live_systems": False, "client_data": False, "structured": True,
     "process_id": "payroll-run"},
    {"compliance_critical": False, "touches_live_systems": False, "client_data": False, "structured": True,
     "process_id": "misc"},
    {"compliance_critical": False, "touches_live_systems": True, "client_data": True, "structured": False,
     "process_id": "migration"},
]


def table_xml(syntax: int) -> str:
    """The routing table as DMN 1.3 XML; ``syntax`` 0 = FEEL, 1 = SpiffWorkflow's Python."""
    inputs = "".join(
        f'<input id="in_{name}" label="{name}"><inputExpression id="ie_{name}" typeRef="'
        f'{"string" if name == "process_id" else "boolean"}"><text>{name}</text></inputExpression></input>'
        for name in INPUTS)
    rules = []
    for i, rule in enumerate(RULES, 1):
        cells = "".join(
            f'<inputEntry id="r{i}_i{j}"><text>{_esc(c[syntax]) if c else "-"}</text></inputEntry>'
            for j, c in enumerate(rule[:5]))
        outs = (f'<outputEntry id="r{i}_o1"><text>{rule[5]}</text></outputEntry>'
                f'<outputEntry id="r{i}_o2"><text>"{rule[6]}"</text></outputEntry>')
        rules.append(f'<rule id="rule_{i}">{cells}{outs}</rule>')
    variables = "".join(f'<inputData id="id_{n}" name="{n}"/>' for n in INPUTS) if syntax == 0 else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="bench" name="bench" '
        'namespace="https://tiergate.example/bench">'
        '<decision id="routing" name="routing"><decisionTable id="routing_table" hitPolicy="FIRST">'
        f'{inputs}<output id="out_tier" name="tier" typeRef="number"/>'
        f'<output id="out_rationale" name="rationale" typeRef="string"/>{"".join(rules)}'
        f'</decisionTable></decision>{variables}</definitions>')


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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

    model, ours = tiergate_engine(table_xml(0).encode(), "routing")
    theirs = spiff_engine(table_xml(1))
    for row in ROWS:  # same answers before timing anything
        mine, spiff = ours(row).value, theirs(row)
        assert mine == {"tier": Decimal(spiff["tier"]), "rationale": spiff["rationale"]}, (row, mine, spiff)
    us_ours = time_it(ours, ROWS, args.n)
    us_spiff = time_it(theirs, ROWS, max(args.n // 10, 1000))
    print(f"routing table: {len(RULES)} rules, {len(INPUTS)} inputs, FIRST, {len(ROWS)} input rows")
    print(f"tiergate.dmn        {us_ours:8.1f} us per evaluation")
    print(f"SpiffWorkflow 3.2.0 {us_spiff:8.1f} us per evaluation")
    print(f"ratio               {us_spiff / us_ours:8.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
