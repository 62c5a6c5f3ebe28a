"""Commands that read the log as a whole: metrics, gaps (and gaps export), report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, run_command, table
from tiergate.errors import UsageError
from tiergate.metrics.export import FORMATS

if TYPE_CHECKING:
    from tiergate.engine import Engine


since_option = click.option("--since", default=None, metavar="DATE",
                            help="Only runs started at or after DATE (YYYY-MM-DD, or an ISO 8601 time; UTC).")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


#: The columns of `tiergate metrics`, each with what it counts (printed under the table; docs/metrics.md).
LEGEND = (
    ("process", "the process; then each tier's and all runs' totals"),
    ("tier", "the tier its runs were routed to"),
    ("runs", "runs started in scope"),
    ("done/settled", "completed runs of the settled ones (completed, cancelled, failed or abandoned)"),
    ("done/all", "completed runs of all runs, those still in progress included"),
    ("clean", "completed with no deviation and no retry, of the settled runs"),
    ("dev/run", "deviations (refusals, gate failures, escalations, off-path, direct door) per run"),
    ("median min", "median minutes from start to completion"),
    ("expected", "expected minutes (tiers/catalog.yaml)"),
    ("over", "completed runs that took longer than expected"),
    ("abandoned", "runs left open past the abandon limit (a multiple of expected)"),
    ("open", "runs in progress, not yet abandoned"),
    ("human", "runs a person stepped into (took over a step, or cancelled an agent's run)"),
)


def _done(group: dict[str, Any]) -> str:
    completion = group["completion"]
    if not completion["settled"]:
        return "-"
    return f"{_pct(completion['rate'])} ({group['outcomes']['completed']}/{completion['settled']})"


def _show_metrics(out: Console, data: dict[str, Any]) -> None:
    scope = data["scope"]
    where = ", ".join(f"{k} {v}" for k, v in scope.items() if v is not None and k != "as_of")
    out.print(f"[bold]metrics[/] as of {scope['as_of']}" + (f" ({escape(where)})" if where else ""))
    if not data["processes"]:
        out.print("no runs in scope")
        return
    grid = table(*(name for name, _ in LEGEND))
    for p in data["processes"]:
        time = p["time_to_complete"]
        grid.add_row(p["process"], str(p["tier"]), str(p["runs"]), _done(p), _pct(p["completion"]["rate_of_all"]),
                     _pct(p["completion"]["clean_rate"]), _num(p["deviations"]["per_run"]),
                     _num(time["median_minutes"]), _num(time["expected_minutes"]), _pct(time["over_share"]),
                     str(p["outcomes"]["abandoned"]), str(p["outcomes"]["in_progress"]),
                     _pct(p["human_intervention"]["rate"]))
    for t in data["tiers"]:
        grid.add_row(f"[bold]tier {t['tier']}[/]", str(t["tier"]), str(t["runs"]), _done(t),
                     _pct(t["completion"]["rate_of_all"]), _pct(t["completion"]["clean_rate"]), _num(t["deviations"]["per_run"]), "", "",
                     _pct(t["time_to_complete"]["over_share"]), str(t["outcomes"]["abandoned"]),
                     str(t["outcomes"]["in_progress"]), _pct(t["human_intervention"]["rate"]))
    total = data["totals"]
    grid.add_row("[bold]all[/]", "", str(total["runs"]), _done(total), _pct(total["completion"]["rate_of_all"]),
                 _pct(total["completion"]["clean_rate"]), _num(total["deviations"]["per_run"]), "", "",
                 _pct(total["time_to_complete"]["over_share"]), str(total["outcomes"]["abandoned"]),
                 str(total["outcomes"]["in_progress"]), _pct(total["human_intervention"]["rate"]))
    out.print(grid)
    out.print("\n[dim]" + "\n".join(f"{name:<13} {escape(meaning)}" for name, meaning in LEGEND) + "[/]")
    kinds = {k: v["count"] for k, v in total["deviations"]["by_kind"].items() if v["count"]}
    if kinds:
        out.print("\n[bold]deviations[/]: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    if data["failure_steps"]:
        out.print("\n[bold]steps that fail most[/] (gate failures and refusals)")
        fails = table("process", "tier", "step", "gate failures", "refusals", "by agents")
        for f in data["failure_steps"]:
            fails.add_row(f["process"], str(f["tier"]), f["step"] or "-", str(f["gate_failures"]), str(f["refusals"]),
                          _pct(f["agent_share"]))
        out.print(fails)
        out.print("[dim]by agents: the share of those failures and refusals that were an agent's attempts[/]")
    if scope["process"]:
        for p in data["processes"]:
            out.print(f"\n[bold]steps of {escape(p['process'])}[/] (tier {p['tier']})")
            steps = table("step", "ready", "completed", "skipped", "left ready", "gate failures", "refusals",
                          "1st-try fail", "takeovers", "mean min")
            for s in p["steps"]:
                steps.add_row(s["step"] or "-", str(s["ready"]), str(s["completed"]), str(s["skipped"]),
                              str(s["left_ready"]), str(s["gate_failures"]), str(s["refusals"]),
                              _pct(s["agent_first_attempt_failure_share"]), str(s["takeovers"]),
                              _num(s["time"]["mean_minutes"]))
            out.print(steps)


@click.command()
@click.option("--process", default=None, help="Only runs of this process (and show its steps).")
@click.option("--tier", type=int, default=None, help="Only runs of this tier (1, 2 or 3).")
@since_option
@click.option("--from-log", is_flag=True, help="Count the log's entries instead of reading its summary (slower; "
              "the same numbers).")
@click.option("--refold", is_flag=True, help="Rebuild the log summary from the whole log first.")
@common_options
@run_command(_show_metrics)
def metrics(engine: Engine, process: str | None, tier: int | None, since: str | None, from_log: bool,
            refold: bool) -> dict[str, Any]:
    """Completion, deviations, time and interventions per process and tier, from the log.

    Every number is defined in docs/metrics.md. Thresholds (when an open run counts as
    abandoned) come from tiers/gaps.yaml.
    """
    if refold:
        engine.refold_summary()
    return engine.metrics(process=process, tier=tier, since=since, from_log=from_log)


def _show_gaps(out: Console, data: dict[str, Any]) -> None:
    counts = data["counts"]
    out.print(f"[bold]gaps[/]: {counts['new']} new, {counts['reopened']} reopened, {counts['open']} still open, "
              f"{counts['resolved']} resolved")
    if data["gaps"]:
        grid = table("status", "kind", "process", "tier", "step", "category", "owner", "seen since", "what")
        for g in data["gaps"]:
            grid.add_row(g["status"], g["kind"], g["process"], str(g["tier"]), g["step"] or "-", g["category"],
                         g["owner"], g["first_seen"][:10], escape(g["summary"]))
        out.print(grid)
    for g in data["resolved"]:
        out.print(f"[green]resolved[/]: {g['kind']} {g['process']} {g['step'] or ''} ({escape(g['summary'])})")


@click.group(invoke_without_command=True)
@since_option
@common_options
@click.pass_context
def gaps(ctx: click.Context, since: str | None, as_json: bool, home: str | None) -> None:
    """Find patterns in the log worth a process change, classify and remember them.

    Each gap is classified by decisions/gap_classification.dmn into a category and an owner,
    and stored with when it was first and last seen: a gap found again is reported as still
    open, not as new. `tiergate gaps export` writes the open gaps as feedback items.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(_find, since=since, as_json=as_json, home=home)


@run_command(_show_gaps)
def _find(engine: Engine, since: str | None) -> dict[str, Any]:
    return engine.gaps(since=since)


@gaps.command("export")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="md", show_default=True,
              help="md: a Markdown list of feedback items; json: the same items as JSON.")
@click.option("--output", "-o", default=None, metavar="FILE", help="Write to FILE instead of standard output.")
@since_option
@common_options
@run_command(lambda out, data: click.echo(data["content"], nl=False) if data["output"] is None else
             out.print(f"wrote {data['items']} feedback item(s) to {escape(data['output'])}"))
def gaps_export(engine: Engine, fmt: str, output: str | None, since: str | None) -> dict[str, Any]:
    """Write the open gaps as feedback items a team can file (Markdown or JSON).

    Detects gaps first, as `tiergate gaps` does, so the items are current.
    """
    exported = engine.gaps_export(fmt, since=since)
    if output is None:
        return {**exported, "output": None}
    target = Path(output)
    if target.is_dir() or not target.parent.is_dir():
        raise UsageError(f"cannot write {target}: give a file in an existing folder.", code="usage",
                         details={"output": output})
    target.write_text(exported["content"], encoding="utf-8")
    return {"format": fmt, "items": exported["items"], "output": str(target)}


@click.command()
@click.option("--html", "html_file", required=True, metavar="FILE", help="Write the report to FILE.")
@since_option
@common_options
@run_command(lambda out, data: out.print(f"wrote {escape(data['path'])}: {data['runs']} runs of {data['processes']} "
                                         f"process(es), {data['open_gaps']} open gap(s)"))
def report(engine: Engine, html_file: str, since: str | None) -> dict[str, Any]:
    """Write one self-contained HTML page for leads: charts per tier and process, funnels, gaps.

    The page works offline: no scripts or styles are fetched from anywhere. It detects gaps
    first, as `tiergate gaps` does.
    """
    return engine.report(html_file, since=since)
