"""The `log` commands: read the execution log, verify it, and sign, prove and witness it.

`tiergate log [RUN]` shows the log (the same as `tiergate log show [RUN]`); the subcommands
verify its chains and checkpoints (`verify`) and work with signed checkpoints (`cli.logsign`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, run_command

if TYPE_CHECKING:
    from tiergate.engine import Engine


def _show_verify(out: Console, data: dict[str, Any]) -> None:
    for changed in data.get("definitions_tampered") or []:
        out.print(f"[red]changed[/]: definition snapshot {changed['version'][:12]} of {changed['process']} "
                  "no longer matches its hash")
    for changed in data.get("data_stores_tampered") or []:
        out.print(f"[red]changed[/]: data store {escape(changed['store'])} of {changed['process']}: "
                  f"{escape(changed['problem'])}")
    if data["ok"]:
        out.print(f"[green]ok[/]: {data['entries']} entries in {data['runs']} runs; every hash chain is intact")
    elif data["broken"] is not None:
        b = data["broken"]
        where = f"entry id {b['entry_id']}" if b["entry_id"] is not None else "after the last entry"
        out.print(f"[red]broken[/]: run {b['run_id']}, seq {b['seq']} ({where}): {escape(b['problem'])}")
    audit = data.get("checkpoints")
    if audit is None:
        return
    if audit["broken"] is None:
        out.print(f"[green]ok[/]: the log ({audit['tree_size']} entries) extends all {audit['checkpoints']} "
                  f"checkpoints in {escape(audit['folder'])}")
    else:
        out.print(f"[red]rewritten[/]: {escape(audit['broken']['problem'])}")


def _show_entries(out: Console, data: Any) -> None:
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


class _LogGroup(click.Group):
    """`tiergate log RUN` is `tiergate log show RUN`: a first word that is no subcommand is a run."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)


@click.group(cls=_LogGroup, invoke_without_command=True)
@common_options
@click.pass_context
def log(ctx: click.Context, as_json: bool, home: str | None) -> None:
    """Show the execution log, oldest first (one run's, or all), verify it, or sign and prove it.

    `tiergate log [RUN]` shows entries; `tiergate log verify` checks every hash chain and each
    run's state; keygen, checkpoint, prove, check-proof and witness work with signed
    checkpoints of the log's Merkle tree (docs/log.md).
    """
    if home is not None:  # `tiergate log --home DIR RUN`: the subcommand reads it from here
        ctx.ensure_object(dict)["home"] = home
    if ctx.invoked_subcommand is None:
        ctx.invoke(show, run=None, as_json=as_json, home=home)


@log.command()
@click.argument("run", required=False)
@common_options
@run_command(_show_entries)
def show(engine: Engine, run: str | None) -> Any:
    """Show the execution log, oldest first: every run's entries, or one run's (`tiergate log RUN`)."""
    return engine.log(run)


def _show_refusals(out: Console, data: Any) -> None:
    if not data:
        out.print("no refusals at the doors")
        return
    for r in data:
        size = f"{r['bytes']} bytes sha256 {r['sha256'][:12]}" if r["sha256"] else \
            (f"{r['bytes']} bytes" if r["bytes"] is not None else "")
        out.print(f"{r['at'][:19].replace('T', ' ')}  {r['door']:<9} {r['attempt']:<8} {r['code']:<16} "
                  f"{(r['problem'] or '-'):<16} {(r['actor'] or '-'):<24} {r['credential'] or '-':<16} {size}")


@log.command()
@click.option("--limit", "most", type=click.IntRange(1, 10_000), default=100, show_default=True,
              help="How many, newest first.")
@common_options
@run_command(_show_refusals, direct=True)
def refusals(engine: Engine, most: int) -> Any:
    """Show attempts refused at a door before they reached a run, newest first.

    A message no parser may read (malformed JSON-RPC, a key twice, NaN, too deep or too long),
    start data refused for its shape, an input for a run that does not exist: each with its door,
    actor and credential when known, and the content's sha256 and size, never the content.
    """
    from tiergate import doorlog

    return doorlog.entries(engine, most)


@log.command()
@click.option("--checkpoints", "folder", type=click.Path(file_okay=False), default=None,
              help="A folder of signed checkpoints: check that the log still extends each of them.")
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False), default=None,
              help="The log's public key (log-signing.pub), to check the checkpoints' signatures.")
@common_options
@run_command(_show_verify, failed=lambda data: data.get("ok") is False)
def verify(engine: Engine, folder: str | None, public_key: str | None) -> Any:
    """Check every run's hash chain and current state, and (with --checkpoints) the whole log
    against signed checkpoints.

    Exits 1 naming the first broken entry (edited, deleted, reordered, or a run's state edited),
    or the first checkpoint the log no longer extends (a rewrite of the whole database since).
    """
    from tiergate.errors import UsageError

    if (folder is None) != (public_key is None):
        raise UsageError("--checkpoints and --public-key go together: the checkpoints' signatures are checked "
                         "with the log's public key.")
    result = engine.verify_log()
    if folder is not None and public_key is not None:
        from pathlib import Path

        from tiergate import checkpoints, logproof

        verifier = checkpoints.load_verifier(public_key)
        with engine.db.read() as conn:
            result["checkpoints"] = logproof.audit(conn, Path(folder), verifier)
        if result["checkpoints"]["broken"] is not None:
            result["ok"] = False
    if result["broken"] is not None:
        b = result["broken"]
        result.update(code="log_tampered",
                      message=f"the log of run {b['run_id']} is broken at seq {b['seq']}: {b['problem']}")
    elif result.get("checkpoints") is not None and result["checkpoints"]["broken"] is not None:
        result.update(code="log_tampered", message=result["checkpoints"]["broken"]["problem"])
    elif result.get("definitions_tampered"):
        changed = ", ".join(f"{d['process']} {d['version'][:12]}" for d in result["definitions_tampered"])
        result.update(ok=False, code="definition_tampered",
                      message=f"definition snapshots changed in the database after they were stored: {changed}")
    elif result.get("data_stores_tampered"):
        changed = "; ".join(f"{d['process']} {d['store']}: {d['problem']}" for d in result["data_stores_tampered"])
        result.update(ok=False, code="log_tampered", message=f"data stores the log does not account for: {changed}")
    return result


from tiergate.cli import logsign

for _command in (logsign.keygen, logsign.checkpoint, logsign.prove, logsign.check_proof, logsign.witness):
    log.add_command(_command)
