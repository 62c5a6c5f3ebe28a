"""Signed checkpoints of the log's Merkle tree (C2SP ``tlog-checkpoint`` in a ``signed-note``).

    <origin>                       the log's name: its signing key's name
    <tree size>                    entries in the tree, decimal
    <root hash, base64>
    (blank line)
    — <origin> <base64(key ID || Ed25519 signature)>

A checkpoint is written to a folder outside the database (default ``<home>/.tiergate/checkpoints``,
one file per tree size: ``checkpoint-000000001234.txt``); witnesses' cosignatures are appended to
its file. The private key never enters the database: a file (``--key``) or ``TIERGATE_LOG_KEY``
(the key itself, or the path of its file).

    written = write_checkpoint(engine, load_signer(path))          # what `tiergate serve` may call
    written = maybe_write(engine, state)                           # the worker: every N entries or minutes
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate import logtree, notes
from tiergate.errors import CheckpointError, SigningKeyError
from tiergate.metrics import summary

if TYPE_CHECKING:
    from tiergate.engine import Engine

KEY_ENV = "TIERGATE_LOG_KEY"
PREFIX, SUFFIX = "checkpoint-", ".txt"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    note: str
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else f"checkpoint of size {self.size}"


def body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse(note: str, where: str, verifier: notes.Verifier | None = None) -> Checkpoint:
    """A checkpoint from its signed note; with ``verifier``, only if that key signed it."""
    text = notes.open_note(note, verifier, where) if verifier is not None else notes.split(note, where)[0]
    lines = text.split("\n")
    if len(lines) < 4 or not lines[0] or not lines[1].isdigit() or (len(lines[1]) > 1 and lines[1][0] == "0"):
        raise CheckpointError(f"{where}: not a checkpoint (origin, tree size, root hash lines).")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        root = b""
    if len(root) != 32:
        raise CheckpointError(f"{where}: line 3 is not a base64 SHA-256 root hash.")
    if verifier is not None and lines[0] != verifier.name:
        raise CheckpointError(f"{where}: a checkpoint of log {lines[0]!r}, not of {verifier.name!r}.")
    return Checkpoint(lines[0], int(lines[1]), root, note)


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningKeyError(f"{path}: cannot read the {what}: {getattr(exc, 'strerror', None) or exc}.") from None


def load_signer(key: str | None) -> notes.Signer:
    """The log's private key: ``key`` (a file, or the key's text), else TIERGATE_LOG_KEY (likewise)."""
    value = (key or os.environ.get(KEY_ENV, "")).strip()
    if not value:
        raise SigningKeyError(f"no log signing key: pass --key FILE or set {KEY_ENV} "
                              "(create one with `tiergate log keygen --out DIR`).")
    if value.startswith("PRIVATE+KEY+"):
        signer = notes.parse_signer(value, "--key" if key else KEY_ENV)
    else:
        signer = notes.parse_signer(read_text(Path(value), "private key"), value)
    if signer.kind != notes.NOTE:
        raise SigningKeyError(f"{value if not value.startswith('PRIVATE') else KEY_ENV}: a witness's cosigning key, "
                              "not a log signing key (log-signing.key).")
    return signer


def load_verifier(pub_file: str) -> notes.Verifier:
    return notes.parse_verifier(read_text(Path(pub_file), "public key"), pub_file)


def default_dir(engine: Engine) -> Path:
    return engine.home.root / ".tiergate" / "checkpoints"


def listing(folder: Path, verifier: notes.Verifier | None = None) -> list[Checkpoint]:
    """The checkpoints in ``folder``, smallest tree first (each one's signature checked with ``verifier``)."""
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such checkpoints folder.", code="not_found")
    found = []
    for path in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")):
        checkpoint = parse(read_text(path, "checkpoint"), str(path), verifier)
        found.append(Checkpoint(checkpoint.origin, checkpoint.size, checkpoint.root, checkpoint.note, path))
    return sorted(found, key=lambda c: (c.size, str(c.path)))


def sign_tree(engine: Engine, signer: notes.Signer) -> Checkpoint:
    """Bring the tree up to date (the summary fold) and sign its head."""
    summary.fold(engine.db)
    with engine.db.read() as conn:
        tree = logtree.head(conn)
    return Checkpoint(signer.name, tree.size, tree.root, notes.sign(body(signer.name, tree.size, tree.root), signer))


def save(checkpoint: Checkpoint, folder: Path) -> Path:
    """Write the checkpoint's file; a different tree of a size already signed is a fork: refused."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{PREFIX}{checkpoint.size:012d}{SUFFIX}"
    if path.exists():
        kept = parse(read_text(path, "checkpoint"), str(path))
        if (kept.origin, kept.root) != (checkpoint.origin, checkpoint.root):
            raise CheckpointError(
                f"{path} signed another tree of {checkpoint.size} entries: the log was rewritten since. "
                "Run `tiergate log verify --checkpoints` to find where; the file is kept as evidence.",
                code="log_forked", details={"checkpoint": str(path), "size": checkpoint.size})
        return path
    temporary = path.with_suffix(".tmp")
    temporary.write_text(checkpoint.note, encoding="utf-8")
    os.replace(temporary, path)
    return path


def write_checkpoint(engine: Engine, signer: notes.Signer, folder: Path | None = None,
                     witness_url: str | None = None) -> dict[str, Any]:
    """Sign the current tree head, write it to ``folder`` and, when given, ask a witness to cosign."""
    folder = folder or default_dir(engine)
    checkpoint = sign_tree(engine, signer)
    path = save(checkpoint, folder)
    answer: dict[str, Any] = {"file": str(path), "origin": checkpoint.origin, "size": checkpoint.size,
                              "root": base64.b64encode(checkpoint.root).decode(), "witness": None}
    url = witness_url or engine_setting(engine, "log_witness_url")
    if url:
        from tiergate import witness

        answer["witness"] = witness.submit(engine, url, Checkpoint(checkpoint.origin, checkpoint.size,
                                                                   checkpoint.root, checkpoint.note, path))
    return answer


def engine_setting(engine: Engine, name: str) -> Any:
    return (getattr(engine, "settings", None) or {}).get(name)


@dataclass
class Schedule:
    """When the worker (or ``tiergate serve``) wrote its last checkpoint."""

    size: int = -1
    at: float = 0.0


def _number(engine: "Engine", name: str, kind: type) -> Any:
    value = engine_setting(engine, name)
    try:
        number = kind(value or 0)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise SigningKeyError(f"setting {name} (TIERGATE_{name.upper()}) is {value!r}: give a number, 0 to turn "
                              "it off.", code="config_invalid")
    return number


def maybe_write(engine: Engine, schedule: Schedule) -> dict[str, Any] | None:
    """Write a checkpoint if a key is configured and ``log_checkpoint_entries`` entries or
    ``log_checkpoint_minutes`` minutes passed since the last one (and the tree grew)."""
    if not (engine_setting(engine, "log_key") or os.environ.get(KEY_ENV)):
        return None
    every = _number(engine, "log_checkpoint_entries", int)
    minutes = _number(engine, "log_checkpoint_minutes", float)
    with engine.db.read() as conn:
        size = logtree.head(conn).size
    if size <= max(schedule.size, 0):
        return None
    grown = schedule.size < 0 or (every > 0 and size - schedule.size >= every)
    late = minutes > 0 and time.monotonic() - schedule.at >= minutes * 60
    if not (grown or late):
        return None
    folder = engine_setting(engine, "log_checkpoints")
    written = write_checkpoint(engine, load_signer(engine_setting(engine, "log_key")),
                               Path(folder) if folder else None)
    schedule.size, schedule.at = written["size"], time.monotonic()
    return written
