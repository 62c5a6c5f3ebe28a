"""Benchmark: `metrics` and `gaps` over a large execution log, against a plain count(*) scan.

    python bench/metrics.py                                         # fresh SQLite file in a temp folder
    python bench/metrics.py --database-url sqlite:////tmp/m.db --keep   # keep the file; --reuse it next time
    python bench/metrics.py --database-url postgresql+psycopg://postgres@127.0.0.1:54342/postgres
    python bench/metrics.py --runs 5000 --json                      # smaller, machine-readable

Fills the log with ``--runs`` runs (default 50,000, about 1,000,000 entries) by bulk insert,
folds the whole log into the log summary once (timed: what the first metrics call after
``tiergate db upgrade`` costs), then times, in the same process and on the same data:

* the baseline: ``SELECT count(*) FROM log_entries``;
* ``Engine.metrics()`` over the whole log, which first folds what was logged since the last call,
  twice: right after the round's new runs were logged (it folds them), then again (nothing new);
* ``Engine.metrics(from_log=True)``: the same answer, counted from the log's entries;
* ``Engine.gaps()`` (detection, classification and storing the gaps).

Before each round, ``--new-runs`` more simulated runs (default 50, about 1,000 entries) are
added to the log, untimed, so the round's first ``metrics`` folds new entries as in service.
After one untimed round (warm caches), ``--repeat`` rounds run the five back to back, so they
share the machine's background load; reported are the median times and the median of the
per-round ratios. The goal (docs/performance.md) is metrics under 10x the baseline. Each
round also checks that the summary's answer equals the one counted from the log.

The runs are simulated from this repository's own definitions, so the event mix is that of
real runs: the Tier 2 checklists' real steps (their order, ``after``, optional and ``decide``
steps, human-only steps), Tier 1 processes with timers, escalations and off-path steps, and
Tier 3 runs that are served guidance. Agents fail gates, try steps out of order or that need
a person, people take over, runs are cancelled or left open. Hashes are random: the chain is
not needed to time metrics (``tiergate log verify`` would report it broken).

SQLite: the URL's file must not exist yet, unless ``--reuse`` (use the filled log as it is).
PostgreSQL: the URL is an admin connection; the bench creates ``tiergate_bench_metrics``, and
drops it at the end unless ``--keep`` (``--reuse`` uses it as it is).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlalchemy as sa

from tiergate.definitions.home import Home, load_definitions
from tiergate.engine import Engine
from tiergate.jsonutil import canonical_json
from tiergate.store.db import Database

REPO = Path(__file__).resolve().parents[1]
BENCH_DB = "tiergate_bench_metrics"
COLUMNS = ("run_id", "seq", "at", "process_id", "definition_version", "tier", "step", "event", "actor_kind",
           "actor_id", "duration_s", "detail", "prev_hash", "hash")
#: Share of runs per process (the catalog's processes; Tier 1 steps are made up until their BPMN exists).
MIX = {"support-triage": 30, "defect-capture": 8, "documentation-generation": 6, "standard-data-import": 6,
       "knowledge-ingestion": 9, "client-config-change": 13, "release-pipeline": 7, "pay-scenario-test": 9,
       "knowledge-qa": 6, "report-generation": 3, "general-search": 3}
TIER1_STEPS = ["intake", "analyse-impact", "prepare-change", "peer-review", "test-scenarios", "review-results",
               "approve", "schedule-window", "apply", "verify", "notify-client", "close"]
AGENTS = ["agent:triage-bot", "agent:qa-bot", "agent:docs-writer", "agent:import-bot", "agent:report-bot"]
HUMANS = ["human:alice", "human:bob", "human:kim", "human:carol", "human:dave", "human:erin", "human:frank",
          "human:nina", "human:grace", "human:heidi"]
REFUSALS = ["not_ready", "not_ready", "already_done", "actor_not_allowed", "same_actor", "unknown_step"]


@dataclass
class StepSpec:
    id: str
    after: list[str]
    optional: bool = False
    decide: bool = False
    human_only: bool = False


def process_specs(home: Path) -> tuple[dict[str, int], dict[str, int], dict[str, list[StepSpec]]]:
    """Tier, expected minutes and steps of every catalog process, from the home's definitions."""
    definitions = load_definitions(Home(home))
    catalog = definitions.require_catalog()
    tiers: dict[str, int] = {}
    expected = {p.id: p.expected_minutes for p in catalog.processes}
    steps: dict[str, list[StepSpec]] = {}
    for entry in catalog.processes:
        checklist = definitions.checklists.get(entry.id)
        if checklist is not None:
            tiers[entry.id] = 2
            c = checklist.checklist
            steps[entry.id] = [StepSpec(s.id, c.predecessors(s.id), s.optional, s.decide is not None,
                                        s.actors == ["human"]) for s in c.steps]
        elif entry.facts.compliance_critical or entry.facts.touches_live_systems:
            tiers[entry.id] = 1
            steps[entry.id] = [StepSpec(s, [TIER1_STEPS[i - 1]] if i else [], human_only=s == "approve")
                               for i, s in enumerate(TIER1_STEPS)]
        else:
            tiers[entry.id] = 3
            steps[entry.id] = []
    return tiers, expected, steps


class RunSimulator:
    """Writes the entries one run of a process would have produced, with realistic deviations."""

    def __init__(self, rng: random.Random, tiers: dict[str, int], expected: dict[str, int],
                 steps: dict[str, list[StepSpec]]):
        self.rng, self.tiers, self.expected, self.steps = rng, tiers, expected, steps

    def run(self, run_id: str, process: str, start: datetime) -> list[tuple[Any, ...]]:
        rng = self.rng
        tier = self.tiers[process]
        version = hashlib.sha256(process.encode()).hexdigest()
        rows: list[tuple[Any, ...]] = []
        clock = [start]

        def add(event: str, actor: str, step: str | None = None, detail: dict[str, Any] | None = None,
                duration: float | None = None) -> None:
            kind, name = actor.split(":", 1)
            rows.append((run_id, len(rows) + 1, clock[0], process, version, tier, step, event, kind, name,
                         duration, canonical_json(detail or {}), f"{rng.getrandbits(256):064x}",
                         f"{rng.getrandbits(256):064x}"))

        starter = rng.choice(AGENTS) if rng.random() < 0.7 else rng.choice(HUMANS)
        add("routed", "system:tiergate", detail={"decision": "tier_routing", "matched_rule": f"rule_tier{tier}",
                                                  "tier": tier, "inputs": {"process_id": process}})
        add("started", starter, detail={"data": {"ticket_id": f"SUP-{rng.randint(10000, 99999)}",
                                                 "client_id": f"CL-{rng.randint(1000, 9999)}",
                                                 "summary": "Payslips show the wrong overtime rate"}})
        if tier == 3:
            # As the conventions runner logs it: guidance served, one `work` step, closed with an outcome.
            add("guidance_served", "system:tiergate", "work", {"conventions": "Answer from the published "
                                                               "knowledge base only. " * 20,
                                                               "template": f"tiers/conventions/{process}.md.j2",
                                                               "to": starter})
            add("step_ready", "system:tiergate", "work")
            if rng.random() < 0.8:
                clock[0] += timedelta(minutes=rng.lognormvariate(0, 0.6) * self.expected[process])
                add("step_completed", starter, "work", {"outcome": {"answered": True, "sources": 2}},
                    (clock[0] - start).total_seconds())
                add("completed", "system:tiergate")
            return rows
        fate = rng.random()
        stop_after = len(self.steps[process]) + 1
        if fate < 0.05:
            stop_after = rng.randint(1, max(1, len(self.steps[process]) - 1))   # cancelled part way
        elif fate < 0.12:
            stop_after = rng.randint(0, max(0, len(self.steps[process]) - 1))   # left open
        per_step = self.expected[process] / max(1, len(self.steps[process]))
        # A Tier 1 run that leaves its expected path (a rejection, a rework loop) from some step
        # on: as the BPMN runner does, every step reached after that is marked off path.
        off_from = rng.randint(1, len(self.steps[process])) if tier == 1 and rng.random() < 0.1 else None
        position = {s.id: n for n, s in enumerate(self.steps[process])}
        state = {s.id: "locked" for s in self.steps[process]}
        ready_at: dict[str, datetime] = {}
        done = 0

        def unlock() -> None:
            for s in self.steps[process]:
                if state[s.id] == "locked" and all(state[p] in ("done", "skipped") for p in s.after):
                    state[s.id] = "ready"
                    ready_at[s.id] = clock[0]
                    off = off_from is not None and position[s.id] >= off_from
                    detail = {"off_path": True, "flow": "flow_rework"} if off else {}
                    add("step_ready", "system:tiergate", s.id, detail)

        unlock()
        while done < stop_after:
            ready = [s for s in self.steps[process] if state[s.id] == "ready"]
            if not ready:
                break
            step = ready[0]
            locked = [s for s in self.steps[process] if state[s.id] == "locked"]
            if locked and rng.random() < 0.04:
                add("refused", starter, locked[0].id, {"attempt": "complete", "reason": "not_ready",
                                                       "message": "step is not ready"})
            clock[0] += timedelta(minutes=rng.lognormvariate(0, 0.7) * per_step)
            if step.decide:
                add("decision_evaluated", "system:tiergate", step.id, {"decision": "support_triage",
                                                                       "outputs": {"priority": "P2"},
                                                                       "matched_rules": ["rule_3"]})
                add("step_completed", "system:tiergate", step.id, {"evidence": {"priority": "P2"}},
                    (clock[0] - ready_at[step.id]).total_seconds())
                state[step.id] = "done"
            elif step.optional and rng.random() < 0.3:
                add("step_skipped", starter, step.id, {"reason": "nothing to reproduce"},
                    (clock[0] - ready_at[step.id]).total_seconds())
                state[step.id] = "skipped"
            else:
                actor = starter
                if step.human_only and actor.startswith("agent:"):
                    if rng.random() < 0.15:
                        add("refused", actor, step.id, {"attempt": "complete", "reason": "actor_not_allowed",
                                                        "message": "only people may do this step"})
                    actor = rng.choice(HUMANS)
                if tier == 1 and rng.random() < 0.06:
                    add("timer_fired", "system:tiergate", step.id, {"timer": f"{step.id}-sla"})
                    add("escalated", "system:tiergate", step.id, {"to": "support-lead", "timer": f"{step.id}-sla"})
                failure_rate = 0.12 if actor.startswith("agent:") else 0.04
                while rng.random() < failure_rate:
                    add("gate_failed", actor, step.id, {"attempt": "complete", "errors": [
                        {"pointer": "/summary", "message": "'summary' is a required property"}],
                        "evidence": {"notes": "checked"}, "message": "evidence does not pass the gate"})
                    if actor.startswith("agent:") and rng.random() < 0.25:
                        actor = rng.choice(HUMANS)   # a person takes the step over
                    failure_rate /= 2
                add("step_completed", actor, step.id, {"evidence": {
                    "summary": "Overtime multiplier read from the wrong pay element",
                    "checked_at": clock[0].isoformat(), "notes": "see ticket thread"}},
                    (clock[0] - ready_at[step.id]).total_seconds())
                state[step.id] = "done"
            done += 1
            unlock()
        if all(state[s.id] in ("done", "skipped") or s.optional for s in self.steps[process]):
            add("completed", "system:tiergate")
        elif fate < 0.05:
            add("cancelled", rng.choice(HUMANS), detail={"reason": "duplicate ticket"})
        return rows


def generate(home: Path, runs: int, seed: int, now: datetime, prefix: str = "") -> Iterator[tuple[Any, ...]]:
    """Rows of ``runs`` simulated runs, started over the 60 days before ``now``, oldest first.

    Run ids are ``prefix`` and a hex number, 12 characters in all.
    """
    rng = random.Random(seed)
    tiers, expected, steps = process_specs(home)
    simulator = RunSimulator(rng, tiers, expected, steps)
    processes = list(MIX)
    weights = [MIX[p] for p in processes]
    span = timedelta(days=60).total_seconds()
    starts = sorted(rng.random() * span for _ in range(runs))
    for n, offset in enumerate(starts):
        start = now - timedelta(days=60) + timedelta(seconds=offset)
        yield from simulator.run(f"{prefix}{n:0{12 - len(prefix)}x}", rng.choices(processes, weights)[0], start)


# --- filling ---------------------------------------------------------------------------------

def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite DateTime storage format, so the engine reads these rows like its own.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def fill(database: Database, rows: Iterator[tuple[Any, ...]], batch: int = 20000) -> tuple[int, int]:
    """Bulk insert the log rows and one run row per run. Returns (runs, entries)."""
    raw = database.engine.raw_connection()
    entries = 0
    heads: dict[str, tuple[Any, ...]] = {}
    try:
        cursor = raw.cursor()
        if database.is_sqlite:
            cursor.execute("PRAGMA synchronous=OFF")
            placeholders = ", ".join("?" for _ in COLUMNS)
            insert = f"INSERT INTO log_entries ({', '.join(COLUMNS)}) VALUES ({placeholders})"
            cursor.execute("BEGIN")
            chunk: list[tuple[Any, ...]] = []
            for row in rows:
                heads[row[0]] = row
                chunk.append(row[:2] + (_sqlite_time(row[2]),) + row[3:])
                if len(chunk) >= batch:
                    cursor.executemany(insert, chunk)
                    entries += len(chunk)
                    chunk = []
            cursor.executemany(insert, chunk)
            entries += len(chunk)
            _insert_runs(cursor, heads, "?")
            cursor.execute("COMMIT")
            cursor.execute("PRAGMA synchronous=FULL")  # the connection may go back to a pool
        else:
            with cursor.copy(f"COPY log_entries ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    heads[row[0]] = row
                    copy.write_row(row)
                    entries += 1
            _insert_runs(cursor, heads, "%s")
            raw.commit()
    finally:
        raw.close()
    return len(heads), entries


def _insert_runs(cursor: Any, heads: dict[str, tuple[Any, ...]], mark: str) -> None:
    """One run row per run, from its newest entry (status from the last event)."""
    statuses = {"completed": "completed", "cancelled": "cancelled", "failed": "failed"}
    rows = []
    for run_id, last in heads.items():
        at = last[2] if mark == "%s" else _sqlite_time(last[2])
        rows.append((run_id, last[3], last[4], last[5], statuses.get(last[7], "active"), "{}", 1, "agent:bench",
                     at, at, at if last[7] in statuses else None, last[1], last[13]))
    cursor.executemany(
        "INSERT INTO runs (id, process_id, definition_version, tier, status, state, version, started_by, created_at, "
        f"updated_at, ended_at, log_seq, log_head) VALUES ({', '.join([mark] * 13)})", rows)


def analyse(database: Database) -> None:
    """Fresh planner statistics, as a database in service would have."""
    if database.is_sqlite:
        with database.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    else:
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


# --- timing ----------------------------------------------------------------------------------

def rounds(engine: Engine, repeat: int, add_entries: Callable[[int], int]) -> dict[str, Any]:
    """Time the baseline, metrics (from the summary and from the log) and gaps in rounds.

    Before each round ``add_entries(round)`` logs more runs, untimed. Each round runs all four
    back to back, so they see the same background load; the ratios are taken within each round.
    Returns the median times, the median ratios, the answers and the entries added per round.
    """
    times: dict[str, list[float]] = {"baseline": [], "metrics_new": [], "metrics": [], "from_log": [], "gaps": []}
    answers: dict[str, Any] = {}
    added: list[int] = []
    work = {"baseline": lambda: count_all(engine.db), "metrics_new": engine.metrics, "metrics": engine.metrics,
            "from_log": lambda: engine.metrics(from_log=True), "gaps": engine.gaps}
    for n in range(repeat + 1):
        added.append(add_entries(n))
        for name, func in work.items():
            began = time.perf_counter()
            answers[name] = func()
            if n:
                times[name].append(time.perf_counter() - began)
        if not answers["metrics_new"] == answers["metrics"] == answers["from_log"]:
            raise SystemExit(f"round {n}: the summary's answer differs from the one counted from the log")
    ratios = {name: statistics.median(t / b for t, b in zip(times[name], times["baseline"]))
              for name in ("metrics_new", "metrics", "from_log", "gaps")}
    return {"median_s": {name: statistics.median(values) for name, values in times.items()},
            "ratio": ratios, "answers": answers, "added": added}


def _timed(func: Callable[[], Any]) -> float:
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


def count_all(database: Database) -> int:
    with database.read() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM log_entries")).scalar_one())


def prepare(url: str | None, reuse: bool, tmp: Path) -> tuple[str, Callable[[], None]]:
    """The database URL to bench on, and how to clean it up."""
    if url is None:
        url = f"sqlite:///{tmp / 'metrics-bench.db'}"
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if path.exists() and not reuse:
            sys.exit(f"{path} exists. Give a new file, or --reuse to bench on its log as it is.")
        return url, lambda: None
    admin = sa.create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{BENCH_DB}'").first()
        if exists and not reuse:
            conn.exec_driver_sql(f"DROP DATABASE {BENCH_DB}")
        if not exists or not reuse:
            conn.exec_driver_sql(f"CREATE DATABASE {BENCH_DB}")

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        admin.dispose()

    return parsed.set(database=BENCH_DB).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="SQLite file URL (new) or PostgreSQL admin URL.")
    parser.add_argument("--runs", type=int, default=50_000, help="Runs to simulate (default 50,000: ~1M entries).")
    parser.add_argument("--repeat", type=int, default=7, help="Timed rounds (baseline, metrics, gaps).")
    parser.add_argument("--new-runs", type=int, default=50, help="Runs added to the log before each round.")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--home", type=Path, default=REPO, help="Definitions to simulate and measure with.")
    parser.add_argument("--reuse", action="store_true", help="Bench on the existing log instead of filling.")
    parser.add_argument("--keep", action="store_true", help="Keep the PostgreSQL bench database.")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)

    now = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    with tempfile.TemporaryDirectory(prefix="tiergate-bench-metrics-") as tmp:
        url, cleanup = prepare(args.database_url, args.reuse, Path(tmp))
        try:
            return _bench(url, args, now)
        finally:
            if not args.keep and not args.reuse:
                cleanup()


def _bench(url: str, args: argparse.Namespace, now: datetime) -> int:
    database = Database(url)
    if database.current_revision() != database.head_revision:
        database.upgrade()
    existing = count_all(database)
    filled_in = None
    if existing == 0:
        began = time.perf_counter()
        runs, entries = fill(database, generate(args.home, args.runs, args.seed, now))
        analyse(database)
        filled_in = time.perf_counter() - began
    elif not args.reuse:
        sys.exit(f"the database already holds {existing} log entries; bench on it with --reuse.")
    with database.read() as conn:
        runs = int(conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one())
    engine = Engine(home=args.home, database_url=url, clock=lambda: now)

    batch = secrets.token_hex(2)  # run ids of this invocation's added runs, distinct from a --reuse'd log's

    def add_entries(n: int) -> int:
        return fill(database, generate(args.home, args.new_runs, args.seed + 1 + n, now, prefix=f"{batch}{n}-"))[1]

    try:
        began = time.perf_counter()
        refolded = engine.refold_summary()
        cold_fold = time.perf_counter() - began
        cold_baseline = min(_timed(lambda: count_all(engine.db)) for _ in range(3))
        measured = rounds(engine, args.repeat, add_entries)
    finally:
        engine.close()
        database.dispose()
    median, ratio, answers = measured["median_s"], measured["ratio"], measured["answers"]
    baseline, metrics_s, gaps_s, entries = median["baseline"], median["metrics"], median["gaps"], answers["baseline"]
    figures = {
        "backend": database.url.get_backend_name(), "runs": runs, "entries": entries,
        "filled_in_s": None if filled_in is None else round(filled_in, 1),
        "cold_fold_entries": refolded, "cold_fold_s": round(cold_fold, 2),
        "cold_fold_ratio": round(cold_fold / cold_baseline, 1),
        "new_entries_per_round": round(statistics.median(measured["added"][1:])),
        "baseline_count_s": round(baseline, 4), "metrics_s": round(metrics_s, 4), "gaps_s": round(gaps_s, 4),
        "from_log_s": round(median["from_log"], 4), "from_log_ratio": round(ratio["from_log"], 1),
        "metrics_ratio": round(ratio["metrics"], 1), "gaps_ratio": round(ratio["gaps"], 1),
        "metrics_after_new_s": round(median["metrics_new"], 4), "metrics_after_new_ratio": round(ratio["metrics_new"], 1),
        "rounds": args.repeat, "runs_measured": answers["metrics"]["totals"]["runs"],
        "gaps_found": len(answers["gaps"]["gaps"]), "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{figures['backend']}: {entries:,} entries over {runs:,} runs"
              + (f" (filled in {figures['filled_in_s']} s)" if filled_in is not None else ""))
        print(f"  first fold of the whole log {cold_fold:8.2f} s    ({refolded:,} entries; "
              f"{figures['cold_fold_ratio']:.0f}x a count(*))")
        print(f"  each round adds {figures['new_entries_per_round']:,} entries; the summary's answer equals the log's")
        print(f"  baseline  SELECT count(*)  {baseline * 1000:9.1f} ms   (median of {args.repeat} rounds)")
        print(f"  metrics, new entries folded {median['metrics_new'] * 1000:8.1f} ms   "
              f"{figures['metrics_after_new_ratio']:5.1f}x baseline")
        print(f"  metrics, nothing new        {metrics_s * 1000:8.1f} ms   {figures['metrics_ratio']:5.1f}x baseline")
        print(f"  metrics --from-log         {median['from_log'] * 1000:9.1f} ms   "
              f"{figures['from_log_ratio']:5.1f}x baseline")
        print(f"  gaps                       {gaps_s * 1000:9.1f} ms   {figures['gaps_ratio']:5.1f}x baseline")
        print(f"  ({figures['runs_measured']:,} runs measured, {figures['gaps_found']} gaps found)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
