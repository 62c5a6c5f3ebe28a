"""Witnessing: a second party that cosigns a log's checkpoints only while they extend each other.

A log that shows one history to some and another to others (a *fork*: two trees of one size, or
a tree that does not contain the one before) is caught by a witness, which remembers the last
checkpoint it cosigned for each log and cosigns a new one only with a consistency proof from it.

The request is C2SP ``tlog-witness``'s add-checkpoint body, and the answer a C2SP
``tlog-cosignature`` line (Ed25519, signature type 0x04):

    old <size the log thinks the witness saw>
    <consistency proof hash, base64>     (one per line)
    (blank line)
    <the signed checkpoint>

    line = add_checkpoint(request_text, log_key, witness_key, state_dir)    # the witness side
    answer = submit(engine, url, checkpoint)                                # the log side (a POST)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiergate import logtree, merkle, notes
from tiergate.checkpoints import Checkpoint, parse, read_text
from tiergate.errors import CheckpointError

if TYPE_CHECKING:
    from tiergate.engine import Engine

#: Largest request body read (a checkpoint and a proof of at most 64 hashes are far smaller).
MAX_REQUEST = 64 * 1024


def request_body(old_size: int, proof: list[bytes], note: str) -> str:
    lines = [f"old {old_size}", *(base64.b64encode(p).decode() for p in proof)]
    return "\n".join(lines) + "\n\n" + note


def _parse_request(request: str) -> tuple[int, list[bytes], str]:
    head, sep, note = request.partition("\n\n")
    lines = head.split("\n")
    match = re.fullmatch(r"old (0|[1-9][0-9]*)", lines[0]) if sep else None
    if match is None:
        raise CheckpointError("the request is not an add-checkpoint body: 'old SIZE', proof lines, a blank line, "
                              "then the checkpoint.")
    try:
        proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
    except binascii.Error:
        raise CheckpointError("a consistency proof line is not base64.") from None
    if len(proof) > 63 or any(len(p) != 32 for p in proof):
        raise CheckpointError("the consistency proof is not a list of at most 63 SHA-256 hashes.")
    return int(match.group(1)), proof, note


def cosignature_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def _state_file(state_dir: Path, origin: str) -> Path:
    return state_dir / (re.sub(r"[^A-Za-z0-9._-]", "_", origin) + ".checkpoint")


def add_checkpoint(request: str, log_key: notes.Verifier, witness_key: notes.Signer, state_dir: Path,
                   now: int | None = None) -> str:
    """Cosign the request's checkpoint if it extends the last one this witness cosigned for its log.

    Returns the cosignature line. Refuses (``CheckpointError``) a bad signature, a stale ``old``
    size (code ``witness_conflict``, with the size the witness knows), a smaller tree, and a fork
    (code ``log_forked``): another root for a size already seen, or no valid consistency proof.
    """
    old_size, proof, note = _parse_request(request)
    new = parse(note, "the checkpoint", log_key)
    state_dir.mkdir(parents=True, exist_ok=True)
    kept_file = _state_file(state_dir, new.origin)
    seen = parse(read_text(kept_file, "witness state"), str(kept_file), log_key) if kept_file.exists() else None
    seen_size, seen_root = (seen.size, seen.root) if seen else (0, merkle.EMPTY_ROOT)
    if old_size != seen_size:
        raise CheckpointError(f"this witness last cosigned a tree of {seen_size} entries of {new.origin}, "
                              f"not {old_size}: send a consistency proof from {seen_size}.",
                              code="witness_conflict", details={"known_size": seen_size})
    if new.size < seen_size:
        raise CheckpointError(f"refused: a tree of {new.size} entries is smaller than the {seen_size} already "
                              "cosigned: the log went back.", code="log_forked", details={"known_size": seen_size})
    if not merkle.verify_consistency(seen_size, new.size, proof, seen_root, new.root):
        raise CheckpointError(f"refused: the tree of {new.size} entries does not extend the tree of {seen_size} "
                              f"entries this witness cosigned (root {base64.b64encode(seen_root).decode()}): "
                              "the log forked.", code="log_forked", details={"known_size": seen_size})
    stamp = int(time.time()) if now is None else now
    text = notes.split(note)[0]
    signature = witness_key.sign(cosignature_message(text, stamp))
    temporary = kept_file.with_suffix(".tmp")
    temporary.write_text(note, encoding="utf-8")
    os.replace(temporary, kept_file)
    return notes.signature_line(witness_key.name, witness_key.verifier.id, struct.pack(">Q", stamp) + signature)


def submit(engine: Engine, url: str, checkpoint: Checkpoint) -> dict[str, Any]:
    """POST the checkpoint to a witness with a consistency proof from the size it last cosigned,
    and append its cosignature to the checkpoint's file. Never raises: the answer says what happened."""
    assert checkpoint.path is not None
    sizes_file = checkpoint.path.parent / "witness-sizes.json"
    try:
        sizes = json.loads(sizes_file.read_text(encoding="utf-8")) if sizes_file.exists() else {}
    except (OSError, ValueError):
        sizes = {}
    old = int(sizes.get(url, 0))
    with engine.db.read() as conn:
        _ids, leaves = logtree.leaves(conn)
    for _attempt in range(2):
        proof = merkle.consistency_proof(leaves, min(old, checkpoint.size), checkpoint.size) \
            if old <= checkpoint.size <= len(leaves) else []
        body = request_body(old, proof, checkpoint.note).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answer = response.read(MAX_REQUEST).decode("utf-8")
        except urllib.error.HTTPError as err:
            text = err.read(MAX_REQUEST).decode("utf-8", "replace").strip()
            if err.code == 409 and text.isdigit() and int(text) != old:
                old = int(text)  # the witness knows another size: prove from there
                continue
            return {"url": url, "ok": False, "status": err.code, "message": text[:500]}
        except (urllib.error.URLError, OSError) as err:
            return {"url": url, "ok": False, "status": None, "message": f"cannot reach the witness: {err}"}
        lines = [line + "\n" for line in answer.splitlines() if line.startswith(notes.DASH)]
        if not lines:
            return {"url": url, "ok": False, "status": 200, "message": "the witness answered no cosignature"}
        with checkpoint.path.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)
        sizes[url] = checkpoint.size
        sizes_file.write_text(json.dumps(sizes, indent=2), encoding="utf-8")
        return {"url": url, "ok": True, "status": 200, "cosignatures": len(lines)}
    return {"url": url, "ok": False, "status": 409, "message": "the witness keeps asking for another size"}


def serve(host: str, port: int, log_key: notes.Verifier, witness_key: notes.Signer, state_dir: Path) -> None:
    """Answer POST /add-checkpoint until interrupted (one request at a time decides)."""
    import threading

    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            header = self.headers.get("Content-Length") or "0"
            length = int(header) if header.isdigit() else 0
            if self.path != "/add-checkpoint" or not 0 < length <= MAX_REQUEST:
                self._answer(404 if self.path != "/add-checkpoint" else 400, "POST a request to /add-checkpoint\n")
                return
            request = self.rfile.read(length).decode("utf-8", "replace")
            try:
                with lock:
                    line = add_checkpoint(request, log_key, witness_key, state_dir)
            except CheckpointError as err:
                if err.code == "witness_conflict":
                    self._answer(409, f"{err.details['known_size']}\n", "text/x.tlog.size")
                else:
                    self._answer(409 if err.code == "log_forked" else 403, err.message + "\n")
                return
            self._answer(200, line)

        def _answer(self, status: int, text: str, kind: str = "text/plain; charset=utf-8") -> None:
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
