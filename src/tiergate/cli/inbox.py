"""The work inbox and claims: `tiergate inbox`, `claim`, `unclaim`, `assign`.

On the database directly, or through the server when TIERGATE_URL is set (the engine is then a
``tiergate.client.RemoteEngine``, and the actor is the token's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from tiergate.cli.output import actor_option, common_options, run_command, table

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _show_inbox(out: Console, data: list[dict[str, Any]]) -> None:
    if not data:
        out.print("nothing waits for you now")
        return
    grid = table("run", "process", "step", "ready since", "due", "claimed by")
    for item in data:
        grid.add_row(item["run"], item["process"], item["step"], item["ready_at"][:16].replace("T", " "),
                     (item["due"] or "")[:16].replace("T", " "), item["claimed_by"] or "")
    out.print(grid)


def _show_claim(out: Console, data: dict[str, Any]) -> None:
    holder = data["claimed_by"]
    out.print(f"step {data['step']} of run {data['run']}: " + (f"claimed by {holder}" if holder else "released"))


@click.command()
@actor_option
@common_options
@run_command(_show_inbox)
def inbox(engine: Engine, actor: str | None) -> list[dict[str, Any]]:
    """List every ready step, in any active run, that you may do now, oldest first.

    A step shows if your kind, role and four-eyes rules allow it and nobody else has claimed it.
    """
    return engine.inbox(actor)


@click.command()
@click.argument("run")
@click.argument("step")
@actor_option
@common_options
@run_command(_show_claim)
def claim(engine: Engine, run: str, step: str, actor: str | None) -> dict[str, Any]:
    """Claim ready STEP of RUN: others are refused it until you release it or the claim times out."""
    return engine.claim(run, step, actor)


@click.command()
@click.argument("run")
@click.argument("step")
@actor_option
@common_options
@run_command(_show_claim)
def unclaim(engine: Engine, run: str, step: str, actor: str | None) -> dict[str, Any]:
    """Release the claim on STEP of RUN (your own; the process owner's role may release any)."""
    return engine.unclaim(run, step, actor)


@click.command()
@click.argument("run")
@click.argument("step")
@click.argument("assignee", metavar="KIND:ID")
@actor_option
@common_options
@run_command(_show_claim)
def assign(engine: Engine, run: str, step: str, assignee: str, actor: str | None) -> dict[str, Any]:
    """Assign ready STEP of RUN to ASSIGNEE (members of the process owner's role only)."""
    return engine.assign(run, step, assignee, actor)
