"""`tiergate test`: decision tests, process and checklist scenarios, and coverage."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, run_command
from tiergate.engine import Engine


def _mark(report: dict[str, Any]) -> str:
    return "[green]ok[/]" if report["ok"] else "[red]FAILED[/]"


def _tally(report: dict[str, Any]) -> str:
    """Cases passed and failed; for a file that could not be read (a YAML error, a wrong shape), that,
    so that "0 passed, 0 failed" never hides it. Each problem follows on its own line with its file:line."""
    counts = f"{report['passed']} passed, {report['failed']} failed"
    problems = len(report["problems"])
    if not problems:
        return counts
    said = f"{problems} problem{'s' if problems > 1 else ''}"
    return f"not run: {said}" if report["passed"] + report["failed"] == 0 else f"{counts}, {said}"


def _show(out: Console, data: dict[str, Any]) -> None:
    for report in data["decisions"]:
        out.print(f"{_mark(report)}  decision {report['decision']}: {_tally(report)}")
        for problem in report["problems"]:
            out.print(f"    [red]{escape(problem)}[/]")
        for failure in report["failures"]:
            out.print(f"    {escape(report['source'])}:{failure['line']}: {escape(failure['case'])}: "
                      f"{escape(failure['message'])}")
    for report in data["scenarios"]:
        out.print(f"{_mark(report)}  {escape(report['source'])}: {_tally(report)}")
        for problem in report["problems"]:
            out.print(f"    [red]{escape(problem)}[/]")
        for failure in report["failures"]:
            out.print(f"    {escape(failure['at'])}: {escape(failure['scenario'])}: {escape(failure['message'])}")
    out.print("\n[bold]coverage[/]")
    for item in data["coverage"]["processes"]:
        gaps = []
        if not item["scenarios"]:
            gaps.append("no scenario file run")
        if item["uncovered_steps"]:
            gaps.append(f"steps not reached: {', '.join(item['uncovered_steps'])}")
        if item["uncovered_flows"]:
            gaps.append(f"{'flows' if item['kind'] == 'bpmn' else 'send-backs'} not taken: "
                        f"{', '.join(item['uncovered_flows'])}")
        reached = item["steps"] - len(item["uncovered_steps"])
        flows = f", flows {item['flows'] - len(item['uncovered_flows'])}/{item['flows']}" if item["flows"] else ""
        line = f"  {item['process']} ({item['kind']}): steps {reached}/{item['steps']}{flows}"
        out.print(line + (f"  [yellow]{escape('; '.join(gaps))}[/]" if gaps else ""))
    for item in data["coverage"]["decisions"]:
        reached = item["rules"] - len(item["uncovered_rules"])
        line = f"  decision {item['decision']}: rules {reached}/{item['rules']}"
        if item["uncovered_rules"]:
            line += f"  [yellow]not reached: {', '.join(item['uncovered_rules'])}[/]"
        out.print(line)
    out.print(f"\n{data['passed']} passed, {data['failed']} failed")


@click.command("test")
@common_options
@run_command(_show, failed=lambda data: not data["ok"])
def test(engine: Engine) -> dict[str, Any]:
    """Run every decision test and every scenario (processes/tests/, checklists/tests/) and report
    coverage: steps, flows and rules no scenario reaches. Exits 1 on any failing case, named file:line."""
    from tiergate.scenarios.suite import run_suite

    return run_suite(engine)
