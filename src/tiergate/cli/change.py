"""Commands for changing definitions safely: deploy, deployments, changes (propose, approve, reject)."""

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


def _show_change(out: Console, data: dict[str, Any]) -> None:
    facts = data["data"]
    out.print(f"change run {data['id']} by {facts.get('author')} against deployment {facts.get('base')}: "
              f"{escape(_summary(facts['changes']))}")
    if "tests_passed" in facts:
        tests = facts.get("tests", {})
        if facts["tests_passed"]:
            out.print(f"  tests: [green]passed[/] ({tests.get('passed', 0)} cases)")
        else:
            out.print(f"  tests: [red]FAILED[/] {escape(str(tests.get('error', '')))}")
            for line in tests.get("failures", []):
                out.print(f"    {escape(line)}")
        for gap in tests.get("not_reached", []):
            what = gap.get("process") or gap.get("decision")
            missing = gap.get("steps", []) + gap.get("flows", []) + gap.get("rules", [])
            out.print(f"    [yellow]not reached by any test in {escape(what)}: {escape(', '.join(missing))}[/]")
    for item in facts.get("impact", []):
        if item.get("new"):
            out.print(f"  impact: {item['decision']} is new: nothing logged to replay")
        elif "error" in item:
            out.print(f"  impact: {item['decision']}: [red]{escape(item['error'])}[/]")
        else:
            out.print(f"  impact: {item['decision']}: {item['changed']} of {item['replayed']} logged decisions "
                      "would have gone differently")
    if "approved" in facts:
        verdict = "approved" if facts["approved"] else "[red]not approved[/]"
        approver = next((s.get("actor") for s in data["steps"] if s["id"] == "approve"), None)
        out.print(f"  {verdict} by {approver}" + (f": {escape(facts['comment'])}" if facts.get("comment") else ""))
    if facts.get("deployment") is not None:
        out.print(f"  [green]deployed[/] as deployment {facts['deployment']}")
    elif facts.get("deploy_error"):
        out.print(f"  [red]not deployed[/]: {escape(facts['deploy_error'])}")
    if "approve" in data.get("ready", []):
        out.print(f"  waiting for the approval of a member of {', '.join(facts['approvers'])} other than "
                  f"{facts['author']}:\n    tiergate changes approve {data['id']} --actor human:NAME "
                  f"[--comment TEXT]   (or: changes reject {data['id']} --comment WHY)")
    elif data["status"] != "active":
        deployed = facts.get("deployment") is not None
        out.print(f"  run {data['status']}" + ("" if deployed else ": nothing was deployed"))


@click.group()
def changes() -> None:
    """Propose a change of the definitions for approval, and approve or reject one (definition-change runs)."""


@changes.command("propose")
@click.option("--note", required=True, help="What the change is and why (the approver reads it).")
@actor_option
@common_options
@run_command(_show_change, direct=True)
def changes_propose(engine: Engine, note: str, actor: str | None) -> dict[str, Any]:
    """Propose the home's drafts as a change: tiergate attaches the diff, runs the tests and the impact."""
    from tiergate.change_runs import propose

    return propose(engine, actor, note).to_dict()


@changes.command("approve")
@click.argument("run")
@click.option("--comment", default="", help="Why (optional).")
@actor_option
@common_options
@run_command(_show_change)
def changes_approve(engine: Engine, run: str, comment: str, actor: str | None) -> dict[str, Any]:
    """Approve the change of definition-change RUN (not your own); tiergate then deploys it."""
    evidence: dict[str, Any] = {"approved": True, **({"comment": comment} if comment else {})}
    return engine.complete(run, "approve", evidence, actor=actor).to_dict()


@changes.command("reject")
@click.argument("run")
@click.option("--comment", required=True, help="Why not: the author reads it.")
@actor_option
@common_options
@run_command(_show_change)
def changes_reject(engine: Engine, run: str, comment: str, actor: str | None) -> dict[str, Any]:
    """Say no to the change of definition-change RUN, with a comment; nothing is deployed."""
    return engine.complete(run, "approve", {"approved": False, "comment": comment}, actor=actor).to_dict()


@changes.command("resume")
@click.argument("run")
@common_options
@run_command(_show_change, direct=True)
def changes_resume(engine: Engine, run: str) -> dict[str, Any]:
    """Do the steps of definition-change RUN that tiergate itself does (test, impact, deploy), if one is left waiting."""
    from tiergate.change_runs import CHANGE_PROCESS, advance
    from tiergate.errors import UsageError

    info = engine.status(run)
    if info.process != CHANGE_PROCESS:
        raise UsageError(f"run {run} is a run of {info.process}, not of {CHANGE_PROCESS}.", code="usage",
                         details={"run": run})
    return (advance(engine, info) if info.status == "active" else info).to_dict()
