"""Commands for agents: guide (what to read now for a run) and mcp (the MCP server over stdio)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from tiergate.cli.output import _fail, common_options, run_command
from tiergate.errors import TiergateError

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _show_guide(out: Console, data: dict[str, Any]) -> None:
    out.print(data["text"].rstrip(), markup=False, highlight=False, emoji=False)


@click.command()
@click.argument("run")
@click.option("--actor", default=None, metavar="KIND:ID",
              help="Who will act on it: fills in the commands and says which steps they may do "
                   "(default: TIERGATE_ACTOR).")
@common_options
@run_command(_show_guide)
def guide(engine: Engine, run: str, actor: str | None) -> dict[str, Any]:
    """Print what to do now in RUN, written for its tier, with each ready step's gate in words.

    Tier 1: the one step to do now. Tier 2: the checklist and every ready step. Tier 3: the
    conventions. The wrapper is tiers/guidance/tier<N>.md.j2 if the home has one.
    """
    return engine.guide(run, actor=actor)


@click.command()
@click.option("--actor", default=None, metavar="agent:NAME",
              help="The agent the server acts as, for every tool call (default: TIERGATE_ACTOR). Must be an agent.")
@common_options
def mcp(actor: str | None, as_json: bool, home: str | None) -> None:
    """Serve tiergate to an MCP client over stdio, acting as one agent.

    The client (Claude Code, Claude Desktop, ...) starts this command and talks MCP on its
    standard input and output. Tools: list_my_work, list_processes, start_run, get_guidance,
    complete_step, skip_step, get_run, list_my_runs. The actor is fixed here; a human: actor is refused.
    """
    from tiergate.engine import Engine
    from tiergate.mcpserver import agent_actor, build_server  # the MCP SDK loads only for this command

    home = home or (click.get_current_context().obj or {}).get("home")
    engine: Engine | None = None
    try:
        engine = Engine(home=home)
        who = agent_actor(engine, actor)
        _ = engine.db  # fail now, with a clear message, if the database is unreachable or outdated
        server = build_server(engine, who)
    except TiergateError as err:
        if engine is not None:
            engine.close()
        _fail(err, as_json)
        return
    try:
        server.run()
    finally:
        engine.close()
