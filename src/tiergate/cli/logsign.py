"""`tiergate log keygen | checkpoint | prove | check-proof | witness`: signed checkpoints of the log."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from tiergate.cli.output import common_options, run_command
from tiergate.engine import Engine


def _show_keys(out: Console, data: dict[str, Any]) -> None:
    out.print(f"wrote {escape(data['private'])} (keep it secret, outside the database) and {escape(data['public'])}")
    out.print(f"key name: {escape(data['name'])}")


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.chmod(path, 0o600)


@click.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the key pair.")
@click.option("--name", default=None, help="The key's name, which is the checkpoints' origin line "
              "(default: tiergate/<host name>, or witness/<host name> with --witness).")
@click.option("--witness", "for_witness", is_flag=True,
              help="A witness's cosigning key (witness-signing.key/.pub) instead of the log's.")
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
@common_options
@run_command(_show_keys)
def keygen(engine: Engine, out_dir: str, name: str | None, for_witness: bool, force: bool) -> Any:
    """Write an Ed25519 key pair: DIR/log-signing.key (private, mode 0600) and DIR/log-signing.pub.

    The private key signs checkpoints; keep it outside the database (a file, or TIERGATE_LOG_KEY).
    The public key is what `log verify --checkpoints`, `log check-proof` and witnesses need.
    """
    from tiergate import notes
    from tiergate.errors import UsageError

    folder = Path(out_dir)
    stem = "witness-signing" if for_witness else "log-signing"
    private, public = folder / f"{stem}.key", folder / f"{stem}.pub"
    if private.exists() and not force:
        raise UsageError(f"{private} exists: a new key would orphan the checkpoints signed with it. "
                         "Pass --force to replace it.", code="usage")
    host = socket.gethostname().split(".")[0] or "localhost"
    signer = notes.generate(name or f"{'witness' if for_witness else 'tiergate'}/{host}",
                            notes.COSIGNATURE if for_witness else notes.NOTE)
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(private, signer.text())
    public.write_text(signer.verifier.text() + "\n", encoding="utf-8")
    return {"private": str(private), "public": str(public), "name": signer.name, "key_id": signer.verifier.id.hex()}


def _show_checkpoint(out: Console, data: dict[str, Any]) -> None:
    out.print(f"checkpoint of {data['size']} entries (root {data['root']}) in {escape(data['file'])}")
    witness = data.get("witness")
    if witness is not None:
        state = "cosigned" if witness["ok"] else f"[red]not cosigned[/]: {escape(witness['message'])}"
        out.print(f"witness {escape(witness['url'])}: {state}")


@click.command()
@click.option("--key", "key_file", default=None, metavar="FILE",
              help="The log's private key (default: TIERGATE_LOG_KEY, the key itself or its file).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for checkpoints (default: log_checkpoints, or <home>/.tiergate/checkpoints).")
@click.option("--witness-url", default=None, help="POST the checkpoint to this witness (default: log_witness_url).")
@common_options
@run_command(_show_checkpoint, failed=lambda data: bool(data.get("witness")) and not data["witness"]["ok"])
def checkpoint(engine: Engine, key_file: str | None, out_dir: str | None, witness_url: str | None) -> Any:
    """Sign the log's current tree size and root (C2SP checkpoint) and write it to a folder.

    Brings the Merkle tree up to date first. With a witness URL the checkpoint is also sent to
    be cosigned, and the cosignature is added to its file (exit 1 if the witness refused).
    """
    from tiergate import checkpoints

    signer = checkpoints.load_signer(key_file or engine.settings.get("log_key"))
    folder = out_dir or engine.settings.get("log_checkpoints")
    answer = checkpoints.write_checkpoint(engine, signer, Path(folder) if folder else None, witness_url)
    if answer["witness"] is not None and not answer["witness"]["ok"]:
        answer.update(code="witness_refused", message=f"the witness at {answer['witness']['url']} did not cosign: "
                      f"{answer['witness']['message']}")
    return answer


@click.command()
@click.argument("entry_id", type=int)
@click.option("--checkpoints", "folder", type=click.Path(file_okay=False), default=None,
              help="Checkpoints folder (default: log_checkpoints, or <home>/.tiergate/checkpoints).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None, help="Write the proof here.")
@common_options
def prove(entry_id: int, folder: str | None, out_file: str | None, as_json: bool, home: str | None) -> None:
    """Print an inclusion proof of one log entry against the newest checkpoint, as JSON.

    The proof holds the entry, its leaf index, the audit path and the signed checkpoint: anyone
    with the log's public key can check it (`tiergate log check-proof`), without the database.
    """

    def human(_out: Console, data: dict[str, Any]) -> None:
        if out_file is None:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            click.echo(f"wrote the proof of entry {entry_id} (leaf {data['leaf_index']} of {data['tree_size']}) "
                       f"to {out_file}")

    @run_command(human)
    def body(engine: Engine) -> Any:
        from tiergate import checkpoints, logproof

        chosen = Path(folder or engine.settings.get("log_checkpoints") or checkpoints.default_dir(engine))
        with engine.db.read() as conn:
            proof = logproof.prove(conn, entry_id, chosen)
        if out_file is not None:
            Path(out_file).write_text(json.dumps(proof, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return proof

    click.get_current_context().invoke(body, as_json=as_json, home=home)


def _show_checked(out: Console, data: dict[str, Any]) -> None:
    out.print(f"[green]ok[/]: entry {data['entry']} (run {escape(str(data['run']))}, seq {data['seq']}) is leaf "
              f"{data['leaf_index']} of the {data['tree_size']}-entry tree {escape(data['origin'])} signed")


@click.command("check-proof")
@click.argument("proof_file", type=click.Path(dir_okay=False))
@click.option("--public-key", "public_key", required=True, type=click.Path(dir_okay=False),
              help="The log's public key (log-signing.pub).")
@common_options
@run_command(_show_checked)
def check_proof(engine: Engine, proof_file: str, public_key: str) -> Any:
    """Check an inclusion proof from `tiergate log prove` with the log's public key alone.

    Exits 0 only if the checkpoint's signature verifies, the entry's fields hash to its hash,
    and the audit path leads from it to the signed root. Reads no database.
    """
    from tiergate import checkpoints, logproof

    return logproof.check(Path(proof_file), checkpoints.load_verifier(public_key))


@click.command()
@click.argument("request_file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--log-key", "log_key", required=True, type=click.Path(dir_okay=False),
              help="The witnessed log's public key (its log-signing.pub).")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="This witness's private key (`tiergate log keygen --witness`).")
@click.option("--state", "state_dir", type=click.Path(file_okay=False), default=None,
              help="Where the witness keeps the last checkpoint it cosigned per log "
                   "(default: <home>/.tiergate/witness).")
@click.option("--listen", default=None, metavar="HOST:PORT", help="Serve POST /add-checkpoint instead.")
@common_options
def witness(request_file: str | None, log_key: str, key_file: str, state_dir: str | None, listen: str | None,
            as_json: bool, home: str | None) -> None:
    """Cosign another tiergate's checkpoint if it extends the last one seen (C2SP tlog-cosignature).

    REQUEST_FILE ('-': standard input) is a tlog-witness add-checkpoint body: `old SIZE`, the
    consistency proof from that size, a blank line, the signed checkpoint. Prints the cosignature
    line; refuses (exit 1, code log_forked) a checkpoint that forks the history it saw.
    """

    def human(out: Console, data: dict[str, Any]) -> None:
        if data.get("cosignature"):
            click.echo(data["cosignature"], nl=False)

    @run_command(human)
    def body(engine: Engine) -> Any:
        from tiergate import checkpoints, notes
        from tiergate import witness as witnessing
        from tiergate.errors import UsageError

        verifier = checkpoints.load_verifier(log_key)
        signer = notes.parse_signer(checkpoints.read_text(Path(key_file), "witness key"), key_file)
        if signer.kind != notes.COSIGNATURE:
            raise UsageError(f"{key_file}: a log signing key; a witness cosigns with its own key "
                             "(`tiergate log keygen --witness`).", code="key_invalid")
        state = Path(state_dir) if state_dir else engine.home.root / ".tiergate" / "witness"
        if listen is not None:
            host, _, port = listen.rpartition(":")
            if not port.isdigit():
                raise UsageError(f"--listen {listen}: give HOST:PORT, e.g. 127.0.0.1:8765.")
            witnessing.serve(host or "127.0.0.1", int(port), verifier, signer, state)
            return {"cosignature": None}
        if request_file is None:
            raise UsageError("give REQUEST_FILE ('-' for standard input) or --listen HOST:PORT.")
        request = sys.stdin.read() if request_file == "-" else checkpoints.read_text(Path(request_file), "request")
        return {"cosignature": witnessing.add_checkpoint(request, verifier, signer, state)}

    click.get_current_context().invoke(body, as_json=as_json, home=home)
