"""`tiergate test`: decision tests, process and checklist scenarios, and coverage."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, run_command
from tiergate.engine import Engine


def _show(out: Console, data: dict[str, Any]) -> None:
    for report in data["decisions"]:
        mark = "[green]ok[/]" if report["ok"] else "[red]FAILED[/]"
        out.print(f"{mark}  decision {report['decision']}: {report['passed']} passed, {report['failed']} failed")
        for problem in report["problems"]:
            out.print(f"    [red]{escape(problem)}[/]")
        for failure in report["failures"]:
            out.print(f"    {escape(report['source'])}:{failure['line']}: {escape(failure['case'])}: "
                      f"{escape(failure['message'])}")
    for report in data["scenarios"]:
        mark = "[green]ok[/]" if report["ok"] else "[red]FAILED[/]"
        out.print(f"{mark}  {escape(report['source'])}: {report['passed']} passed, {report['failed']} failed")
        for problem in report["problems"]:
            out.print(f"    [red]{escape(problem)}[/]")
        for failure in report["failures"]:
            out.print(f"    {escape(failure['at'])}: {escape(failure['scenario'])}: {escape(failure['message'])}")
    out.print("\n[bold]coverage[/]")
    for item in data["coverage"]["processes"]:
        gaps = []
        if not item["scenarios"]:
            gaps.append("no scenario file")
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
