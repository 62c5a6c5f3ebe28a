"""Commands that start and move runs: start, status, complete, skip, cancel, runs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import actor_option, common_options, parse_json_option, plain_text, run_command, table

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _minute(stamp: str | None) -> str:
    """2026-11-25T19:37:52.506497Z -> 2026-11-25 19:37 (UTC), for people."""
    return stamp[:16].replace("T", " ") if stamp else ""


STATE_STYLE = {"done": "green", "ready": "bold cyan", "locked": "dim", "skipped": "yellow"}


def _show_run(out: Console, run: dict[str, Any], *, with_data: bool = True) -> None:
    out.print(f"[bold]run {run['id']}[/]  {escape(run['title'])} ({run['process']}, tier {run['tier']})  "
              f"status: [bold]{run['status']}[/]")
    grid = table("state", "step", "title", "by", "at")
    for step in run["steps"]:
        style = STATE_STYLE.get(step["state"], "")
        title = step["title"] + (" (optional)" if step["optional"] else "")
        grid.add_row(f"[{style}]{step['state']}[/]", step["id"], escape(title), step["actor"] or "",
                     _minute(step["at"]))
    out.print(grid)
    for timer in run.get("timers") or []:
        what = "the start event's timer" if timer.get("start") else "timer"
        out.print(f"[dim]waits for:[/] {what} {escape(str(timer['timer']))}, due {timer['due']}")
    for step in run["steps"]:
        if step["state"] != "ready":
            continue
        out.print(f"\n[bold cyan]ready:[/] [bold]{step['id']}[/] — {escape(step['title'])}")
        if step["instructions"]:
            out.print(escape(step["instructions"].rstrip()))
        if step.get("who"):
            out.print(f"[dim]who may do it:[/] {escape(step['who'])}")
        if step.get("gate_words"):
            out.print(f"[dim]evidence:[/] {escape(step['gate_words'])}")
        elif step["done_when"]:
            out.print(f"[dim]evidence must pass:[/] {escape(json.dumps(step['done_when'], ensure_ascii=False))}")
        if step["decide"] and not step.get("who"):
            out.print(f"[dim]decided by the engine with {step['decide']}[/]")
    if with_data:
        out.print("\n[bold]data[/]")
        out.print(escape(json.dumps(run["data"], indent=2, ensure_ascii=False)))


def _with_gate_words(engine: Engine, info: Any) -> dict[str, Any]:
    """The run with each ready step's ``who`` and ``gate_words`` (a client's answer has them already)."""
    if isinstance(info, dict):  # the server's answer, in client mode: the server worded it
        return dict(info)
    return engine.described(info)


def _show_run_brief(out: Console, run: dict[str, Any]) -> None:
    _show_run(out, run, with_data=False)


def _show_started(out: Console, run: dict[str, Any]) -> None:
    if click.get_current_context().params.get("quiet"):
        click.echo(run["id"])  # plain, for RUN=$(tiergate start ... --quiet)
    else:
        _show_run(out, run, with_data=False)


@click.command()
@click.argument("process")
@click.option("--data", default=None, metavar="JSON|@FILE", help="Start data: a JSON object, or @file.json.")
@click.option("--drafts", is_flag=True, help="Start from the files, not the latest deployment (development).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the new run's id (for scripts; errors still go to stderr).")
@actor_option
@common_options
@run_command(_show_started)
def start(engine: Engine, process: str, data: str | None, drafts: bool, actor: str | None,
          quiet: bool) -> dict[str, Any]:
    """Start a run of PROCESS; print its id and the steps ready now."""
    engine.drafts = drafts
    parsed = parse_json_option(data, "--data", raw=True)  # the engine reads it, and records a refusal
    return _with_gate_words(engine, engine.start(process, parsed if parsed is not None else {}, actor=actor))


@click.command()
@click.argument("run")
@common_options
@run_command(_show_run, reads=True)
def status(engine: Engine, run: str) -> dict[str, Any]:
    """Show each step of RUN (done, ready, locked, skipped) and the run's data."""
    return _with_gate_words(engine, engine.status(run))


@click.command()
@click.argument("run")
@click.argument("step", required=False)
@click.option("--evidence", "--outcome", "evidence", default=None, metavar="JSON|@FILE",
              help="Evidence for the step's gate: JSON or @file. For a tier 3 run, the optional outcome.")
@actor_option
@common_options
@run_command(_show_run_brief)
def complete(engine: Engine, run: str, step: str | None, evidence: str | None, actor: str | None) -> dict[str, Any]:
    """Complete STEP of RUN with evidence that must pass the step's gate.

    Without STEP, closes a tier 3 run, with --outcome as its optional outcome.
    """
    parsed = parse_json_option(evidence, "--evidence" if step is not None else "--outcome", raw=True)
    if step is None:
        return engine.complete(run, None, parsed, actor=actor).to_dict()
    return _with_gate_words(engine, engine.complete(run, step, parsed if parsed is not None else {}, actor=actor))


@click.command()
@click.argument("run")
@click.argument("step")
@click.option("--reason", required=True, help="Why the step is not needed (logged).")
@actor_option
@common_options
@run_command(_show_run_brief)
def skip(engine: Engine, run: str, step: str, reason: str, actor: str | None) -> dict[str, Any]:
    """Skip an optional STEP of RUN, with a reason."""
    return _with_gate_words(engine, engine.skip(run, step, plain_text(reason, "--reason"), actor=actor))


@click.command()
@click.argument("run")
@click.option("--reason", required=True, help="Why the run is cancelled (logged).")
@actor_option
@common_options
@run_command(_show_run_brief)
def cancel(engine: Engine, run: str, reason: str, actor: str | None) -> dict[str, Any]:
    """Cancel RUN, with a reason. Agents may cancel only runs they started."""
    return _with_gate_words(engine, engine.cancel(run, plain_text(reason, "--reason"), actor=actor))


def _show_runs(out: Console, data: list[dict[str, Any]]) -> None:
    if not data:
        out.print("no runs")
        return
    grid = table("run", "process", "tier", "status", "started by", "started", "ended")
    for r in data:
        grid.add_row(r["id"], r["process"], str(r["tier"]), r["status"], r["started_by"], _minute(r["created_at"]),
                     _minute(r["ended_at"]))
    out.print(grid)


@click.command()
@click.option("--process", default=None, help="Only runs of this process.")
@click.option("--status", "status_", default=None, help="Only runs in this status (active, completed, ...).")
@common_options
@run_command(_show_runs, reads=True)
def runs(engine: Engine, process: str | None, status_: str | None) -> list[dict[str, Any]]:
    """List runs, newest first."""
    return engine.runs(process=process, status=status_)
