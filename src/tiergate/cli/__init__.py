"""The `tiergate` command line: thin commands over one Engine call each."""

from __future__ import annotations

import click

from tiergate import __version__
from tiergate.cli.agents import guide, mcp
from tiergate.cli.db import db
from tiergate.cli.decisions import decisions, route
from tiergate.cli.definitions import check, processes, schema
from tiergate.cli.logs import log
from tiergate.cli.metrics import gaps, metrics, report
from tiergate.cli.runs import cancel, complete, runs, skip, start, status
from tiergate.cli.tier1 import message, retry, scaffold, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="tiergate")
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="Home folder with tiers/, checklists/, processes/, decisions/ (default: TIERGATE_HOME or .).")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """tiergate keeps agents and people on their defined processes.

    The engine decides what step comes next; nothing moves until the step's evidence passes
    its gate. Every command takes --json and then answers {"ok": true, "data": ...} or
    {"ok": false, "error": {"code", "message", "details"}}.
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


for command in (check, processes, route, decisions, schema, start, status, guide, complete, skip, cancel, runs, log,
                db, mcp):
    cli.add_command(command)
for command in (worker, retry, message, scaffold):  # Tier 1
    cli.add_command(command)
for command in (metrics, gaps, report):  # metrics, deviations and gaps from the log
    cli.add_command(command)


def main() -> None:
    cli(prog_name="tiergate")
