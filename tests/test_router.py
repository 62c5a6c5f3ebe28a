"""The tier router, decide steps, decision tests and change impact, on the platform's own definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from support import CLIResult
from tiergate.engine import Engine
from tiergate.errors import RefusedError

PLATFORM_TIERS = {
    "knowledge-ingestion": 1, "client-config-change": 1, "release-pipeline": 1, "pay-scenario-test": 1,
    "support-triage": 2, "defect-capture": 2, "documentation-generation": 2, "standard-data-import": 2,
    "knowledge-qa": 3, "report-generation": 3, "general-search": 3,
}
TRIAGE_START = {"ticket_id": "SUP-10234", "client_id": "CL-0042", "client_tier": "gold",
                "summary": "Payslips show the wrong overtime rate since the last release"}


@pytest.fixture
def platform(repo_home: Path, make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(repo_home)


def test_every_catalog_process_routes_to_its_tier(platform: Engine) -> None:
    routes = {r.process: r for r in platform.route()}
    assert {p: r.tier for p, r in routes.items()} == PLATFORM_TIERS
    assert routes["support-triage"].matched_rule == "rule_tier2_structured"
    assert routes["support-triage"].inputs["structured"] is True
    assert {p["id"]: p["tier"] for p in platform.processes()} == PLATFORM_TIERS


def test_no_shipped_override_sends_a_process_where_it_cannot_start(platform: Engine) -> None:
    # The emergency and production overrides once raised Tier 2 processes to Tier 1, where none
    # has a BPMN file, so such a run could never start (issue 12). Start data leaves them in Tier 2.
    for data in ({"environment": "production"}, {"emergency": True}):
        assert platform.route("support-triage", data)[0].tier == 2
    run = platform.start("support-triage", {**TRIAGE_START, "emergency": True}, actor="agent:bot")
    assert run.tier == 2


def test_tier_without_definition_is_refused(platform: Engine, repo_home: Path) -> None:
    (repo_home / "processes" / "release-pipeline.bpmn").unlink(missing_ok=True)
    platform.reload()
    with pytest.raises(RefusedError, match="'release-pipeline' is routed to tier 1 by rule rule_tier1_compliance"):
        platform.start("release-pipeline", {}, actor="human:alice")


def test_start_logs_routed_first(platform: Engine) -> None:
    run = platform.start("support-triage", TRIAGE_START, actor="agent:triage-bot")
    routed = platform.log(run.id)[0]
    assert routed["event"] == "routed" and routed["actor"] == "system:tiergate"
    assert routed["detail"]["tier"] == 2 and routed["detail"]["matched_rule"] == "rule_tier2_structured"
    assert routed["detail"]["inputs"]["process_id"] == "support-triage"
    assert routed["detail"]["inputs"]["environment"] is None


def _classify_triage(platform: Engine, category: str, severity: str, tier: str = "gold") -> str:
    run = platform.start("support-triage", {**TRIAGE_START, "client_tier": tier}, actor="agent:triage-bot")
    platform.complete(run.id, "gather-context", {"duplicate_of": None, "next_pay_date": "2026-11-30",
                                                 "context_notes": "Overtime element changed in release 4.2"},
                      actor="agent:triage-bot")
    platform.skip(run.id, "reproduce", "visible in the configuration", actor="agent:triage-bot")
    platform.complete(run.id, "classify", {"issue_category": category, "client_tier": tier, "severity": severity,
                                           "severity_rationale": "Forty employees paid at the wrong rate",
                                           "pay_impact": True}, actor="agent:triage-bot")
    return run.id


def test_triage_decide_step_routes_by_support_triage(platform: Engine) -> None:
    run_id = _classify_triage(platform, "pay-calculation", "S2")
    info = platform.status(run_id)
    route = next(s for s in info.steps if s.id == "route")
    assert route.state == "done" and route.actor == "system:tiergate"
    assert route.evidence == {"priority": "P2", "route": "pay-and-statutory", "sla_hours": 4}
    assert info.data["route"] == "pay-and-statutory"
    assert [s.id for s in info.ready_steps] == ["assign", "acknowledge"]
    assert "pay-and-statutory" in info.ready_steps[0].instructions
    evaluated = next(e for e in platform.log(run_id) if e["event"] == "decision_evaluated")
    assert evaluated["detail"]["decision"] == "support_triage"
    assert evaluated["detail"]["inputs"] == {"issue_category": "pay-calculation", "client_tier": "gold",
                                             "severity": "S2"}
    assert len(evaluated["detail"]["matched_rules"]) == 1
    # Another classification routes elsewhere.
    major = platform.status(_classify_triage(platform, "integration", "S1", "platinum"))
    assert major.data["route"] == "major-incident" and major.data["priority"] == "P1"


def test_decide_step_cannot_be_completed_by_hand(platform: Engine) -> None:
    run = platform.start("support-triage", TRIAGE_START, actor="agent:triage-bot")
    with pytest.raises(RefusedError) as err:
        platform.complete(run.id, "route", {"priority": "P1"}, actor="human:alice")
    assert err.value.reason == "not_ready"


def test_decision_is_pinned_with_the_run(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(repo_home)
    run = engine.start("support-triage", TRIAGE_START, actor="agent:triage-bot")
    # A lead changes the triage table after the run started: new runs only.
    path = repo_home / "decisions" / "support_triage.dmn"
    path.write_text(path.read_text().replace('"pay-and-statutory"', '"payroll-team"'))
    fresh = make_engine(repo_home)
    fresh.complete(run.id, "gather-context", {"duplicate_of": None, "next_pay_date": "2026-11-30",
                                              "context_notes": "Overtime element changed in release 4.2"},
                   actor="agent:triage-bot")
    fresh.skip(run.id, "reproduce", "n/a", actor="agent:triage-bot")
    fresh.complete(run.id, "classify", {"issue_category": "pay-calculation", "client_tier": "gold", "severity": "S2",
                                        "severity_rationale": "Forty employees paid at the wrong rate",
                                        "pay_impact": True}, actor="agent:triage-bot")
    assert fresh.status(run.id).data["route"] == "pay-and-statutory"
    assert fresh.start("support-triage", TRIAGE_START, actor="agent:x").definition_version != run.definition_version


def test_decisions_test_passes_with_full_coverage(platform: Engine) -> None:
    reports = platform.decision_tests()
    assert {r.decision for r in reports} == {"tier_routing", "knowledge_validation_routing", "support_triage",
                                             "deployment_gate", "gap_classification"}
    for report in reports:
        assert report.ok, report.to_dict()
        assert report.uncovered == [] and len(report.rules) > 0


def test_decisions_test_reports_failures_and_uncovered_rules(cli: Callable[..., CLIResult], repo_home: Path) -> None:
    tests = repo_home / "decisions" / "tests" / "deployment_gate.yaml"
    text = tests.read_text()
    # Break one expectation, and drop every case that reaches the last (catch-all) rule.
    broken = text.replace("gate: approve", "gate: approved", 1)
    tests.write_text(broken)
    result = cli("decisions", "test", "deployment_gate", home=repo_home)
    assert result.returncode == 1
    assert "FAILED  deployment_gate" in result.stdout
    assert "gate: expected 'approved', got 'approve'" in result.stdout
    assert "decisions/tests/deployment_gate.yaml:" in result.stdout
    as_json = cli("decisions", "test", "--json", home=repo_home).json
    assert as_json["ok"] is False and as_json["error"]["code"] == "decision_tests_failed"


def test_uncovered_rules_are_named(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    import yaml

    tests = repo_home / "decisions" / "tests" / "tier_routing.yaml"
    spec = yaml.safe_load(tests.read_text())
    spec["cases"] = [c for c in spec["cases"] if c["expect"].get("tier") != 3]
    tests.write_text(yaml.safe_dump(spec))
    report = next(r for r in make_engine(repo_home).decision_tests(["tier_routing"]))
    assert report.ok and report.uncovered == ["rule_tier3_default"]


def test_check_flags_a_decision_without_tests(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    (repo_home / "decisions" / "tests" / "deployment_gate.yaml").unlink()
    problems = [str(p) for p in make_engine(repo_home).check()]
    assert ("decisions/deployment_gate.dmn:1: decision 'deployment_gate' has no test cases: add "
            "decisions/tests/deployment_gate.yaml and run `tiergate decisions test`.") in problems


def test_check_reports_a_broken_dmn_with_its_line(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    path = repo_home / "decisions" / "deployment_gate.dmn"
    text = path.read_text()
    path.write_text(text.replace('<text>"block"</text>', '<text>"block</text>', 1))
    problems = [p for p in make_engine(repo_home).check() if p.path == "decisions/deployment_gate.dmn"]
    assert len(problems) == 1 and "FEEL syntax error" in problems[0].message
    assert "deployment_gate.dmn, decision 'deployment_gate', rule" in problems[0].message
    cell = text.rindex("<outputEntry", 0, text.index('<text>"block"</text>'))
    assert problems[0].line == text[:cell].count("\n") + 1


def test_hostile_dmn_is_refused_by_check(repo_home: Path, make_engine: Callable[..., Engine]) -> None:
    (repo_home / "decisions" / "evil.dmn").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d" name="d" namespace="x">'
        '<decision id="evil" name="evil"><literalExpression><text>"&x;"</text></literalExpression></decision>'
        '</definitions>')
    problems = [p for p in make_engine(repo_home).check() if p.path == "decisions/evil.dmn"]
    assert problems and all("root:" not in p.message for p in problems)
    assert any("DOCTYPE" in p.message or "entit" in p.message.lower() for p in problems), problems


def test_impact_of_a_changed_routing_table(cli: Callable[..., CLIResult], repo_home: Path,
                                           make_engine: Callable[..., Engine], tmp_path: Path) -> None:
    engine = make_engine(repo_home)
    engine.start("support-triage", TRIAGE_START, actor="agent:triage-bot")
    engine.start("defect-capture", DEFECT_START, actor="agent:qa-bot")
    current = repo_home / "decisions" / "tier_routing.dmn"
    old = tmp_path / "tier_routing.main.dmn"
    old.write_bytes(current.read_bytes())
    # The lead raises every structured client-data process to Tier 1 (an edit in the modeler).
    text = current.read_text()
    assert text.count("rule_tier2_structured") >= 1
    edited = _raise_client_data(text)
    current.write_text(edited)
    result = cli("decisions", "impact", str(current), "--against", str(old), "--json", home=repo_home)
    data = result.json["data"]
    changed = {row["process"]: (row["old_tier"], row["new_tier"]) for row in data["catalog"]}
    facts = {p["id"]: p["facts"] for p in engine.processes()}
    expected = {pid: (2, 1) for pid, tier in PLATFORM_TIERS.items() if tier == 2 and facts[pid]["client_data"]}
    assert changed == expected and expected
    assert data["replayed"] == 2
    assert data["changed"] == sum(1 for pid in ("support-triage", "defect-capture") if pid in expected)
    people = cli("decisions", "impact", str(current), "--against", str(old), home=repo_home)
    assert "logged decisions would have gone differently" in people.stdout


DEFECT_START = {"source": "internal-testing", "source_ref": "QA-SESSION-11", "product_area": "pay-calculation",
                "summary": "Overtime premium rounds down instead of to the nearest cent",
                "reported_by": "agent:qa-bot"}


def _raise_client_data(text: str) -> str:
    """Insert a FIRST rule before rule_tier2_structured: structured + client data -> tier 1."""
    marker = text.index('<rule id="rule_tier2_structured"')
    rule_xml = text[marker:text.index("</rule>", marker) + len("</rule>")]
    new_rule = (rule_xml.replace('id="rule_tier2_structured"', 'id="rule_raise_client_data"')
                .replace("<text>2</text>", "<text>1</text>"))
    new_rule = _set_input_cell(text, new_rule, "client_data", "true")
    # Make the ids of the copied entries unique.
    new_rule = new_rule.replace('id="', 'id="raised_').replace('id="raised_rule_raise_client_data"',
                                                               'id="rule_raise_client_data"')
    return text[:marker] + new_rule + "\n      " + text[marker:]


def _set_input_cell(text: str, rule_xml: str, input_name: str, value: str) -> str:
    import re

    inputs = re.findall(r"<inputExpression[^>]*>\s*<text>([^<]*)</text>", text)
    column = [name.strip() for name in inputs].index(input_name)
    entries = list(re.finditer(r"<inputEntry[^>]*>\s*<text>([^<]*)</text>", rule_xml))
    cell = entries[column]
    return rule_xml[:cell.start(1)] + value + rule_xml[cell.end(1):]
