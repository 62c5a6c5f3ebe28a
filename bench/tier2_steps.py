"""Tier 2 step completions through the real Engine API, against raw single-row INSERT + COMMIT.

    python bench/tier2_steps.py                                   # fresh SQLite file in a temp folder
    python bench/tier2_steps.py --database-url sqlite:////tmp/b.db   # that file (must not exist yet)
    python bench/tier2_steps.py --database-url postgresql+psycopg://postgres@127.0.0.1:54340/postgres
    python bench/tier2_steps.py --database-url ... --clients 8 -n 600 --json

One "engine op" is one ``Engine.complete(run, step, evidence, actor)``: read the run (from the
engine's remembered runs, ``store.RecentRuns``, as a long-lived client's engine does), check the
actor and the ``done_when`` gate, compute the new state, update the run row, append the chained
log entries, commit, and build the returned RunInfo. One "raw op" is one single-row INSERT
into a bench table plus COMMIT, through ``tiergate.store.db.Database(url).write()``, so both
sides pay the same connection handling and the same commit durability (SQLite: WAL with
synchronous=FULL and BEGIN IMMEDIATE; PostgreSQL: the default synchronous_commit).

PostgreSQL: by default the URL is used as an admin connection to create a dedicated database
``tiergate_bench_<random>``, migrate it, run there, and drop it at the end. ``--in-place``
runs in the given database itself (the schema is created if missing; the bench's runs stay).

Runs are started before timing. After an untimed warm-up, each round times ``-n`` completions
(split evenly across ``--clients`` processes) and ``-n`` raw inserts, in alternating raw and
engine slices (ABBA), so both kinds see the same background load. The report gives the median
round of each kind and the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import secrets
import sqlite3
import statistics
import sys
import tempfile
import textwrap
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tiergate.engine import Engine
from tiergate.store.db import Database

PROCESS = "bench-ticket"
ACTOR = "agent:bench-bot"
STEPS = ("triage", "investigate", "fix", "close")
BLOCK = 16  # runs worked on round-robin: step 1 of 16 runs, then step 2 of the same 16, ...

ROLES = """\
roles:
  lead:
    description: Owns the bench process.
    members: [human:alice]
"""

CATALOG = f"""\
processes:
  - id: {PROCESS}
    title: Bench ticket
    area: bench
    owner: lead
    expected_minutes: 10
    facts: {{compliance_critical: false, touches_live_systems: false, client_data: false, structured: true}}
"""

CHECKLIST = f"""\
id: {PROCESS}
title: Bench ticket
owner: lead
expected_minutes: 10
inputs:
  type: object
  required: [ticket_id, customer]
  properties:
    ticket_id: {{type: string, pattern: "^T-[0-9]+$"}}
    customer: {{type: string, minLength: 2}}
steps:
  - id: triage
    title: Triage the ticket
    instructions: "Read {{{{ data.ticket_id }}}} from {{{{ data.customer }}}} and rate it."
    done_when:
      type: object
      required: [summary, severity]
      properties:
        summary: {{type: string, minLength: 20}}
        severity: {{enum: [S1, S2, S3, S4]}}
  - id: investigate
    title: Find the cause
    instructions: "Severity {{{{ data.severity }}}}: find the component at fault."
    done_when:
      type: object
      required: [component, root_cause]
      properties:
        component: {{type: string, pattern: "^[a-z][a-z0-9-]{{1,40}}$"}}
        root_cause: {{type: string, minLength: 15}}
  - id: fix
    title: Fix it
    instructions: "Fix {{{{ data.component }}}} and link the change."
    done_when:
      type: object
      required: [change_ref, tested]
      properties:
        change_ref: {{type: string, pattern: "^PR-[0-9]{{1,7}}$"}}
        tested: {{const: true}}
  - id: close
    title: Close the ticket
    instructions: "Tell {{{{ data.customer }}}} about {{{{ data.change_ref }}}} and close {{{{ data.ticket_id }}}}."
    done_when:
      type: object
      required: [resolution, customer_note]
      properties:
        resolution: {{enum: [fixed, workaround, duplicate, wont_fix]}}
        customer_note: {{type: string, minLength: 10}}
"""


# Routes the bench process to Tier 2 (engines that route runs with decisions/tier_routing.dmn).
ROUTING = f"""\
<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="bench_routing" name="Bench routing"
             namespace="urn:tiergate:bench">
  <inputData id="in_process_id" name="process_id">
    <variable name="process_id" typeRef="string"/>
  </inputData>
  <decision id="tier_routing" name="tier_routing">
    <informationRequirement id="req_process_id">
      <requiredInput href="#in_process_id"/>
    </informationRequirement>
    <decisionTable id="tier_routing_table" hitPolicy="FIRST">
      <input id="col_process" label="process_id">
        <inputExpression typeRef="string"><text>process_id</text></inputExpression>
      </input>
      <output id="out_tier" name="tier" typeRef="number"/>
      <output id="out_rationale" name="rationale" typeRef="string"/>
      <rule id="bench_checklist">
        <inputEntry><text>"{PROCESS}"</text></inputEntry>
        <outputEntry><text>2</text></outputEntry>
        <outputEntry><text>"bench: a Tier 2 checklist"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""

ROUTING_TESTS = f"""\
decision: tier_routing
cases:
  - name: the bench process is a Tier 2 checklist
    inputs: {{process_id: {PROCESS}}}
    expect: {{tier: 2}}
"""


def write_home(root: Path) -> Path:
    for relative, text in (("tiers/roles.yaml", ROLES), ("tiers/catalog.yaml", CATALOG),
                           (f"checklists/{PROCESS}.yaml", CHECKLIST), ("decisions/tier_routing.dmn", ROUTING),
                           ("decisions/tests/tier_routing.yaml", ROUTING_TESTS)):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def start_data(i: int) -> dict[str, Any]:
    return {"ticket_id": f"T-{i}", "customer": f"customer-{i % 97}"}


def evidence(step: str, i: int) -> dict[str, Any]:
    if step == "triage":
        return {"summary": f"Login fails for every user of tenant {i} after the update", "severity": "S2"}
    if step == "investigate":
        return {"component": "auth-gateway", "root_cause": f"token cache keyed by the wrong tenant id ({i})"}
    if step == "fix":
        return {"change_ref": f"PR-{i % 1000000}", "tested": True}
    return {"resolution": "fixed", "customer_note": "Deployed the fix; logins work again."}


# --- one client: an Engine plus a raw Database on the same URL ---------------------------------


class Client:
    def __init__(self, home: Path, url: str, raw_table: str, index: int = 0):
        self.engine = Engine(home=home, database_url=url)
        self.raw_db = Database(url)
        self.raw = sa.Table(raw_table, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("payload", sa.Text, nullable=False))
        self.index = index
        self.tasks: list[tuple[str, str, int]] = []
        self.next_task = 0
        self.started = 0
        self.payload = "x" * 120

    def start_runs(self, count: int) -> None:
        """Start ``count`` runs (untimed) and queue their 4 steps each."""
        base = self.index * 10_000_000 + self.started
        run_ids = [self.engine.start(PROCESS, start_data(base + i), actor=ACTOR).id for i in range(count)]
        self.started += count
        for b in range(0, len(run_ids), BLOCK):
            block = run_ids[b:b + BLOCK]
            for step in STEPS:
                self.tasks.extend((run_id, step, base + b + j) for j, run_id in enumerate(block))

    def complete(self, count: int) -> int:
        tasks = self.tasks[self.next_task:self.next_task + count]
        if len(tasks) < count:
            raise RuntimeError(f"client {self.index}: {count} completions asked, {len(tasks)} queued")
        self.next_task += count
        engine = self.engine
        for run_id, step, i in tasks:
            engine.complete(run_id, step, evidence(step, i), actor=ACTOR)
        return count

    def insert(self, count: int) -> int:
        stmt = sa.insert(self.raw)
        db = self.raw_db
        for _ in range(count):
            with db.write() as conn:
                conn.execute(stmt, {"payload": self.payload})
        return count

    def run(self, kind: str, count: int) -> int:
        return self.complete(count) if kind == "engine" else self.insert(count)

    def close(self) -> None:
        self.engine.close()
        self.raw_db.dispose()


def _worker(home: str, url: str, raw_table: str, index: int, commands: Any, results: Any, barrier: Any) -> None:
    client: Client | None = None
    try:
        client = Client(Path(home), url, raw_table, index)
        while True:
            command = commands.get()
            if command is None:
                break
            kind, count = command
            if kind == "prepare":
                client.start_runs(count)
                results.put((index, "ok", 0.0))
                continue
            barrier.wait(timeout=600)
            t0 = time.perf_counter()
            try:
                client.run(kind, count)
            except Exception:
                results.put((index, "error", traceback.format_exc()))
                continue
            results.put((index, "ok", time.perf_counter() - t0))
    except Exception:
        results.put((index, "error", traceback.format_exc()))
    finally:
        if client is not None:
            client.close()


class Clients:
    """``k`` clients: in this process when k == 1, else k spawned processes released together."""

    def __init__(self, home: Path, url: str, raw_table: str, k: int):
        self.k = k
        self.local: Client | None = None
        self.procs: list[Any] = []
        if k == 1:
            self.local = Client(home, url, raw_table)
            return
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.barrier = ctx.Barrier(k + 1)
        self.commands = [ctx.Queue() for _ in range(k)]
        for i in range(k):
            proc = ctx.Process(target=_worker, args=(str(home), url, raw_table, i, self.commands[i], self.results,
                                                     self.barrier), daemon=True)
            proc.start()
            self.procs.append(proc)

    def split(self, total: int) -> list[int]:
        return [total // self.k + (1 if i < total % self.k else 0) for i in range(self.k)]

    def _collect(self) -> list[float]:
        out: list[float] = [0.0] * self.k
        for _ in range(self.k):
            while True:
                try:
                    index, status, value = self.results.get(timeout=5)
                    break
                except queue.Empty:
                    dead = [p.pid for p in self.procs if not p.is_alive()]
                    if dead:
                        raise RuntimeError(f"bench client process(es) {dead} died")
            if status != "ok":
                raise RuntimeError(f"bench client {index} failed:\n{value}")
            out[index] = value
        return out

    def prepare(self, runs: int) -> None:
        if self.local is not None:
            self.local.start_runs(runs)
            return
        for q, count in zip(self.commands, self.split(runs)):
            q.put(("prepare", count))
        self._collect()

    def timed(self, kind: str, total: int) -> float:
        """Seconds of wall time for ``total`` operations of ``kind`` across all clients."""
        if self.local is not None:
            t0 = time.perf_counter()
            self.local.run(kind, total)
            return time.perf_counter() - t0
        for q, count in zip(self.commands, self.split(total)):
            q.put((kind, count))
        self.barrier.wait(timeout=600)
        t0 = time.perf_counter()
        self._collect()
        return time.perf_counter() - t0

    def close(self) -> None:
        if self.local is not None:
            self.local.close()
            return
        for q in self.commands:
            q.put(None)
        self.barrier.abort()  # frees any client still waiting to be released (after an error)
        for proc in self.procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()


# --- the database under test ---------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    backend: str
    server: str
    cleanup: list[Any] = field(default_factory=list)


def _server_version(url: str) -> str:
    if url.startswith("sqlite"):
        return f"SQLite {sqlite3.sqlite_version}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return "PostgreSQL " + str(conn.exec_driver_sql("SHOW server_version").scalar())
    finally:
        engine.dispose()


def prepare_target(given: str | None, workdir: Path, in_place: bool) -> Target:
    if not given or given == "sqlite":
        url = f"sqlite:///{(workdir / 'db' / 'tiergate.db').as_posix()}"
        return Target(url, "sqlite", _server_version(url))
    parsed = sa.make_url(given)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and Path(parsed.database).exists():
            raise SystemExit(f"{parsed.database} exists; the bench needs a fresh database file.")
        return Target(given, "sqlite", _server_version(given))
    if backend != "postgresql":
        raise SystemExit(f"unsupported database '{backend}': use sqlite:///PATH or postgresql+psycopg://...")
    if in_place:
        database = Database(given)
        if database.current_revision() is None and not database.has_tables():
            database.upgrade()
        database.ensure_ready()
        database.dispose()
        return Target(given, "postgresql", _server_version(given))
    name = f"tiergate_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(given, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.DBAPIError as exc:
        raise SystemExit(f"cannot create the bench database {name}: {exc.orig}. Use --in-place to run in the "
                         "given database instead.") from None
    url = parsed.set(database=name).render_as_string(hide_password=False)
    target = Target(url, "postgresql", _server_version(url))

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        admin.dispose()

    target.cleanup.append(drop)
    database = Database(url)
    database.upgrade()
    database.dispose()
    return target


def create_raw_table(url: str) -> tuple[str, Any]:
    name = f"bench_raw_{secrets.token_hex(3)}"
    metadata = sa.MetaData()
    table = sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("payload", sa.Text, nullable=False))
    database = Database(url)
    with database.write() as conn:
        metadata.create_all(conn)

    def drop() -> None:
        with database.write() as conn:
            table.drop(conn)
        database.dispose()

    return name, drop


# --- the measurement -----------------------------------------------------------------------------------


def slices_per_round(n: int, k: int) -> int:
    """Each round alternates raw and engine slices, so both kinds see the same background load.

    A slice keeps at least ~50 operations per client, so that releasing the clients together
    and waiting for the slowest one stays a small part of the slice.
    """
    return max(1, min(10, n // (50 * k)))


def measure(args: argparse.Namespace, target: Target, home: Path, raw_table: str) -> dict[str, Any]:
    k = args.clients
    n = args.n
    warmup = args.warmup if args.warmup is not None else max(10 * k, min(500, n // 4))
    slices = slices_per_round(n, k)
    sizes = [n // slices + (1 if i < n % slices else 0) for i in range(slices)]
    # Each client works through its own runs; + k: every client rounds its share up.
    total_runs = -(-(warmup + args.rounds * n) // len(STEPS)) + k
    clients = Clients(home, target.url, raw_table, k)
    try:
        t0 = time.perf_counter()
        clients.prepare(total_runs)
        setup_s = time.perf_counter() - t0
        clients.timed("raw", warmup)
        clients.timed("engine", warmup)
        rates: dict[str, list[float]] = {"engine": [], "raw": []}
        timed_s = 0.0
        for r in range(args.rounds):
            seconds = {"engine": 0.0, "raw": 0.0}
            for i, size in enumerate(sizes):
                order = ("raw", "engine") if (r + i) % 2 == 0 else ("engine", "raw")  # ABBA
                for kind in order:
                    seconds[kind] += clients.timed(kind, size)
            for kind in ("raw", "engine"):
                timed_s += seconds[kind]
                rates[kind].append(n / seconds[kind])
            if not args.json:
                print(f"  round {r + 1}/{args.rounds}: engine {rates['engine'][-1]:9.1f} ops/s, "
                      f"raw {rates['raw'][-1]:9.1f} ops/s", file=sys.stderr)
    finally:
        clients.close()
    engine_rate = statistics.median(rates["engine"])
    raw_rate = statistics.median(rates["raw"])
    per_round = [e / r for e, r in zip(rates["engine"], rates["raw"])]
    return {
        "started_runs": total_runs, "warmup": warmup, "slices_per_round": slices, "setup_seconds": round(setup_s, 2),
        "timed_seconds": round(timed_s, 2),
        "engine": {"median_ops_per_s": round(engine_rate, 1), "rounds": [round(x, 1) for x in rates["engine"]],
                   "ms_per_op_per_client": round(1000 * k / engine_rate, 3)},
        "raw": {"median_ops_per_s": round(raw_rate, 1), "rounds": [round(x, 1) for x in rates["raw"]],
                "ms_per_op_per_client": round(1000 * k / raw_rate, 3)},
        # The ratio of each round (engine and raw slices interleaved in it), median over rounds.
        "ratio": round(statistics.median(per_round), 3),
        "ratio_rounds": [round(x, 3) for x in per_round],
        "ratio_of_medians": round(engine_rate / raw_rate, 3),
    }


def check_results(url: str, expected_completions: int) -> dict[str, int]:
    """Sanity check after timing: every timed completion left its log entry."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            completed = conn.exec_driver_sql(
                "SELECT count(*) FROM log_entries WHERE event = 'step_completed'").scalar()
            finished = conn.exec_driver_sql("SELECT count(*) FROM runs WHERE status = 'completed'").scalar()
    finally:
        engine.dispose()
    if completed is not None and completed < expected_completions:
        raise SystemExit(f"only {completed} step_completed entries for {expected_completions} completions")
    return {"step_completed_entries": int(completed or 0), "completed_runs": int(finished or 0)}


def _load() -> float | None:
    """The 1-minute load average: on a shared machine, other work skews the figures."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def report(result: dict[str, Any]) -> str:
    def rate(figures: dict[str, Any]) -> str:
        rounds = ", ".join(f"{x:.1f}" for x in figures["rounds"])
        return (f"{figures['median_ops_per_s']:>9.1f} ops/s  {figures['ms_per_op_per_client']:7.3f} ms/op per client"
                f"  (rounds {rounds})")

    machine = result["machine"]
    ratio = result["ratio"]
    rows = [
        ("database", f"{result['backend']} ({result['server']})"),
        ("clients", str(result["clients"])),
        ("ops per round", f"{result['n']} of each kind, {result['slices_per_round']} alternating slice(s) per kind "
                          f"(x {result['rounds']} rounds, median; warm-up {result['warmup']})"),
        ("engine.complete", rate(result["engine"])),
        ("raw INSERT+COMMIT", rate(result["raw"])),
        ("ratio engine/raw", f"{ratio:>9.3f}  (median of rounds {', '.join(f'{x:.3f}' for x in result['ratio_rounds'])}"
                             f"; goal >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'})"),
        ("check", f"{result['check']['step_completed_entries']} step_completed entries, "
                  f"{result['check']['completed_runs']} completed runs"),
        ("wall time", f"{result['wall_seconds']:.1f} s (timed rounds {result['timed_seconds']:.1f} s; starting "
                      f"{result['started_runs']} runs {result['setup_seconds']:.1f} s)"),
        ("machine", f"{machine['cpus']} CPUs, load average {machine['load_before']} before, "
                    f"{machine['load_after']} after; Python {machine['python']}"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=textwrap.dedent(__doc__.split("\n\n", 1)[1]))
    parser.add_argument("--database-url", default=None,
                        help="sqlite (default: a fresh temp file), sqlite:///NEW_FILE, or a PostgreSQL admin URL")
    parser.add_argument("-n", type=int, default=500, help="operations of each kind per timed round, all clients "
                                                          "together (default 500)")
    parser.add_argument("--clients", type=int, default=1, help="concurrent client processes (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each kind (default 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed operations of each kind first")
    parser.add_argument("--in-place", action="store_true",
                        help="PostgreSQL: run in the given database instead of a new tiergate_bench_* one")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.n < 1 or args.clients < 1 or args.rounds < 1:
        parser.error("-n, --clients and --rounds must be at least 1")

    started = time.perf_counter()
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="tiergate-bench-") as tmp:
        workdir = Path(tmp)
        home = write_home(workdir / "home")
        target = prepare_target(args.database_url, workdir, args.in_place)
        try:
            first = Engine(home=home, database_url=target.url)
            errors = [str(p) for p in first.check() if p.severity == "error"]
            if errors:
                raise SystemExit("the bench home does not load:\n  " + "\n  ".join(errors))
            first.db  # migrates a new SQLite file, checks the PostgreSQL schema
            first.close()
            raw_table, drop_raw = create_raw_table(target.url)
            target.cleanup.insert(0, drop_raw)
            figures = measure(args, target, home, raw_table)
            timed_completions = figures["warmup"] + args.rounds * args.n
            check = check_results(target.url, timed_completions)
        finally:
            for step in target.cleanup:
                step()
    result = {
        "bench": "tier2_steps", "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_before": load_before, "load_after": _load()},
        "backend": target.backend, "server": target.server, "clients": args.clients, "n": args.n,
        "rounds": args.rounds, **figures, "check": check, "wall_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
