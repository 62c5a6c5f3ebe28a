"""Commands for changing definitions safely: deploy, deployments."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import actor_option, common_options, run_command, table
from tiergate.engine import Engine

SHOWN_FILES = 15


def _approval(approval: dict[str, Any]) -> str:
    kind = approval.get("kind", "")
    if kind == "rollback":
        return f"rollback to {approval.get('to')}"
    return kind


def _summary(changes: dict[str, Any]) -> str:
    files, rules = changes["files"], changes["rules"]
    parts = [f"{len(files[k])} {k}" for k in ("added", "changed", "removed") if files[k]]
    rule_parts = [f"{rules[k]} {k}" for k in ("added", "changed", "removed") if rules[k]]
    return "files: " + (", ".join(parts) or "none") + ("; rules: " + ", ".join(rule_parts) if rule_parts else "")


def _show_deployment(out: Console, data: dict[str, Any]) -> None:
    out.print(f"deployment {data['number']} by {data['actor']} at {data['at'][:16].replace('T', ' ')} "
              f"({_approval(data['approval'])}): {escape(_summary(data['changes']))}")
    files = data["changes"]["files"]
    listed = [f"+ {p}" for p in files["added"]] + [f"~ {p}" for p in files["changed"]] + \
        [f"- {p}" for p in files["removed"]]
    for line in listed[:SHOWN_FILES]:
        out.print(f"  {escape(line)}")
    if len(listed) > SHOWN_FILES:
        out.print(f"  ... and {len(listed) - SHOWN_FILES} more (--json lists them all)")


@click.command()
@click.option("--from", "from_number", type=click.IntRange(min=1), default=None, metavar="N",
              help="Deploy deployment N's files again instead of the home's (a rollback).")
@actor_option
@common_options
@run_command(_show_deployment)
def deploy(engine: Engine, from_number: int | None, actor: str | None) -> dict[str, Any]:
    """Record the home's definition files as the next numbered deployment; new runs start from it."""
    return engine.deploy(actor, from_number=from_number)


def _show_deployments(out: Console, data: list[dict[str, Any]]) -> None:
    if not data:
        out.print("nothing deployed yet: runs start from the files (`tiergate deploy` records them)")
        return
    grid = table("#", "at", "by", "allowed by", "files", "changes")
    for item in data:
        grid.add_row(str(item["number"]), item["at"][:16].replace("T", " "), item["actor"],
                     _approval(item["approval"]), str(item["files"]), escape(_summary(item["changes"])))
    out.print(grid)


@click.command()
@common_options
@run_command(_show_deployments)
def deployments(engine: Engine) -> list[dict[str, Any]]:
    """List the deployments: number, when, who, what allowed it, and what changed."""
    return engine.deployments()
