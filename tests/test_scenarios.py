"""`tiergate test`: scenario tests for processes and checklists, decision tests, and coverage."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from support import CLIResult, HomeBuilder
from test_tier1_timers import APPROVAL
from tier1_helpers import tier1_home

from tiergate.engine import Engine

PLATFORM_PROCESSES = {"client-config-change", "knowledge-ingestion", "pay-scenario-test", "release-pipeline"}
PLATFORM_CHECKLISTS = {"defect-capture", "documentation-generation", "standard-data-import", "support-triage"}

DEMO_SCENARIOS = """\
scenarios:
  - name: gathered, extra skipped, reviewed
    actor: agent:bot
    start: {ticket_id: T-1}
    steps:
      - complete: gather
        evidence: {summary: Payslip totals are off, severity: S2}
      - skip: extra
        reason: nothing extra to check
      - complete: review
        actor: human:alice
        evidence: {approved: true}
      - expect: {status: completed, events: [step_skipped extra, completed]}
"""


def test_the_platform_scenarios_pass_and_reach_every_step_flow_and_rule(cli: Callable[..., CLIResult],
                                                                         repo_home: Path) -> None:
    result = cli("test", "--json", home=repo_home)
    assert result.returncode == 0, result
    data = result.json["data"]
    assert data["ok"] is True and data["failed"] == 0
    by_source = {s["source"]: s for s in data["scenarios"]}
    assert {f"processes/tests/{p}.yaml" for p in PLATFORM_PROCESSES} | \
           {f"checklists/tests/{c}.yaml" for c in PLATFORM_CHECKLISTS} <= set(by_source)
    assert all(s["ok"] and s["passed"] >= 1 for s in data["scenarios"])
    coverage = {item["process"]: item for item in data["coverage"]["processes"]}
    assert {p for p, item in coverage.items() if item["kind"] == "bpmn"} == PLATFORM_PROCESSES
    assert {p for p, item in coverage.items() if item["kind"] == "checklist"} == PLATFORM_CHECKLISTS
    for process_id, item in coverage.items():
        assert item["scenarios"] is True, process_id
        assert item["uncovered_steps"] == [] and item["uncovered_flows"] == [], (process_id, item)
        assert item["steps"] > 0
    # client-config-change's 28 flows include the 12 of pay-scenario-test, which it calls.
    assert sum(item["flows"] for item in coverage.values() if item["kind"] == "bpmn") == 28 + 28 + 12 + 28
    assert all(d["uncovered_rules"] == [] for d in data["coverage"]["decisions"])
    # The decisions' own tests run too.
    assert {d["decision"] for d in data["decisions"]} >= {"tier_routing", "support_triage"}
    human = cli("test", home=repo_home)
    assert human.returncode == 0
    assert "ok  checklists/tests/support-triage.yaml: 2 passed, 0 failed" in human.stdout
    assert "release-pipeline (bpmn): steps 9/9, flows 28/28" in human.stdout


def test_a_failing_case_names_its_file_and_line_and_exits_1(cli: Callable[..., CLIResult], demo_home: HomeBuilder,
                                                             make_engine: Callable[..., Engine]) -> None:
    demo_home.write("checklists/tests/demo.yaml", DEMO_SCENARIOS + """\
  - name: expects the wrong things
    actor: agent:bot
    start: {ticket_id: T-2}
    steps:
      - complete: gather
        evidence: {summary: Payslip totals are off, severity: S2}
      - complete: review
        actor: human:alice
        evidence: {approved: true}
        refused: not_ready
      - complete: extra
        evidence: {}
        gate_fails: /note
      - expect: {ready: [gather]}
""")
    demo_home.write("checklists/tests/demo-more.yaml", """\
scenarios:
  - name: a gate that was expected to fail passes
    start: {ticket_id: T-3}
    steps:
      - complete: gather
        evidence: {summary: Payslip totals are off, severity: S2}
        gate_fails: /severity
  - name: the start data is refused
    start: {ticket_id: nope}
""")
    result = cli("test", "--json", home=demo_home)
    assert result.returncode == 1, result
    error = result.json["error"]
    assert error["code"] == "tests_failed"
    files = {s["source"]: s for s in error["details"]["scenarios"]}
    demo = files["checklists/tests/demo.yaml"]
    assert (demo["passed"], demo["failed"]) == (1, 1)
    # The refusal and the failed gate were as expected; the last expectation is wrong (line 27).
    [failure] = demo["failures"]
    assert failure["at"] == "checklists/tests/demo.yaml:27"
    assert failure["message"] == "ready: expected ['gather'], got ['extra']"
    more = files["checklists/tests/demo-more.yaml"]
    assert [(f["at"], f["message"]) for f in more["failures"]] == [
        ("checklists/tests/demo-more.yaml:5", "complete gather: expected the gate to fail on /severity, "
                                              "but it was accepted."),
        ("checklists/tests/demo-more.yaml:9", "the run did not start: start data for 'demo' is not valid:\n"
                                              "  /ticket_id: 'nope' does not match '^T-[0-9]+$'\n"
                                              "Fix those fields."),
    ]
    human = cli("test", home=demo_home)
    assert human.returncode == 1
    assert "checklists/tests/demo.yaml:27: expects the wrong things: ready: expected ['gather'], got ['extra']" \
        in human.stdout
    # The home's own database was not used.
    assert make_engine(demo_home).runs() == []


def test_a_malformed_scenario_file_is_a_problem_with_its_line(cli: Callable[..., CLIResult],
                                                               demo_home: HomeBuilder) -> None:
    demo_home.write("checklists/tests/demo.yaml", """\
scenarios:
  - name: two actions in one step
    start: {ticket_id: T-1}
    steps:
      - complete: gather
        skip: gather
        reason: both
""")
    demo_home.write("checklists/tests/nothing-known.yaml", "scenarios: [{name: x}]\n")
    result = cli("test", "--json", home=demo_home)
    assert result.returncode == 1
    files = {s["source"]: s for s in result.json["error"]["details"]["scenarios"]}
    [problem] = files["checklists/tests/demo.yaml"]["problems"]
    assert problem.startswith("checklists/tests/demo.yaml:5:") and "exactly one of complete, skip, after, message, expect" \
        in problem
    assert files["checklists/tests/nothing-known.yaml"]["problems"] == [
        "checklists/tests/nothing-known.yaml:1: no process in the catalog matches this file. Name the file "
        "<process-id>.yaml or <process-id>-<anything>.yaml, or give `process:`."]


def test_coverage_names_what_no_scenario_reaches(cli: Callable[..., CLIResult], demo_home: HomeBuilder) -> None:
    demo_home.write("checklists/tests/demo.yaml", """\
scenarios:
  - name: only the first step
    start: {ticket_id: T-1}
    steps:
      - complete: gather
        evidence: {summary: Payslip totals are off, severity: S2}
""")
    result = cli("test", "--json", home=demo_home)
    assert result.returncode == 0, result
    [item] = result.json["data"]["coverage"]["processes"]
    assert item == {"process": "demo", "kind": "checklist", "source": "checklists/demo.yaml", "scenarios": True,
                    "steps": 3, "uncovered_steps": ["extra", "review"], "flows": 0, "uncovered_flows": []}
    routing = next(d for d in result.json["data"]["coverage"]["decisions"] if d["decision"] == "tier_routing")
    assert routing["by_scenarios"] == ["rule_tier2_structured"]


def test_timers_fire_on_the_test_clock_and_flows_are_covered(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"approval": APPROVAL})
    # 2030 is in the future: on the real clock none of these timers would be due.
    home.write("processes/tests/approval-reminders.yaml", """\
scenarios:
  - name: a reminder after four hours, then an approval
    actor: human:alice
    at: 2030-01-07T09:00:00Z
    steps:
      - after: PT3H
      - expect: {ready: [approve]}
      - after: PT1H
      - expect:
          ready: [approve, nudge]
          events: [timer_fired approve, escalated approve, step_ready nudge]
          path: [start, approve, remind_approver, nudge]
      - complete: nudge
        evidence: {}
      - complete: approve
        evidence: {}
      - expect: {status: completed, path: [nudge, nudged, end]}
""")
    result = cli("test", "--json", home=home)
    assert result.returncode == 0, result
    [item] = [i for i in result.json["data"]["coverage"]["processes"] if i["process"] == "approval"]
    assert item["kind"] == "bpmn" and item["uncovered_steps"] == ["escalate"]
    assert item["uncovered_flows"] == ["f_overdue", "f_esc_end"]


def test_a_scenario_that_expects_a_wrong_path_fails(tmp_path: Path, cli: Callable[..., CLIResult]) -> None:
    home = tier1_home(tmp_path / "home", {"approval": APPROVAL})
    home.write("processes/tests/approval.yaml", """\
scenarios:
  - name: no timer has fired yet
    actor: human:alice
    steps:
      - expect: {path: [approve, nudge]}
""")
    result = cli("test", "--json", home=home)
    assert result.returncode == 1
    [failure] = result.json["error"]["details"]["scenarios"][0]["failures"]
    assert failure["at"] == "processes/tests/approval.yaml:5"
    assert failure["message"].startswith("path: 'nudge' was not reached in this order; reached: start > approve")


def test_no_scenarios_at_all_still_runs_the_decision_tests(cli: Callable[..., CLIResult],
                                                           demo_home: HomeBuilder) -> None:
    result = cli("test", "--json", home=demo_home)
    assert result.returncode == 0, result
    data = result.json["data"]
    assert data["scenarios"] == [] and [d["decision"] for d in data["decisions"]] == ["tier_routing"]
    [item] = data["coverage"]["processes"]
    assert item["scenarios"] is False and item["uncovered_steps"] == ["gather", "extra", "review"]


def test_a_scenario_file_with_a_yaml_syntax_error_is_named_with_its_line_in_the_text_output(
        cli: Callable[..., CLIResult], demo_home: HomeBuilder) -> None:
    demo_home.write("checklists/tests/demo.yaml", "scenarios:\n  - name: broken\n    start: {ticket_id: [T-1}\n")
    human = cli("test", home=demo_home)
    assert human.returncode == 1, human
    assert "Traceback" not in human.stdout + human.stderr
    assert "checklists/tests/demo.yaml:3: expected ',' or ']', but got '}'" in human.stdout, human.stdout
    assert "FAILED  checklists/tests/demo.yaml: not run: 1 problem\n" in human.stdout, human.stdout
    assert "0 passed, 0 failed" not in human.stdout  # what hid it
    assert "demo (checklist): steps 0/3  no scenario file run" in human.stdout
    assert re.search(r"\n\d+ passed, 1 failed$", human.stdout.rstrip()), human.stdout  # the decision tests ran
