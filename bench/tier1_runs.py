"""What a Tier 1 run costs against the same work as a Tier 2 checklist, and how a step grows.

    python bench/tier1_runs.py                          # SQLite (fresh file in a temp folder)
    python bench/tier1_runs.py --database-url postgresql+psycopg://postgres@127.0.0.1:55437/postgres
    python bench/tier1_runs.py --runs 100 --rounds 3 --items 1000 --json
    python bench/tier1_runs.py --runs-only                 # the runs alone, not the steps' growth

**Runs.** One home holds a Tier 1 process (start, one gated user task, end) and a one-step Tier 2
checklist with the same gate, start data and evidence; a routing decision sends each to its tier.
A run is ``Engine.start`` + ``Engine.complete`` of its one step, through the public API with the
database. Each round times ``--runs`` Tier 2 runs, then ``--runs`` Tier 1 runs, then Tier 1, then
Tier 2 again (ABBA, so both see the same background load); the report gives each tier's median
rate and the median of the per-round ratios of a Tier 1 run's time to a Tier 2 run's
(goal: at most 1.25), and each tier's CPU time per run in this process (``time.process_time``,
median of the batches: it moves much less with the machine's load than the rates).

**Steps as a run grows.** ``Engine.complete`` of one step (database included), median of
``--repeat``:

- *loop*: a user task in a loop (merge gateway, task, exclusive gateway back), at 10 and at
  ``--tasks`` (5,000) tasks completed in the run;
- *multi-instance*: a parallel multi-instance user task over ``--items`` (1,000) items, a step
  while all the items are open (with the same evidence every time, then with evidence of each
  step's own, which changes the activity's merged data on every step), one after 90% of them are
  done, and the same task over 10 items.

Each is given as a ratio to the loop's step at 10 completed tasks (goal: at most 3), with the median
CPU time of this process per step (``time.process_time``: the Python work, not the database server's)
and its ratio, which move far less than wall time with the machine's load.

On PostgreSQL the URL is an admin connection: the bench creates ``tiergate_bench_<random>``, runs
there and drops it. SQLite always runs; PostgreSQL runs too when ``--database-url`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

from tiergate.engine import Engine
from tiergate.store.db import Database

ACTOR = "agent:bench-bot"
FLOW, CHECK, LOOP, MANY = "bench-flow", "bench-check", "bench-loop", "bench-many"
GATE = '{"type": "object", "required": ["summary", "severity"], "properties": {"summary": {"type": "string", ' \
       '"minLength": 10}, "severity": {"enum": ["S1", "S2", "S3", "S4"]}}}'
EVIDENCE = {"summary": "Payslips show the wrong overtime rate", "severity": "S2"}
START = {"ticket_id": "T-1", "customer": "acme"}
TASKS_BEFORE_LOOP, TASKS_PER_ITERATION = 2, 3  # the root and the start event; merge, work, gateway

ROLES = "roles:\n  lead:\n    description: Owns the bench processes.\n    members: [human:alice]\n"


def _catalog() -> str:
    entries = []
    for process in (FLOW, CHECK, LOOP, MANY):
        critical = "false" if process == CHECK else "true"
        entries.append(f"  - id: {process}\n    title: Bench {process}\n    area: bench\n    owner: lead\n"
                       f"    expected_minutes: 10\n    facts: {{compliance_critical: {critical}, "
                       "touches_live_systems: false, client_data: false, structured: true}\n")
    return "processes:\n" + "".join(entries)


CHECKLIST = f"""\
id: {CHECK}
title: Bench check
owner: lead
expected_minutes: 10
steps:
  - id: triage
    title: Triage the ticket
    instructions: "Read {{{{ data.ticket_id }}}} from {{{{ data.customer }}}} and rate it."
    done_when: {GATE}
"""


def _bpmn(process: str, body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="https://tiergate.dev/bench">
  <bpmn:process id="{process}" name="Bench {process}" isExecutable="true">{body}
  </bpmn:process>
</bpmn:definitions>
"""


def _task(task_id: str, marker: str = "") -> str:
    return (f'<bpmn:userTask id="{task_id}" name="Triage the ticket">'
            f'<bpmn:documentation>Read {{{{ data.ticket_id }}}} from {{{{ data.customer }}}} and rate it.'
            f'</bpmn:documentation><bpmn:extensionElements><camunda:properties>'
            f"<camunda:property name=\"gate\" value='{GATE}'/></camunda:properties></bpmn:extensionElements>"
            f'{marker}</bpmn:userTask>')


FLOW_XML = _bpmn(FLOW, '<bpmn:startEvent id="start"/>' + _task("triage") + '<bpmn:endEvent id="end"/>'
                 '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="triage"/>'
                 '<bpmn:sequenceFlow id="f2" sourceRef="triage" targetRef="end"/>')
LOOP_XML = _bpmn(LOOP, '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="merge"/>' + _task("work")
                 + '<bpmn:exclusiveGateway id="more" default="done"/><bpmn:endEvent id="end"/>'
                 '<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="merge"/>'
                 '<bpmn:sequenceFlow id="f2" sourceRef="merge" targetRef="work"/>'
                 '<bpmn:sequenceFlow id="f3" sourceRef="work" targetRef="more"/>'
                 '<bpmn:sequenceFlow id="again" sourceRef="more" targetRef="merge">'
                 '<bpmn:conditionExpression>again</bpmn:conditionExpression></bpmn:sequenceFlow>'
                 '<bpmn:sequenceFlow id="done" sourceRef="more" targetRef="end"/>')
MANY_XML = _bpmn(MANY, '<bpmn:startEvent id="start"/>' + _task(
    "verify", '<bpmn:multiInstanceLoopCharacteristics camunda:collection="tenants" camunda:elementVariable="tenant"/>')
    + '<bpmn:endEvent id="end"/><bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="verify"/>'
    '<bpmn:sequenceFlow id="f2" sourceRef="verify" targetRef="end"/>')

ROUTING = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="bench_routing" name="Bench routing"
             namespace="urn:tiergate:bench">
  <decision id="tier_routing" name="tier_routing">
    <decisionTable id="tier_routing_table" hitPolicy="FIRST">
      <input id="col_process" label="process_id">
        <inputExpression typeRef="string"><text>process_id</text></inputExpression>
      </input>
      <output id="out_tier" name="tier" typeRef="number"/>
      <output id="out_rationale" name="rationale" typeRef="string"/>
      <rule id="checklist">
        <inputEntry><text>"{CHECK}"</text></inputEntry>
        <outputEntry><text>2</text></outputEntry>
        <outputEntry><text>"bench: the Tier 2 checklist"</text></outputEntry>
      </rule>
      <rule id="processes">
        <inputEntry><text>-</text></inputEntry>
        <outputEntry><text>1</text></outputEntry>
        <outputEntry><text>"bench: a Tier 1 process"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def write_home(root: Path) -> Path:
    files = {"tiers/roles.yaml": ROLES, "tiers/catalog.yaml": _catalog(), f"checklists/{CHECK}.yaml": CHECKLIST,
             f"processes/{FLOW}.bpmn": FLOW_XML, f"processes/{LOOP}.bpmn": LOOP_XML,
             f"processes/{MANY}.bpmn": MANY_XML, "decisions/tier_routing.dmn": ROUTING}
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


#: CPU milliseconds (this process's, ``time.process_time``) of each timed step, median per point.
CPU_MS: dict[str, float] = {}


def timed(repeat: int, step: Callable[[], None], name: str = "") -> float:
    """Median milliseconds of ``repeat`` calls (their median CPU milliseconds go to ``CPU_MS[name]``)."""
    samples, cpu = [], []
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        step()
        samples.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    if name:
        CPU_MS[name] = statistics.median(cpu) * 1000
    return statistics.median(samples) * 1000


# --- runs: Tier 1 against Tier 2 -----------------------------------------------------------------

def one_run(engine: Engine, process: str, step: str) -> None:
    run = engine.start(process, START, actor=ACTOR)
    info = engine.complete(run.id, step, EVIDENCE, actor=ACTOR)
    assert info.status == "completed", info.status


def compare_runs(engine: Engine, runs: int, rounds: int) -> dict[str, Any]:
    cpu: dict[str, list[float]] = {FLOW: [], CHECK: []}

    def batch(process: str, step: str) -> float:
        began, began_cpu = time.perf_counter(), time.process_time()
        for _ in range(runs):
            one_run(engine, process, step)
        cpu[process].append((time.process_time() - began_cpu) / runs)
        return (time.perf_counter() - began) / runs

    for _ in range(max(5, runs // 10)):  # untimed: caches, parsed definitions, connections
        one_run(engine, CHECK, "triage")
        one_run(engine, FLOW, "triage")
    tier1, tier2, ratios = [], [], []
    for _ in range(rounds):
        a2 = batch(CHECK, "triage")
        a1 = batch(FLOW, "triage")
        b1 = batch(FLOW, "triage")
        b2 = batch(CHECK, "triage")
        tier1 += [a1, b1]
        tier2 += [a2, b2]
        ratios.append((a1 + b1) / (a2 + b2))
    return {"tier1_runs_per_s": 1 / statistics.median(tier1), "tier2_runs_per_s": 1 / statistics.median(tier2),
            "tier1_over_tier2": statistics.median(ratios),
            "tier1_cpu_ms": statistics.median(cpu[FLOW]) * 1000, "tier2_cpu_ms": statistics.median(cpu[CHECK]) * 1000}


# --- steps as a run grows -------------------------------------------------------------------------

def growth(engine: Engine, tasks: int, items: int, repeat: int) -> dict[str, float]:
    out: dict[str, float] = {}
    run = engine.start(LOOP, {**START, "again": True}, actor=ACTOR)
    evidence = {**EVIDENCE, "again": True}
    done = 0

    def loop_step() -> None:
        nonlocal done
        engine.complete(run.id, "work", evidence, actor=ACTOR)
        done += 1

    for point in (10, tasks):
        target = max(0, (point - TASKS_BEFORE_LOOP) // TASKS_PER_ITERATION)
        while done < target:
            loop_step()
        out[f"loop at {point} tasks"] = timed(repeat, loop_step, f"loop at {point} tasks")

    for count in (10, items):
        tenants = [f"tenant-{i}" for i in range(count)]
        run_many = engine.start(MANY, {**START, "tenants": tenants}, actor=ACTOR)
        index = 0

        def many_step() -> None:
            nonlocal index
            engine.complete(run_many.id, f"verify[{index}]", EVIDENCE, actor=ACTOR)
            index += 1

        if count == 10:
            out["multi-instance, 10 items"] = timed(min(repeat, 9), many_step, "multi-instance, 10 items")
            continue
        out[f"multi-instance, {count} items open"] = timed(repeat, many_step, f"multi-instance, {count} items open")

        def own_step() -> None:  # evidence of its own: the activity's merged data changes every step
            nonlocal index
            evidence = {**EVIDENCE, "summary": f"{tenants[index]}: payslips show the wrong overtime rate"}
            engine.complete(run_many.id, f"verify[{index}]", evidence, actor=ACTOR)
            index += 1

        name = f"multi-instance, {count} items open, own evidence"
        out[name] = timed(repeat, own_step, name)
        while index < count * 9 // 10:
            many_step()
        out[f"multi-instance, {count} items, 90% done"] = timed(min(repeat, count - index - 1), many_step,
                                                             f"multi-instance, {count} items, 90% done")
    return out


# --- databases ------------------------------------------------------------------------------------

def postgres_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    name = f"tiergate_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def measure(backend: str, url: str, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    database = Database(url)
    database.upgrade()
    database.dispose()
    engine = Engine(home=home, database_url=url)
    try:
        result: dict[str, Any] = {"backend": backend, **compare_runs(engine, args.runs, args.rounds)}
        if not args.runs_only:
            steps = growth(engine, args.tasks, args.items, args.repeat)
            base = steps[next(iter(steps))]
            result["steps_ms"] = steps
            result["steps_ratio"] = {name: value / base for name, value in steps.items()}
            result["steps_cpu_ms"] = {name: CPU_MS[name] for name in steps}
            result["steps_cpu_ratio"] = {name: CPU_MS[name] / CPU_MS[next(iter(steps))] for name in steps}
    finally:
        engine.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL admin URL: also measure there, in a database made for the bench")
    parser.add_argument("--runs", type=int, default=100, help="runs of each tier per batch (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="ABBA rounds (default 3)")
    parser.add_argument("--tasks", type=int, default=5000, help="completed tasks of the loop's far point")
    parser.add_argument("--items", type=int, default=1000, help="items of the large multi-instance task")
    parser.add_argument("--repeat", type=int, default=15, help="steps timed at each point (default 15)")
    parser.add_argument("--runs-only", action="store_true", help="measure the runs only, not the steps' growth")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tiergate-bench-tier1-runs-"))
    home = write_home(folder / "home")
    results = [measure("SQLite", f"sqlite:///{folder / 'bench.db'}", home, args)]
    if args.database_url:
        url, drop = postgres_database(args.database_url)
        try:
            results.append(measure("PostgreSQL", url, home, args))
        finally:
            drop()
    meta = {"python": platform.python_version(), "machine": platform.machine(), "runs": args.runs,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "rounds": args.rounds, "repeat": args.repeat, "when": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return
    print(f"Tier 1 against Tier 2, Python {meta['python']} on {meta['machine']}, load average {meta['load_average']}")
    print(f"{'database':<11} {'Tier 1 runs/s':>14} {'Tier 2 runs/s':>14} {'Tier 1 / Tier 2 (goal <= 1.25)':>31} "
          f"{'CPU ms/run T1':>14} {'T2':>6}")
    for result in results:
        print(f"{result['backend']:<11} {result['tier1_runs_per_s']:>14.1f} {result['tier2_runs_per_s']:>14.1f} "
              f"{result['tier1_over_tier2']:>31.2f} {result['tier1_cpu_ms']:>14.2f} {result['tier2_cpu_ms']:>6.2f}")
    if args.runs_only:
        return
    print(f"\nEngine.complete of one step (median of {args.repeat}), ratio to the loop at 10 tasks (goal <= 3);"
          " then its CPU time in this process, and that ratio")
    for result in results:
        for name, value in result["steps_ms"].items():
            print(f"{result['backend']:<11} {name:<40} {value:>9.2f} ms {result['steps_ratio'][name]:>6.2f}"
                  f" {result['steps_cpu_ms'][name]:>9.2f} ms CPU {result['steps_cpu_ratio'][name]:>6.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
