"""Test cases for decisions (``decisions/tests/<id>.yaml``) and their rule coverage.

    decision: support_triage
    cases:
      - name: platinum S1 pay calculation is P1
        inputs: {issue_category: pay-calculation, client_tier: platinum, severity: S1}
        expect: {priority: P1, route: payroll-escalations, sla_hours: 1}

``expect`` lists the outputs the case checks (numbers compare by value, so 4 equals 4.0).
A case may instead say ``expect_error: true`` for inputs the table must reject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tiergate.definitions.decisions import Decision
from tiergate.definitions.problems import ProblemList
from tiergate.definitions.yamlfile import load_yaml
from tiergate.errors import DefinitionError, TiergateError


class DecisionCase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    expect: dict[str, Any] | None = None
    expect_error: bool = False


class DecisionTestFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: str
    cases: list[DecisionCase] = Field(min_length=1)


@dataclass
class CaseResult:
    name: str
    passed: bool
    line: int
    message: str = ""
    matched_rules: list[str] = field(default_factory=list)


class CaseTally:
    """What a report of test cases knows from its ``cases`` and ``problems`` (decision tests and
    scenario files alike)."""

    cases: list[CaseResult]
    problems: list[str]

    @property
    def failed(self) -> list[CaseResult]:
        return [case for case in self.cases if not case.passed]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems


@dataclass
class DecisionReport(CaseTally):
    decision: str
    source: str
    cases: list[CaseResult] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def covered(self) -> list[str]:
        hit = {rule for case in self.cases for rule in case.matched_rules}
        return [rule for rule in self.rules if rule in hit]

    @property
    def uncovered(self) -> list[str]:
        hit = set(self.covered)
        return [rule for rule in self.rules if rule not in hit]

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "source": self.source, "ok": self.ok,
                "passed": len(self.cases) - len(self.failed), "failed": len(self.failed),
                "failures": [{"case": c.name, "line": c.line, "message": c.message} for c in self.failed],
                "rules": len(self.rules), "covered": len(self.covered), "uncovered": self.uncovered,
                "problems": self.problems}


def same(expected: Any, actual: Any) -> bool:
    """Equality with FEEL's view of numbers: 4 == 4.0 == Decimal('4')."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual if isinstance(expected, bool) and isinstance(actual, bool) else False
    if isinstance(expected, (int, float, Decimal)) and isinstance(actual, (int, float, Decimal)):
        return Decimal(str(expected)) == Decimal(str(actual))
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(same(a, b) for a, b in zip(expected, actual))
    return bool(expected == actual)


def run_tests(decision: Decision, test_path: Path, shown: str) -> DecisionReport:
    report = DecisionReport(decision=decision.id, source=shown)
    try:
        report.rules = decision.rule_ids()
    except TiergateError as err:
        report.problems.append(err.message)
        return report
    if not test_path.is_file():
        report.problems.append(f"{shown}: missing; write test cases for every rule of '{decision.id}'.")
        return report
    try:
        document = load_yaml(test_path)
        spec = DecisionTestFile.model_validate(document.data)
    except DefinitionError as err:
        report.problems.append(f"{shown}:{err.details.get('line', 1)}: {err.details.get('problem', err.message)}")
        return report
    except ValidationError as err:
        found = ProblemList(shown, document)
        found.add_validation_error(err, document.data)
        report.problems.extend(str(p) for p in found)
        return report
    if spec.decision != decision.id:
        report.problems.append(f"{shown}:1: tests name decision '{spec.decision}', but the file tests "
                               f"'{decision.id}'. Make them agree.")
    for index, case in enumerate(spec.cases):
        line = document.line_of(f"/cases/{index}")
        try:
            outputs, matched = decision.evaluate(case.inputs)
        except TiergateError as err:
            passed = case.expect_error
            report.cases.append(CaseResult(case.name, passed, line, "" if passed else f"error: {err.message}"))
            continue
        if case.expect_error:
            report.cases.append(CaseResult(case.name, False, line, f"expected an error, got {outputs}", matched))
            continue
        wrong = {k: (v, outputs.get(k)) for k, v in (case.expect or {}).items()
                 if k not in outputs or not same(v, outputs[k])}
        message = "; ".join(f"{k}: expected {exp!r}, got {got!r}" for k, (exp, got) in wrong.items())
        report.cases.append(CaseResult(case.name, not wrong, line, message, matched))
    return report
