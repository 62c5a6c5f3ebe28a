"""The `tiergate` command line: thin commands over one Engine call each.

Commands load lazily: `tiergate --help` and `--version` import click and nothing else of weight,
and a command imports only its own module (and what that module uses) when it runs. Each
command's one-line summary is written here so the listing needs no import; a test holds these
summaries equal to the commands' own docstrings.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from tiergate import __version__

#: name -> (module, attribute, summary). The summary is the first line of the command's docstring.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("tiergate.cli.definitions", "check",
              "Load and validate every definition; print each problem as path:line: message."),
    "processes": ("tiergate.cli.definitions", "processes",
                  "List the catalog: every process with its routed tier, owner, expected time and definition."),
    "route": ("tiergate.cli.decisions", "route",
              "Show the tier decisions/tier_routing.dmn gives PROCESS (or every process), and why."),
    "decisions": ("tiergate.cli.decisions", "decisions", "Test DMN decisions and see the impact of a change."),
    "schema": ("tiergate.cli.definitions", "schema", "Print the JSON Schema of a definition format."),
    "start": ("tiergate.cli.runs", "start", "Start a run of PROCESS; print its id and the steps ready now."),
    "status": ("tiergate.cli.runs", "status",
               "Show each step of RUN (done, ready, locked, skipped) and the run's data."),
    "guide": ("tiergate.cli.agents", "guide",
              "Print what to do now in RUN, written for its tier, with each ready step's gate in words."),
    "complete": ("tiergate.cli.runs", "complete", "Complete STEP of RUN with evidence that must pass the step's gate."),
    "skip": ("tiergate.cli.runs", "skip", "Skip an optional STEP of RUN, with a reason."),
    "cancel": ("tiergate.cli.runs", "cancel", "Cancel RUN, with a reason."),
    "runs": ("tiergate.cli.runs", "runs", "List runs, newest first."),
    "log": ("tiergate.cli.logs", "log",
            "Show the execution log, oldest first (one run's, or all), verify it, or sign and prove it."),
    "db": ("tiergate.cli.db", "db", "Database schema management (Alembic migrations)."),
    "mcp": ("tiergate.cli.agents", "mcp", "Serve tiergate to an MCP client over stdio, acting as one agent."),
    "worker": ("tiergate.cli.tier1", "worker",
               "Fire due Tier 1 timers (escalations, reminders) and run the processes on from there."),
    "retry": ("tiergate.cli.tier1", "retry",
              "Run the failed element STEP of a failed Tier 1 RUN again, after fixing its data with --data."),
    "scaffold": ("tiergate.cli.tier1", "scaffold", "Write a starting definition for a process that moves up a tier."),
    "metrics": ("tiergate.cli.metrics", "metrics",
                "Completion, deviations, time and interventions per process and tier, from the log."),
    "gaps": ("tiergate.cli.metrics", "gaps",
             "Find patterns in the log worth a process change, classify and remember them."),
    "report": ("tiergate.cli.metrics", "report",
               "Write one self-contained HTML page for leads: charts per tier and process, funnels, gaps."),
    "inbox": ("tiergate.cli.inbox", "inbox", "List every ready step, in any active run, that you may do now, oldest first."),
    "claim": ("tiergate.cli.inbox", "claim",
              "Claim ready STEP of RUN: others are refused it until you release it or the claim times out."),
    "unclaim": ("tiergate.cli.inbox", "unclaim",
                "Release the claim on STEP of RUN (your own; the process owner's role may release any)."),
    "assign": ("tiergate.cli.inbox", "assign",
               "Assign ready STEP of RUN to ASSIGNEE (members of the process owner's role only)."),
    "serve": ("tiergate.cli.serve", "serve",
              "Serve the web pages, MCP over HTTP at /mcp, the JSON API under /api/ and /healthz."),
    "principals": ("tiergate.cli.principals", "principals",
                   "Register the people and agents who may use the server (operators only)."),
    "tokens": ("tiergate.cli.principals", "tokens",
               "Issue, list and revoke the bearer tokens of principals (operators only)."),
    "message": ("tiergate.cli.tier1", "message",
                "Deliver message NAME to the one Tier 1 run waiting for it, matched by --correlate values."),
    "signal": ("tiergate.cli.tier1", "signal",
               "Broadcast signal NAME to every Tier 1 run waiting for it, and start every process that starts on it."),
    "signals": ("tiergate.cli.tier1", "signals",
                "List the signal broadcasts (thrown inside runs or sent from outside) still pending."),
    "timers": ("tiergate.cli.tier1", "timers", "List the Tier 1 timers that would fire by TIME, and what each would log."),
    "stores": ("tiergate.cli.tier1", "stores",
               "Show the BPMN data stores of PROCESS (or of every process): each one's current value and last write."),
    "test": ("tiergate.cli.testing", "test",
             "Run every decision test and every scenario (processes/tests/, checklists/tests/) and report coverage: "
             "steps, flows and rules no scenario reaches."),
    "deploy": ("tiergate.cli.change", "deploy",
               "Record the home's definition files as the next numbered deployment; new runs start from it."),
    "deployments": ("tiergate.cli.change", "deployments",
                    "List the deployments: number, when, who, what allowed it, and what changed."),
    "changes": ("tiergate.cli.change", "changes",
                "Propose a change of the definitions for approval, and approve or reject one (definition-change runs)."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they are called, not when the CLI starts."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, attribute, _ = entry
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, click.utils.make_default_short_help(COMMANDS[name][2], limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def main(args: list[str] | None = None) -> None:
    """Run the CLI; with --json anywhere on the line, a usage error answers the JSON envelope too."""
    argv = sys.argv[1:] if args is None else list(args)
    try:
        status = cli.main(args=argv, prog_name="tiergate", standalone_mode=False)
        if isinstance(status, int) and not isinstance(status, bool) and status:
            sys.exit(status)  # a command that ended with ctx.exit(N): click returns N without exiting
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as err:
        _usage_failure(err, as_json="--json" in argv)


def _usage_failure(err: click.ClickException, *, as_json: bool) -> NoReturn:
    """Answer click's own errors (unknown option, missing argument, bad value) as usage errors, exit 2."""
    if not as_json:
        err.show()
        sys.exit(2)
    import json

    from tiergate.envelope import failure

    details: dict[str, Any] = {}
    ctx = getattr(err, "ctx", None)
    if ctx is not None:
        details["command"] = ctx.command_path
        details["usage"] = ctx.get_usage()
    param = getattr(err, "param", None)
    if param is not None and param.name:
        details["parameter"] = param.name
    hint = f" Run '{details['command']} --help' for its options." if "command" in details else ""
    click.echo(json.dumps(failure("usage", err.format_message() + hint, details), indent=2, ensure_ascii=False))
    sys.exit(2)
