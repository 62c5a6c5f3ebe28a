"""`tiergate test`: every decision test and every scenario of the home, and what none of them reaches.

    from tiergate.scenarios.suite import run_suite
    report = run_suite(Engine(home="."))        # {"ok", "decisions", "scenarios", "coverage", ...}

Scenarios run on a scenario engine of their own: the same home's definitions, a throwaway SQLite
database in a temporary folder, and a test clock (``TestClock``) that only the scenarios move.
The engine's own database is never touched, and the real clock is never read.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tiergate.engine import Engine
from tiergate.scenarios.model import DEFAULT_START
from tiergate.scenarios.runner import FileReport, Hits, TestClock, run_file

SCENARIO_FOLDERS = ("processes/tests", "checklists/tests")
PARALLEL_JOINS = ("parallelGateway", "inclusiveGateway", "complexGateway")


def scenario_files(root: Path) -> list[Path]:
    return [path for folder in SCENARIO_FOLDERS for path in sorted((root / folder).glob("*.yaml"))]


def run_suite(engine: Engine) -> dict[str, Any]:
    definitions = engine.draft_definitions   # the files, even on a deployed database
    decision_reports = engine.decision_tests()
    catalog = definitions.catalog
    known = [entry.id for entry in catalog.processes] if catalog is not None else []
    hits = Hits()
    files: list[FileReport] = []
    paths = scenario_files(engine.home.root)
    if paths:
        with tempfile.TemporaryDirectory(prefix="tiergate-scenarios-") as folder:
            clock = TestClock(DEFAULT_START)
            scenario_engine = Engine(home=engine.home.root, database_url=f"sqlite:///{Path(folder) / 'scenarios.db'}",
                                     clock=clock)
            try:
                for path in paths:
                    files.append(run_file(scenario_engine, clock, path, engine.home.display(path), known, hits))
            finally:
                scenario_engine.close()
    decisions = [r.to_dict() for r in decision_reports]
    coverage = {"processes": _process_coverage(engine, hits, files),
                "decisions": _decision_coverage(engine, decision_reports, hits)}
    scenarios = [f.to_dict() for f in files]
    failed = sum(r["failed"] + len(r["problems"]) for r in decisions + scenarios)
    passed = sum(r["passed"] for r in decisions + scenarios)
    return {"ok": failed == 0, "passed": passed, "failed": failed, "decisions": decisions, "scenarios": scenarios,
            "coverage": coverage, "code": "tests_failed",
            "message": f"{failed} test(s) failed; each failure names its file:line in details"}


def _process_coverage(engine: Engine, hits: Hits, files: list[FileReport]) -> list[dict[str, Any]]:
    definitions = engine.draft_definitions
    tested = {f.process for f in files if f.process}
    out = []
    for process_id, checklist in sorted(definitions.checklists.items()):
        steps = [s.id for s in checklist.checklist.steps]
        reached = hits.steps.get(process_id, set())
        backs = [f"{s.id}>{t}" for s in checklist.checklist.steps if s.sends_back for t in s.sends_back.to]
        out.append({"process": process_id, "kind": "checklist", "source": checklist.source,
                    "scenarios": process_id in tested, "steps": len(steps),
                    "uncovered_steps": [s for s in steps if s not in reached],
                    "flows": len(backs), "uncovered_flows": [b for b in backs
                                                             if b not in hits.sent_back.get(process_id, set())]})
    for process_id, process in sorted(definitions.processes.items()):
        model = process.model
        steps = [n.id for n in model.nodes.values() if n.is_step]
        reached = hits.steps.get(process_id, set()) | hits.elements.get(process_id, set())
        pairs = hits.flows.get(process_id, set())
        elements = hits.elements.get(process_id, set())
        uncovered = []
        for flow in model.flows.values():
            target = model.nodes.get(flow.target)
            taken = (flow.source, flow.target) in pairs or (
                target is not None and target.kind in PARALLEL_JOINS and flow.source in elements
                and flow.target in elements)
            if not taken:
                uncovered.append(flow.id)
        out.append({"process": process_id, "kind": "bpmn", "source": process.source,
                    "scenarios": process_id in tested, "steps": len(steps),
                    "uncovered_steps": [s for s in steps if s not in reached],
                    "flows": len(model.flows), "uncovered_flows": uncovered})
    return out


def _decision_coverage(engine: Engine, reports: list[Any], hits: Hits) -> list[dict[str, Any]]:
    out = []
    by_id = {r.decision: r for r in reports}
    for decision_id, decision in sorted(engine.draft_definitions.decisions.items()):
        try:
            rules = decision.rule_ids()
        except Exception:  # noqa: BLE001 - a broken decision is reported by its tests
            continue
        report = by_id.get(decision_id)
        reached = set(report.covered if report is not None else []) | hits.rules.get(decision_id, set())
        out.append({"decision": decision_id, "rules": len(rules), "uncovered_rules": [r for r in rules
                                                                                      if r not in reached],
                    "by_scenarios": sorted(hits.rules.get(decision_id, set()))})
    return out
