"""Commands for leads: route, decisions test, decisions impact, decisions diff."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, parse_json_option, run_command, table
from tiergate.errors import InvalidDataError

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _show_routes(out: Console, data: list[dict[str, Any]]) -> None:
    grid = table("process", "tier", "rule", "rationale")
    for route in data:
        grid.add_row(route["process"], str(route["tier"]), route["matched_rule"] or "-", escape(route["rationale"]))
    out.print(grid)


@click.command()
@click.argument("process", required=False)
@click.option("--data", default=None, metavar="JSON|@FILE", help="Start data the routing table may read.")
@common_options
@run_command(_show_routes)
def route(engine: Engine, process: str | None, data: str | None) -> list[dict[str, Any]]:
    """Show the tier decisions/tier_routing.dmn gives PROCESS (or every process), and why."""
    parsed = parse_json_option(data, "--data")
    if parsed is not None and not isinstance(parsed, dict):
        raise InvalidDataError("--data must be a JSON object.")
    return [r.to_dict() for r in engine.route(process, parsed)]


@click.group()
def decisions() -> None:
    """Test DMN decisions and see the impact of a change."""


def _show_tests(out: Console, data: dict[str, Any]) -> None:
    for report in data["reports"]:
        mark = "[green]ok[/]" if report["ok"] else "[red]FAILED[/]"
        out.print(f"{mark}  {report['decision']}: {report['passed']} passed, {report['failed']} failed; "
                  f"rules covered {report['covered']}/{report['rules']}")
        for problem in report["problems"]:
            out.print(f"    [red]{escape(problem)}[/]")
        for failure in report["failures"]:
            out.print(f"    {escape(report['source'])}:{failure['line']}: {escape(failure['case'])}: "
                      f"{escape(failure['message'])}")
        if report["uncovered"]:
            out.print(f"    [yellow]no case reaches rule(s): {', '.join(report['uncovered'])}[/]")
    out.print(f"{data['passed']} passed, {data['failed']} failed")


@decisions.command("test")
@click.argument("decision", nargs=-1)
@common_options
@run_command(_show_tests, failed=lambda data: not data["ok"])
def decisions_test(engine: Engine, decision: tuple[str, ...]) -> dict[str, Any]:
    """Run the test cases in decisions/tests/ and report rule coverage. Exits 1 on a failure."""
    reports = [r.to_dict() for r in engine.decision_tests(list(decision) or None)]
    ok = all(r["ok"] for r in reports)
    return {"ok": ok, "reports": reports, "passed": sum(r["passed"] for r in reports),
            "failed": sum(r["failed"] for r in reports) + sum(len(r["problems"]) for r in reports),
            "code": "decision_tests_failed", "message": "decision tests failed; see details.reports"}


def _show_impact(out: Console, data: dict[str, Any]) -> None:
    if data["catalog"]:
        grid = table("process", "tier now", "tier after", "rule after")
        for row in data["catalog"]:
            if "error" in row:
                grid.add_row(row["process"], "-", "-", escape(row["error"]))
            else:
                grid.add_row(row["process"], str(row["old_tier"]), str(row["new_tier"]), row["new_rule"] or "-")
        out.print(grid)
    elif data["decision"] == "tier_routing":
        out.print("no catalog process changes tier")
    for row in data.get("unroutable") or []:
        when = f"start data {json.dumps(row['data'])}" if row["data"] else "every run"
        out.print(f"[red]cannot start[/]: {row['process']} would go to tier {row['tier']} (rule {row['rule']}, "
                  f"{escape(when)}), but {row['missing']} does not exist")
    out.print(f"{data['changed']} of {data['replayed']} logged decisions would have gone differently")
    for example in data["examples"]:
        out.print(f"  run {example['run']} ({example['process']}, {example['at'][:16]}): "
                  f"{escape(json.dumps(example['old']))} -> {escape(json.dumps(example['new']))}")


@decisions.command("impact")
@click.argument("dmn_file", metavar="DECISION|DMN_FILE")
@click.option("--against", default=None, type=click.Path(dir_okay=False),
              help="The version to compare with (default: the deployed one).")
@common_options
@run_command(_show_impact)
def decisions_impact(engine: Engine, dmn_file: str, against: str | None) -> dict[str, Any]:
    """Compare an edited decision (its draft, or a DMN file) with the deployed version or --against:
    tier changes and replayed log decisions."""
    return engine.decision_impact(dmn_file, against)


def _show_diff(out: Console, data: dict[str, Any]) -> None:
    out.print(f"{data['old']} -> {data['new']}: rules {data['rules']['added']} added, {data['rules']['changed']} "
              f"changed, {data['rules']['removed']} removed")
    for item in data["decisions"]:
        if item["status"] == "same":
            continue
        out.print(f"[bold]{item['decision']}[/] ({item['status']})")
        for error in item["errors"]:
            out.print(f"  [red]{escape(error)}[/]")
        if item.get("imports"):
            out.print(f"  imported models changed: {escape(', '.join(item['imports']))}")
        for tbl in item["tables"]:
            out.print(f"  table {tbl['table']}")
            for setting in tbl["settings"]:
                out.print(f"    {setting['what']}: {escape(str(setting['old']))} -> {escape(str(setting['new']))}")
            for rule in tbl["added"]:
                cells = ", ".join(f"{k} = {v}" for k, v in rule["cells"].items())
                out.print(f"    [green]+ {rule['rule']}[/] (#{rule['index']}): {escape(cells)}")
            for rule in tbl["removed"]:
                out.print(f"    [red]- {rule['rule']}[/] (#{rule['index']})")
            for rule in tbl["changed"]:
                out.print(f"    [yellow]~ {rule['rule']}[/] (#{rule['index']})")
                for cell in rule["cells"]:
                    out.print(f"        {escape(cell['column'])}: {escape(str(cell['old']))} -> "
                              f"{escape(str(cell['new']))}")
            for move in tbl["moved"]:
                out.print(f"    moved {move['rule']}: #{move['old']} -> #{move['new']}")


@decisions.command("diff")
@click.argument("old", metavar="A")
@click.argument("new", metavar="B")
@common_options
@run_command(_show_diff)
def decisions_diff(engine: Engine, old: str, new: str) -> dict[str, Any]:
    """Rules added, removed and changed, cell by cell, per table, from A to B (deployment numbers or `drafts`)."""
    return engine.decision_diff(old, new)
