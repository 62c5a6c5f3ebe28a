"""Commands about definitions: check, processes, schema."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, run_command, table
from tiergate.definitions.models import checklist_json_schema

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _show_check(out: Console, data: dict[str, Any]) -> None:
    for problem in data["problems"]:
        style = "yellow" if problem["severity"] == "warning" else "red"
        prefix = "warning: " if problem["severity"] == "warning" else ""
        out.print(f"{escape(problem['path'])}:{problem['line']}: [{style}]{prefix}[/]{escape(problem['message'])}")
    summary = f"{data['errors']} error(s), {data['warnings']} warning(s)"
    out.print(f"[green]ok[/]: {summary}" if data["errors"] == 0 else f"[red]failed[/]: {summary}")


@click.command()
@common_options
@run_command(_show_check, failed=lambda data: data["errors"] > 0)
def check(engine: Engine) -> dict[str, Any]:
    """Load and validate every definition; print each problem as path:line: message.

    Exits 1 if any problem is an error; warnings alone exit 0.
    """
    problems = engine.check()
    errors = sum(1 for p in problems if p.severity == "error")
    return {"problems": [p.to_dict() for p in problems], "errors": errors, "warnings": len(problems) - errors,
            "code": "definitions_invalid", "message": f"{errors} definition problem(s); see details.problems"}


def _show_processes(out: Console, data: list[dict[str, Any]]) -> None:
    grid = table("id", "tier", "title", "area", "owner", "minutes", "definition")
    for p in data:
        grid.add_row(p["id"], str(p["tier"] or "?"), p["title"], p["area"], p["owner"], str(p["expected_minutes"]),
                     ", ".join(p["definitions"]) or "-")
    out.print(grid)


@click.command()
@common_options
@run_command(_show_processes)
def processes(engine: Engine) -> list[dict[str, Any]]:
    """List the catalog: every process with its routed tier, owner, expected time and definition."""
    return engine.processes()


@click.group()
def schema() -> None:
    """Print the JSON Schema of a definition format."""


@schema.command("checklist")
@common_options
@run_command(lambda out, data: click.echo(json.dumps(data, indent=2)))
def schema_checklist(engine: Engine) -> dict[str, Any]:
    """The JSON Schema of the checklist format (for editors with a YAML language server)."""
    return checklist_json_schema()


@schema.command("policy")
@common_options
@run_command(lambda out, data: click.echo(json.dumps(data, indent=2)))
def schema_policy(engine: Engine) -> dict[str, Any]:
    """The JSON Schema of tiers/policy.yaml (who may change which files, and whose approval they need)."""
    from tiergate.policy import policy_json_schema

    return policy_json_schema()
