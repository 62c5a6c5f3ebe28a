"""The log against its signed checkpoints: audit the whole log, prove one entry, check a proof.

``audit`` recomputes the tree from every entry's hash as the log now stands (never from the
stored ``log_tree``), and checks that each checkpoint's tree is a prefix of it: the root of the
first ``size`` leaves is the signed root, and a consistency proof from the newest checkpoint to
the current tree verifies. A rewrite made after a checkpoint (entries edited and re-hashed,
deleted, reordered, a run removed) changes a leaf the checkpoint covers, and is found.

``prove`` writes an inclusion proof of one entry against the newest checkpoint; ``check``
verifies such a proof with the log's public key alone.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from tiergate import checkpoints, logtree, merkle, notes
from tiergate.errors import CheckpointError, IntegrityError, NotFoundError
from tiergate.log import entry_hash, format_time
from tiergate.store.tables import LogEntry

FORMAT = "tiergate-inclusion-proof/v1"
_log = LogEntry.__table__  # type: ignore[attr-defined]


def audit(conn: Connection, folder: Path, verifier: notes.Verifier) -> dict[str, Any]:
    """Check every checkpoint in ``folder`` against the log; name the first one it no longer extends."""
    found = checkpoints.listing(folder, verifier)
    ids, leaves = logtree.leaves(conn)
    stored = logtree.head(conn)
    answer: dict[str, Any] = {"folder": str(folder), "checkpoints": len(found), "tree_size": len(leaves),
                              "root": base64.b64encode(merkle.root(leaves)).decode(), "broken": None,
                              "stored_tree_ok": None}
    frontier = merkle.Frontier()
    good: checkpoints.Checkpoint | None = None
    pending = list(found)
    for position in range(len(leaves) + 1):
        if position == stored.size:
            answer["stored_tree_ok"] = frontier.root() == stored.root
        while pending and pending[0].size == position:
            checkpoint = pending.pop(0)
            if frontier.root() != checkpoint.root:
                answer["broken"] = _broken(checkpoint, good, ids, "the log's first {size} entries no longer have "
                                           "the root it signed")
                return answer
            good = checkpoint
        if position < len(leaves):
            frontier.append(leaves[position])
    if pending:
        answer["broken"] = _broken(pending[0], good, ids, f"it signed {{size}} entries; the log now has {len(leaves)}")
        return answer
    if good is not None:  # the newest checkpoint, by a consistency proof to the current tree
        proof = merkle.consistency_proof(leaves, good.size)
        if not merkle.verify_consistency(good.size, len(leaves), proof, good.root, merkle.root(leaves)):
            answer["broken"] = _broken(good, None, ids, "no consistency proof from it to the current tree")
        answer["newest"] = {"checkpoint": good.name, "size": good.size, "consistency_proof": len(proof)}
    return answer


def _broken(checkpoint: checkpoints.Checkpoint, good: checkpoints.Checkpoint | None, ids: list[int],
            problem: str) -> dict[str, Any]:
    low = good.size if good is not None else 0
    span = ids[low:min(checkpoint.size, len(ids))]
    where = (f"an entry among leaves {low + 1}..{checkpoint.size} (entry ids {span[0]}..{span[-1]} as the log now "
             "stands) was changed, removed, added or moved" if span else "entries it covered were deleted")
    since = f"since {good.name}" if good is not None else "since the log began"
    return {"checkpoint": checkpoint.name, "size": checkpoint.size, "last_good": good.name if good else None,
            "problem": f"the log no longer extends {checkpoint.name}: {problem.format(size=checkpoint.size)}; "
                       f"{where} ({since}).",
            "entry_ids": [span[0], span[-1]] if span else None}


def _entry_json(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "run_id": row["run_id"], "seq": row["seq"], "at": format_time(row["at"]),
            "process_id": row["process_id"], "definition_version": row["definition_version"], "tier": row["tier"],
            "step": row["step"], "event": row["event"], "actor_kind": row["actor_kind"], "actor_id": row["actor_id"],
            "duration_s": row["duration_s"], "detail": row["detail"], "prev_hash": row["prev_hash"],
            "state_hash": row["state_hash"], "door": row.get("door"), "hash": row["hash"]}


def prove(conn: Connection, entry_id: int, folder: Path) -> dict[str, Any]:
    """An inclusion proof of entry ``entry_id`` against the newest checkpoint in ``folder``."""
    found = checkpoints.listing(folder)
    if not found:
        raise CheckpointError(f"{folder} holds no checkpoint: write one with `tiergate log checkpoint` first.",
                              code="not_found")
    newest = found[-1]
    row = conn.execute(select(_log).where(_log.c.id == entry_id)).first()
    if row is None:
        raise NotFoundError(f"no log entry with id {entry_id}. `tiergate log --json` lists entries with their ids.")
    ids, leaves = logtree.leaves(conn)
    index = ids.index(entry_id)
    if index >= newest.size:
        raise CheckpointError(f"entry {entry_id} is newer than the newest checkpoint ({newest.name}, "
                              f"{newest.size} entries): write a checkpoint first.", code="not_found")
    if len(leaves) < newest.size:
        raise IntegrityError(f"the log has {len(leaves)} entries, fewer than the {newest.size} {newest.name} "
                             "signed: run `tiergate log verify --checkpoints`.")
    path = merkle.inclusion_proof(leaves, index, newest.size)
    if not merkle.verify_inclusion(leaves[index], index, newest.size, path, newest.root):
        raise IntegrityError(f"the log no longer extends {newest.name}: run `tiergate log verify --checkpoints`.")
    return {"format": FORMAT, "entry": _entry_json(dict(row._mapping)), "leaf_index": index,
            "tree_size": newest.size, "proof": [base64.b64encode(p).decode() for p in path],
            "checkpoint": newest.note}


def check(proof_file: Path, verifier: notes.Verifier) -> dict[str, Any]:
    """Verify a proof written by ``prove``: the checkpoint's signature, the entry's hash, the path."""
    where = str(proof_file)
    try:
        proof = json.loads(checkpoints.read_text(proof_file, "proof"))
        entry, index, size = proof["entry"], int(proof["leaf_index"]), int(proof["tree_size"])
        path = [base64.b64decode(p, validate=True) for p in proof["proof"]]
        note = proof["checkpoint"]
        if proof.get("format") != FORMAT or not isinstance(entry, dict) or not isinstance(note, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise CheckpointError(f"{where}: not a proof written by `tiergate log prove` (format {FORMAT}).",
                              code="proof_invalid") from None
    checkpoint = checkpoints.parse(note, f"{where}: checkpoint", verifier)
    if checkpoint.size != size:
        raise CheckpointError(f"{where}: the proof is for a tree of {size} entries, the checkpoint signs "
                              f"{checkpoint.size}.", code="proof_invalid")
    try:
        row = {**entry, "at": datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))}
        recomputed = entry_hash(row)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise CheckpointError(f"{where}: the entry lacks a field of a log entry.", code="proof_invalid") from None
    if recomputed != entry.get("hash"):
        raise CheckpointError(f"{where}: the entry's fields do not hash to its hash: the entry was changed.",
                              code="proof_invalid")
    leaf = merkle.leaf_hash(bytes.fromhex(recomputed))
    if not merkle.verify_inclusion(leaf, index, size, path, checkpoint.root):
        raise CheckpointError(f"{where}: the inclusion proof does not lead to the signed root: the entry is not "
                              f"leaf {index} of that tree.", code="proof_invalid")
    return {"ok": True, "entry": entry.get("id"), "run": entry.get("run_id"), "seq": entry.get("seq"),
            "leaf_index": index, "tree_size": size, "origin": checkpoint.origin}
