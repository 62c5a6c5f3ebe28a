"""What one Tier 1 step writes to the database, with 1,000 instances open, against a small step.

    python bench/tier1_step_writes.py                       # SQLite (fresh file in a temp folder)
    python bench/tier1_step_writes.py --database-url postgresql+psycopg://postgres@127.0.0.1:55437/bench

The homes and processes are ``bench/tier1_runs.py``'s. One engine does ``--steps`` steps of a user
task in a loop (about 10 tasks in its run), then ``--steps`` steps of a parallel multi-instance
task over ``--items`` items while they are open. For each: the median wall and CPU time of a step
(``time.process_time``, this process), and what the database was given to write per step, which
the machine's load does not move: on SQLite the bytes this process wrote (``wchar`` of
``/proc/self/io``: the WAL's pages), on PostgreSQL the WAL the server wrote
(``pg_current_wal_lsn``). Ratios are to the loop's step. Linux only (``/proc``). On PostgreSQL the
database must exist and be empty or at tiergate's schema; the runs are left in it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tier1_runs as bench  # noqa: E402 - the same homes and processes

from tiergate.engine import Engine  # noqa: E402
from tiergate.store.db import Database  # noqa: E402


def _written() -> int:
    with open("/proc/self/io", encoding="ascii") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar"))


def _wal(engine: Engine) -> Any:
    with engine.db.read() as conn:
        return conn.execute(sa.text("SELECT pg_current_wal_lsn()")).scalar()


def _wal_bytes(engine: Engine, before: Any) -> float:
    with engine.db.read() as conn:
        return float(conn.execute(sa.text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :a)"), {"a": before}).scalar())


def measure(engine: Engine, steps: int, step: Callable[[int], None]) -> dict[str, float]:
    postgres = engine.db.engine.dialect.name == "postgresql"
    wall, cpu = [], []
    written, wal = _written(), _wal(engine) if postgres else None
    for index in range(steps):
        began, began_cpu = time.perf_counter(), time.process_time()
        step(index)
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    kb = (_wal_bytes(engine, wal) if postgres else _written() - written) / steps / 1024
    return {"wall_ms": statistics.median(wall) * 1000, "cpu_ms": statistics.median(cpu) * 1000, "kb": kb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="PostgreSQL database to use (default: a SQLite file)")
    parser.add_argument("--items", type=int, default=1000, help="items of the multi-instance task (default 1000)")
    parser.add_argument("--steps", type=int, default=30, help="steps timed of each (default 30)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tiergate-bench-"))
    url = args.database_url or f"sqlite:///{root / 'bench.db'}"
    database = Database(url)
    database.upgrade()
    database.dispose()
    engine = Engine(home=bench.write_home(root / "home"), database_url=url)
    loop = engine.start(bench.LOOP, {**bench.START, "again": True}, actor=bench.ACTOR).id
    for _ in range(3):
        engine.complete(loop, "work", bench.EVIDENCE, actor=bench.ACTOR)
    small = measure(engine, args.steps, lambda i: engine.complete(loop, "work", bench.EVIDENCE, actor=bench.ACTOR))
    tenants = [f"tenant-{i}" for i in range(args.items)]
    many = engine.start(bench.MANY, {**bench.START, "tenants": tenants}, actor=bench.ACTOR).id
    for index in range(5):
        engine.complete(many, f"verify[{index}]", bench.EVIDENCE, actor=bench.ACTOR)
    large = measure(engine, args.steps,
                    lambda i: engine.complete(many, f"verify[{i + 5}]", bench.EVIDENCE, actor=bench.ACTOR))
    engine.close()
    unit = "WAL kB" if url.startswith("postgresql") else "kB written"
    print(f"{engine.db.engine.dialect.name}, load average {os.getloadavg()[0]:.1f}; per step: wall ms, CPU ms, {unit}")
    for name, found in (("loop, about 10 tasks", small), (f"multi-instance, {args.items} open", large)):
        print(f"  {name:28} {found['wall_ms']:8.2f} {found['cpu_ms']:8.2f} {found['kb']:8.0f}   ratio "
              f"{found['wall_ms'] / small['wall_ms']:5.1f} {found['cpu_ms'] / small['cpu_ms']:5.1f} "
              f"{found['kb'] / small['kb']:5.1f}")


if __name__ == "__main__":
    main()
