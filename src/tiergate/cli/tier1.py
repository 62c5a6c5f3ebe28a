"""Tier 1 commands: worker (timers), timers --at (what would fire), retry (failed runs), message (to a
waiting run), scaffold bpmn."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import actor_option, common_options, console, parse_json_option, run_command, table
from tiergate.cli.runs import _show_run_brief, _with_gate_words
from tiergate.envelope import failure
from tiergate.errors import InvalidDataError, UsageError

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _show_pass(out: Console, data: dict[str, Any]) -> None:
    if not data["fired"]:
        out.print(f"{data['at'][:19].replace('T', ' ')} UTC: no timers due")
        return
    grid = table("run", "process", "status", "what happened")
    for item in data["fired"]:
        what = item["error"] or ", ".join(item["events"]) or "nothing due"
        if item.get("scheduled"):
            what += f" (on schedule, due {item['scheduled'][:16].replace('T', ' ')})"
        if item.get("broadcast"):
            sent = item["broadcast"]
            origin = f"thrown at {sent['element']}" if sent.get("run") else "sent from outside"
            what += f" (signal '{sent['signal']}' {origin}, left pending: reached {sent['reached']})"
        grid.add_row(item["run"], item["process"], item["status"], escape(what))
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

        def trouble(err: Any, wait: float) -> None:
            if as_json:
                click.echo(json.dumps(failure(err.code, err.message, {**err.details, "retry_in_s": wait}),
                                      ensure_ascii=False))
            else:
                console(stderr=True).print(f"[bold red]error[/] ({err.code}): {escape(err.message)} "
                                           f"Trying again in {wait:.0f} s.")

        run_forever(engine, interval=interval, limit=limit, report=report, report_error=report_error,
                    trouble=trouble)

    ctx.invoke(forever, as_json=False, home=home)


def _show_schedules(out: Console, data: dict[str, Any]) -> None:
    if not data.get("schedules"):
        return
    grid = table("process", "start event", "cycle", "next due", "started", "last run")
    for item in data["schedules"]:
        due = item["error"] or ((item["next_due"] or "")[:16].replace("T", " ") or "finished")
        grid.add_row(item["process"], escape(item["start_event"]), escape(item["cycle"]), escape(due),
                     str(item["started"]), item["last_run"] or "")
    out.print("runs started on schedule by `tiergate worker` (timer-cycle start events):")
    out.print(grid)


def _show_timers(out: Console, data: dict[str, Any]) -> None:
    when = data["at"][:19].replace("T", " ")
    if not data["runs"]:
        out.print(f"no timers due by {when} UTC")
        _show_schedules(out, data)
        return
    out.print(f"due by {when} UTC (nothing was changed; `tiergate worker` fires them when they are due):")
    grid = table("run", "process", "timer", "due", "would log", "status after")
    for item in data["runs"]:
        timers = ", ".join(f"{t['timer']}" + (f" (on {t['task']})" if t.get("task") else "") for t in item["timers"])
        due = ", ".join(t["due"][:16].replace("T", " ") for t in item["timers"])
        logged = item["error"] or ", ".join(e["event"] + (f" {e['step']}" if e["step"] else "")
                                            for e in item["would_log"])
        grid.add_row(item["run"], item["process"], escape(timers), due, escape(logged), item["status"])
    out.print(grid)
    _show_schedules(out, data)


def _show_stores(out: Console, data: list[dict[str, Any]]) -> None:
    if not data:
        out.print("no data store has been written")
        return
    grid = table("process", "store", "version", "written by", "when", "value")
    for item in data:
        text = json.dumps(item["value"], ensure_ascii=False)
        shown = text if len(text) <= 60 else text[:57] + "..."
        grid.add_row(item["process"], escape(item["store"] + (f" ({item['name']})" if item["name"] else "")),
                     str(item["version"]), f"{item['run']} {escape(item['step'] or '')}",
                     (item["updated_at"] or "")[:19].replace("T", " "), escape(shown))
    out.print(grid)


@click.command()
@click.argument("process", required=False)
@common_options
@run_command(_show_stores, direct=True)
def stores(engine: Engine, process: str | None) -> list[dict[str, Any]]:
    """Show the BPMN data stores of PROCESS (or of every process): each one's current value and last write."""
    return engine.data_stores(process)


@click.command()
@click.option("--at", "at", default="PT0S", show_default=True, metavar="TIME",
              help="An ISO 8601 time (UTC if no zone is given) or a duration from now, e.g. PT49H or P2D.")
@common_options
@run_command(_show_timers)
def timers(engine: Engine, at: str) -> dict[str, Any]:
    """List the Tier 1 timers that would fire by TIME, and what each would log. Changes nothing.

    Also lists each schedule (a deployed process's timer-cycle start event) with its next due time."""
    from tiergate.timers import parse_at, preview

    return preview(engine, parse_at(at, engine.clock()))


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
    parsed = parse_json_option(data, "--data", raw=True)  # the engine reads it, and logs a refusal on the run
    return _with_gate_words(engine, engine.retry(run, step, parsed if parsed is not None else {}, actor=actor))


@click.command()
@click.argument("name")
@click.option("--correlate", "correlate", multiple=True, metavar="KEY=VALUE",
              help="A value the waiting run must have (repeatable): the catch's `correlate` fields.")
@click.option("--data", default=None, metavar="JSON|@FILE", help="Fields the message brings into the run's data.")
@actor_option
@common_options
@run_command(_show_run_brief)
def message(engine: Engine, name: str, correlate: tuple[str, ...], data: str | None,
            actor: str | None) -> dict[str, Any]:
    """Deliver message NAME to the one Tier 1 run waiting for it, matched by --correlate values.

    A message that matches no waiting run, or more than one, is refused and not delivered.
    """
    keys: dict[str, str] = {}
    for item in correlate:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--correlate '{item}' is not KEY=VALUE, e.g. --correlate change_id=CH-7.", code="usage")
        keys[key.strip()] = value
    parsed = parse_json_option(data, "--data")
    if parsed is not None and not isinstance(parsed, dict):
        raise InvalidDataError("--data must be a JSON object of fields.")
    return _with_gate_words(engine, engine.message(name, keys, parsed or {}, actor=actor))


def _show_signal(out: Any, data: dict[str, Any]) -> None:
    reached = f"signal '{data['signal']}' reached {data['reached']} run(s)"
    parts = [f"moved {', '.join(data['moved'])}" if data["moved"] else "",
             f"started {', '.join(data['started'])}" if data["started"] else ""]
    out.print(reached + (": " + "; ".join(p for p in parts if p) if data["reached"] else
                         ": no run waits for it and no process starts on it (not an error)."))
    if data.get("broadcast"):
        out.print(f"  broadcast {data['broadcast']} (`tiergate signals --all` shows it)")
    for failed in data["failed"]:
        out.print(f"  not moved: {failed.get('run') or failed.get('process')}: {failed['message']}")
    if data["not_reached_over_budget"]:
        out.print(f"  not reached (over the signal_runs budget): {', '.join(data['not_reached_over_budget'])}")


@click.command()
@click.argument("name")
@click.option("--data", default=None, metavar="JSON|@FILE", help="Fields the signal brings into each catch's data.")
@actor_option
@common_options
@run_command(_show_signal)
def signal(engine: Engine, name: str, data: str | None, actor: str | None) -> dict[str, Any]:
    """Broadcast signal NAME to every Tier 1 run waiting for it, and start every process that starts on it.

    A signal that reaches nothing is not an error: the answer says it reached 0 runs.
    """
    return engine.signal(name, parse_json_option(data, "--data", raw=True), actor=actor)


def _show_broadcasts(out: Any, data: dict[str, Any]) -> None:
    if not data["broadcasts"]:
        out.print("no signal broadcast is pending: every signal thrown by a run or sent from outside was delivered.")
        return
    out.print(f"{data['pending']} signal broadcast(s) pending (`tiergate worker` delivers those whose hold is over)")
    grid = table("broadcast", "signal", "thrown by", "at", "state")
    for item in data["broadcasts"]:
        if item["delivered_at"]:
            state = f"delivered {item['delivered_at'][:19].replace('T', ' ')}: reached {item['outcome'].get('reached')}"
        else:
            state = "pending" + (f", held until {item['held_until'][:19].replace('T', ' ')}" if item["held_until"]
                                 else "") + (f", {item['attempts']} attempt(s)" if item["attempts"] else "")
        origin = (f"{item['run']} {escape(item['element'] or '')}" if item["run"]
                  else f"sent by {escape(item['sender'])}")
        grid.add_row(item["broadcast"], escape(item["signal"]), origin,
                     item["thrown_at"][:19].replace("T", " "), escape(state))
    out.print(grid)


@click.command()
@click.option("--all", "all_", is_flag=True, help="The latest 100 broadcasts, delivered ones too.")
@common_options
@run_command(_show_broadcasts)
def signals(engine: Engine, all_: bool) -> dict[str, Any]:
    """List the signal broadcasts (thrown inside runs or sent from outside) still pending.

    A broadcast is pending between the commit of the move that threw it (or of its recording, for a
    signal sent with `tiergate signal`, the API or MCP) and the end of its delivery; one left pending
    by a crash is delivered by `tiergate worker`.
    """
    return engine.signal_broadcasts(all_=all_)


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
