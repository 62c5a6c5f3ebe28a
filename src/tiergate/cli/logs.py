"""The `log` command: read the execution log, or verify its hash chains."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, run_command
from tiergate.engine import Engine


def _show(out: Console, data: Any) -> None:
    if isinstance(data, dict) and "entries" in data and "ok" in data:
        for changed in data.get("definitions_tampered") or []:
            out.print(f"[red]changed[/]: definition snapshot {changed['version'][:12]} of {changed['process']} "
                      "no longer matches its hash")
        if data["ok"]:
            out.print(f"[green]ok[/]: {data['entries']} entries in {data['runs']} runs; every hash chain is intact")
        elif data["broken"] is not None:
            b = data["broken"]
            where = f"entry id {b['entry_id']}" if b["entry_id"] is not None else "after the last entry"
            out.print(f"[red]broken[/]: run {b['run_id']}, seq {b['seq']} ({where}): {escape(b['problem'])}")
        return
    if not data:
        out.print("no log entries")
        return
    for e in data:
        detail = json.dumps(e["detail"], ensure_ascii=False) if e["detail"] else ""
        if len(detail) > 100:
            detail = detail[:97] + "..."
        took = f" {e['duration_s']:.0f}s" if e["duration_s"] is not None else ""
        out.print(f"{e['at'][:19].replace('T', ' ')}  {e['run']} {e['seq']:>3}  {e['event']:<18} "
                  f"{(e['step'] or '-'):<20} {e['actor']:<24}{took}  [dim]{escape(detail)}[/]")


@click.command()
@click.argument("run", required=False, metavar="[RUN | verify]")
@common_options
@run_command(_show, failed=lambda data: isinstance(data, dict) and data.get("ok") is False)
def log(engine: Engine, run: str | None) -> Any:
    """Show the execution log, oldest first (one run's, or all), or `log verify`.

    `tiergate log verify` checks every run's hash chain and exits 1, naming the first broken
    entry, if an entry was edited, deleted or reordered.
    """
    if run == "verify":
        result = engine.verify_log()
        if result["broken"] is not None:
            b = result["broken"]
            result.update(code="log_tampered",
                          message=f"the log of run {b['run_id']} is broken at seq {b['seq']}: {b['problem']}")
        elif result["definitions_tampered"]:
            changed = ", ".join(f"{d['process']} {d['version'][:12]}" for d in result["definitions_tampered"])
            result.update(code="definition_tampered",
                          message=f"definition snapshots changed in the database after they were stored: {changed}")
        return result
    return engine.log(run)
