"""Tier 1 commands: worker (timers), retry (failed runs), scaffold bpmn (from a checklist)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import actor_option, common_options, parse_json_option, run_command, table
from tiergate.cli.runs import _show_run_brief, _with_gate_words
from tiergate.errors import InvalidDataError

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _show_pass(out: Console, data: dict[str, Any]) -> None:
    if not data["fired"]:
        out.print(f"{data['at'][:19].replace('T', ' ')} UTC: no timers due")
        return
    grid = table("run", "process", "status", "what happened")
    for item in data["fired"]:
        grid.add_row(item["run"], item["process"], item["status"],
                     escape(item["error"] or ", ".join(item["events"]) or "nothing due"))
    out.print(grid)


@click.command()
@click.option("--once", is_flag=True, help="Run one pass over the due timers and exit.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Seconds between passes when polling.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many runs per pass.")
@common_options
def worker(once: bool, interval: float, limit: int | None, as_json: bool, home: str | None) -> None:
    """Fire due Tier 1 timers (escalations, reminders) and run the processes on from there.

    Reads only runs whose next timer is due (an indexed column). Several workers may share one
    PostgreSQL database: each run is taken by one worker at a time (row locks, SKIP LOCKED), so
    no timer fires twice. Without --once it polls every --interval seconds until stopped.
    """
    from tiergate.worker import describe, run_forever, run_pass

    ctx = click.get_current_context()

    @run_command(_show_pass)
    def one_pass(engine: Engine) -> dict[str, Any]:
        from tiergate import webhooks

        started = engine.clock()
        data = describe(run_pass(engine, limit=limit), started)
        data["webhooks"] = webhooks.run_pass(engine)
        return data

    if once:
        ctx.invoke(one_pass, as_json=as_json, home=home)
        return

    @run_command(None)
    def forever(engine: Engine) -> None:
        def report(fired: list[Any], at: Any) -> None:
            data = describe(fired, at)
            if as_json:
                click.echo(json.dumps({"ok": True, "data": data}, ensure_ascii=False))
            elif fired:
                _show_pass(Console(highlight=False, soft_wrap=True), data)

        def report_error(err: Any) -> None:
            Console(highlight=False, soft_wrap=True, stderr=True).print(
                f"[bold red]error[/] ({err.code}): {escape(err.message)}")

        run_forever(engine, interval=interval, limit=limit, report=report, report_error=report_error)

    ctx.invoke(forever, as_json=False, home=home)


@click.command()
@click.argument("run")
@click.argument("step")
@click.option("--data", default=None, metavar="JSON|@FILE",
              help="Fields to set in the failed element's data before it runs again.")
@actor_option
@common_options
@run_command(_show_run_brief)
def retry(engine: Engine, run: str, step: str, data: str | None, actor: str | None) -> dict[str, Any]:
    """Run the failed element STEP of a failed Tier 1 RUN again, after fixing its data with --data."""
    parsed = parse_json_option(data, "--data")
    if parsed is not None and not isinstance(parsed, dict):
        raise InvalidDataError("--data must be a JSON object of fields to set.")
    return _with_gate_words(engine, engine.retry(run, step, parsed or {}, actor=actor))


@click.group()
def scaffold() -> None:
    """Write a starting definition for a process that moves up a tier."""


@scaffold.command("bpmn")
@click.argument("checklist")
@click.option("--force", is_flag=True, help="Overwrite processes/CHECKLIST.bpmn if it exists.")
@common_options
@run_command(lambda out, data: out.print(f"wrote {data['path']} ({data['steps']} steps, {data['lanes']} lanes). "
                                         "Open it in a modeler, then run `tiergate check`."))
def scaffold_bpmn(engine: Engine, checklist: str, force: bool) -> dict[str, Any]:
    """Write processes/CHECKLIST.bpmn: a linear BPMN process (with diagram) from a Tier 2 checklist."""
    from tiergate.bpmn.scaffold import write_scaffold

    return write_scaffold(engine, checklist, force=force)
