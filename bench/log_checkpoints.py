"""Checkpoints and proofs over a large log: the Merkle tree's costs at 1,000,000 entries.

    python bench/log_checkpoints.py                      # 1,000,000 entries in a fresh SQLite file
    python bench/log_checkpoints.py -n 200000 --new 1000 --json
    python bench/log_checkpoints.py --database-url postgresql+psycopg://postgres@127.0.0.1:54340/postgres

The log is filled with synthetic entries (only ``id`` and ``hash`` matter to the tree), the
summary is marked as folded up to them, and the tree is built once. Then ``--new`` entries are
added and timed:

- checkpoint: ``checkpoints.write_checkpoint`` (fold the new entries into the summary and the
  tree from its kept frontier, sign, write the file), against the baseline of computing the
  root from every entry's hash (what a tree without a kept frontier would cost);
- proof: ``logproof.prove`` of one entry against that checkpoint, and ``logproof.check`` of it,
  against the baseline of reading every entry's hash (the floor of anything that reads the log);
- audit: ``logproof.audit`` (what ``log verify --checkpoints`` adds), same baseline.

Ratios are time / baseline, both taken in this run: below 1 the kept frontier pays; a proof
near 2-3 reads the log once and hashes it once.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tiergate import checkpoints, logproof, logtree, merkle, notes
from tiergate.engine import Engine
from tiergate.log import entry_hash
from tiergate.store.db import Database
from tiergate.store.tables import LogEntry


def _fill(database: Database, start: int, count: int) -> None:
    now = datetime.now(UTC)
    rows = [{"run_id": f"r{(start + i) // 8}", "seq": (start + i) % 8 + 1, "at": now, "process_id": "bench",
             "definition_version": "v" * 64, "tier": 2, "step": "s", "event": "step_ready",
             "actor_kind": "system", "actor_id": "tiergate", "duration_s": None, "detail": {},
             "prev_hash": secrets.token_hex(32), "hash": ""} for i in range(count)]
    for row in rows:  # real hashes of the entries' fields, so that a proof of one checks
        row["hash"] = entry_hash(row, "{}")
    table = LogEntry.__table__  # type: ignore[attr-defined]
    with database.write() as conn:
        for i in range(0, count, 50_000):
            conn.execute(sa.insert(table), rows[i:i + 50_000])


def _timed(func: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="entries in the log (default 1,000,000)")
    parser.add_argument("--new", type=int, default=1000, help="entries added before the timed checkpoint")
    parser.add_argument("--database-url", default=None, help="sqlite (default: a temp file) or a PostgreSQL URL "
                        "of an empty database (its log is filled)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tiergate-bench-log-"))
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    database = Database(url)
    database.upgrade()
    figures: dict[str, Any] = {"entries": args.n, "new": args.new, "database": url.split(":")[0]}
    figures["fill_s"], _ = _timed(lambda: _fill(database, 0, args.n))
    with database.write() as conn:
        conn.execute(sa.text("UPDATE summary_fold SET high_water = (SELECT max(id) FROM log_entries)"))

    def build() -> None:
        while True:
            with database.write() as conn:
                _added, more = logtree.extend(conn, 1 << 62, 100_000)
            if not more:
                return
    figures["tree_build_s"], _ = _timed(build)
    _fill(database, args.n, args.new)
    engine = Engine(home=folder, database_url=url)
    signer = notes.generate("bench.example/log")
    checkpoint_s, written = _timed(lambda: checkpoints.write_checkpoint(engine, signer, folder / "cps"))
    with engine.db.read() as conn:
        read_s, (ids, leaves) = _timed(lambda: logtree.leaves(conn))
    root_s, root = _timed(lambda: merkle.root(leaves))
    assert written["size"] == len(leaves) == args.n + args.new
    assert written["root"] == base64.b64encode(root).decode()
    with engine.db.read() as conn:
        prove_s, proof = _timed(lambda: logproof.prove(conn, ids[len(ids) // 3], folder / "cps"))
    (folder / "proof.json").write_text(json.dumps(proof))
    check_s, _ = _timed(lambda: logproof.check(folder / "proof.json", signer.verifier))
    with engine.db.read() as conn:
        audit_s, audit = _timed(lambda: logproof.audit(conn, folder / "cps", signer.verifier))
    assert audit["broken"] is None
    engine.close()
    figures.update({
        "checkpoint_s": checkpoint_s, "baseline_full_root_s": read_s + root_s,
        "checkpoint_ratio": checkpoint_s / (read_s + root_s),
        "prove_s": prove_s, "check_proof_s": check_s, "audit_s": audit_s, "baseline_read_hashes_s": read_s,
        "prove_ratio": prove_s / read_s, "audit_ratio": audit_s / read_s,
        "machine": f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}",
    })
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"log                {args.n:,} entries + {args.new:,} new ({figures['database']}); "
          f"filled in {figures['fill_s']:.1f} s, tree built in {figures['tree_build_s']:.1f} s")
    print(f"checkpoint         {checkpoint_s * 1000:8.1f} ms  (fold {args.new} new entries, sign, write)")
    print(f"baseline root      {(read_s + root_s) * 1000:8.1f} ms  (read every hash {read_s * 1000:.0f} ms "
          f"+ root from scratch {root_s * 1000:.0f} ms)")
    print(f"ratio checkpoint   {figures['checkpoint_ratio']:8.3f}")
    print(f"prove              {prove_s * 1000:8.1f} ms  ratio to reading every hash {figures['prove_ratio']:.2f}")
    print(f"check-proof        {check_s * 1000:8.1f} ms  (no database)")
    print(f"verify checkpoints {audit_s * 1000:8.1f} ms  ratio to reading every hash {figures['audit_ratio']:.2f}")
    print(f"machine            {figures['machine']}")


if __name__ == "__main__":
    main()
