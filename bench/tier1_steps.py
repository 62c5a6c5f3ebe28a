"""Tier 1 step cost as a run's history grows: tiergate's runner against plain SpiffWorkflow.

    python bench/tier1_steps.py                    # 10, 1,000 and 5,000 completed tasks
    python bench/tier1_steps.py --points 10 1000 5000 --repeat 30 --json
    python bench/tier1_steps.py --engine           # also Engine.complete on a fresh SQLite file
    python bench/tier1_steps.py --engine --database-url postgresql+psycopg://postgres@HOST:PORT/EMPTY_DB

The process is a loop: a user task, an exclusive gateway that goes back through a merge
gateway. Every iteration completes three tasks (merge, work, gateway); "completed tasks" is the
number of tasks SpiffWorkflow has completed in the run when the step is measured.

One **step** is what a Tier 1 completion costs besides the database: restore the run from its
stored JSON, complete the ready user task, run the engine to the next user task, and turn the
new state back into JSON.

- **tiergate**: ``BpmnRunner.complete_step`` on the state as the database holds it (spec left
  out, finished tasks pruned after every engine pass), plus ``json.loads``/``json.dumps``.
- **plain SpiffWorkflow (baseline)**: ``BpmnWorkflowSerializer.deserialize_json``, the ready
  task's ``run()``, engine steps, ``serialize_json``: the whole state with the spec, every
  completed task kept. Its engine steps scan the task dictionary instead of calling
  ``do_engine_steps()``, whose depth-limited tree walk stops finding tasks after ~250
  iterations: without that change the baseline could not reach 1,000 tasks at all.
- **Engine.complete** (``--engine``): the whole public API call on SQLite, database included.

For each point the run is brought to that many completed tasks (untimed), then ``--repeat``
steps are timed one by one; the median is reported, with its ratio to the first point.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.util.task import TaskState

from tiergate.actors import Actor
from tiergate.bpmn.definition import BpmnDefinition
from tiergate.runners.base import RunContext
from tiergate.runners.bpmn import BpmnRunner

PROCESS = "bench-loop"
XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="https://tiergate.dev/bench">
  <bpmn:process id="{PROCESS}" name="Bench loop" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:exclusiveGateway id="merge"/>
    <bpmn:userTask id="work" name="Work">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="gate" value='{{"type": "object", "required": ["again"]}}'/>
      </camunda:properties></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="more" default="done"/>
    <bpmn:endEvent id="end"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="merge"/>
    <bpmn:sequenceFlow id="f2" sourceRef="merge" targetRef="work"/>
    <bpmn:sequenceFlow id="f3" sourceRef="work" targetRef="more"/>
    <bpmn:sequenceFlow id="again" sourceRef="more" targetRef="merge">
      <bpmn:conditionExpression>again</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="done" sourceRef="more" targetRef="end"/>
  </bpmn:process>
</bpmn:definitions>
"""
EVIDENCE = {"again": True, "note": "one more round"}
TASKS_BEFORE_LOOP = 2  # the root Start task and the start event
TASKS_PER_ITERATION = 3  # merge, work, more


def iterations_for(tasks: int) -> int:
    return max(0, (tasks - TASKS_BEFORE_LOOP) // TASKS_PER_ITERATION)


def timed(repeat: int, step: Callable[[], None]) -> float:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        step()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples) * 1000


class Tiergate:
    def __init__(self) -> None:
        self.definition = BpmnDefinition(process_id=PROCESS, xml=XML, source=f"processes/{PROCESS}.bpmn")
        self.runner = BpmnRunner()
        self.ctx = RunContext(run_id="bench", actor=Actor("agent", "bench-bot"), now=datetime.now(timezone.utc))
        self.stored = json.dumps(self.runner.start(self.definition, {}, self.ctx).state)
        self.iterations = 0

    def step(self) -> None:
        state = json.loads(self.stored)
        transition = self.runner.complete_step(self.definition, state, "work", EVIDENCE, self.ctx)
        self.stored = json.dumps(transition.state)
        self.iterations += 1

    def state_bytes(self) -> int:
        return len(self.stored)


class PlainSpiff:
    def __init__(self) -> None:
        definition = BpmnDefinition(process_id=PROCESS, xml=XML, source=f"processes/{PROCESS}.bpmn")
        spec, subprocess_specs = definition.specs
        self.serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(CAMUNDA_CONFIG))
        # SpiffWorkflow's own engine: plain BpmnWorkflow, the baseline a naive integration would use.
        workflow = BpmnWorkflow(spec, subprocess_specs)
        self._engine_steps(workflow)
        self.stored = self.serializer.serialize_json(workflow)
        self.workflow = workflow
        self.iterations = 0

    @staticmethod
    def _engine_steps(workflow: BpmnWorkflow) -> None:
        while True:
            ready = [t for t in workflow.tasks.values() if t.state == TaskState.READY and not t.task_spec.manual]
            if not ready:
                return
            for task in ready:
                task.run()

    def advance(self) -> None:
        """One iteration without serializing (to reach a point quickly)."""
        task = next(t for t in self.workflow.tasks.values() if t.state == TaskState.READY and t.task_spec.manual)
        task.data.update(EVIDENCE)
        task.run()
        self._engine_steps(self.workflow)
        self.iterations += 1

    def step(self) -> None:
        workflow = self.serializer.deserialize_json(self.stored)
        task = next(t for t in workflow.tasks.values() if t.state == TaskState.READY and t.task_spec.manual)
        task.data.update(EVIDENCE)
        task.run()
        self._engine_steps(workflow)
        self.stored = self.serializer.serialize_json(workflow)
        self.workflow = workflow
        self.iterations += 1

    def state_bytes(self) -> int:
        return len(self.stored)

    def completed(self) -> int:
        return sum(1 for t in self.workflow.tasks.values() if t.state == TaskState.COMPLETED)


def engine_points(points: list[int], repeat: int, database_url: str | None) -> dict[int, float]:
    from tiergate.engine import Engine
    from tiergate.store.db import Database

    folder = Path(tempfile.mkdtemp(prefix="tiergate-bench-tier1-"))
    (folder / "processes").mkdir()
    (folder / "processes" / f"{PROCESS}.bpmn").write_text(XML)
    (folder / "tiers").mkdir()
    (folder / "tiers" / "roles.yaml").write_text("roles:\n  lead:\n    members: [human:alice]\n")
    (folder / "tiers" / "catalog.yaml").write_text(
        f"processes:\n  - id: {PROCESS}\n    title: Bench loop\n    area: bench\n    owner: lead\n"
        "    expected_minutes: 1\n    facts: {compliance_critical: true, touches_live_systems: false, "
        "client_data: false, structured: true}\n")
    (folder / "decisions").mkdir()
    repo = Path(__file__).resolve().parents[1]
    (folder / "decisions" / "tier_routing.dmn").write_bytes((repo / "decisions" / "tier_routing.dmn").read_bytes())
    url = database_url or f"sqlite:///{folder / 'bench.db'}"
    if database_url:
        database = Database(url)
        database.upgrade()
        database.dispose()
    engine = Engine(home=folder, database_url=url)
    run = engine.start(PROCESS, {}, actor="agent:bench-bot")
    done = 0
    out = {}
    for point in points:
        target = iterations_for(point)
        while done < target:
            engine.complete(run.id, "work", EVIDENCE, actor="agent:bench-bot")
            done += 1

        def step() -> None:
            nonlocal done
            engine.complete(run.id, "work", EVIDENCE, actor="agent:bench-bot")
            done += 1

        out[point] = timed(repeat, step)
    engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, nargs="+", default=[10, 1000, 5000],
                        help="completed tasks at which a step is measured (default: 10 1000 5000)")
    parser.add_argument("--repeat", type=int, default=25, help="steps timed at each point (default 25)")
    parser.add_argument("--engine", action="store_true", help="also time Engine.complete on a fresh SQLite file")
    parser.add_argument("--database-url", default=None,
                        help="with --engine: this database instead (migrated first; e.g. an empty PostgreSQL one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    points = sorted(args.points)

    for warm in (Tiergate(), PlainSpiff()):  # untimed: imports, parsing, caches
        for _ in range(5):
            warm.step()
    ours, plain = Tiergate(), PlainSpiff()
    rows: list[dict[str, Any]] = []
    for point in points:
        target = iterations_for(point)
        while ours.iterations < target:
            ours.step()
        while plain.iterations < target:
            plain.advance()
        plain.stored = plain.serializer.serialize_json(plain.workflow)
        completed = plain.completed()
        row = {"completed_tasks": completed, "tiergate_ms": timed(args.repeat, ours.step),
               "tiergate_state_bytes": ours.state_bytes(), "spiff_ms": timed(args.repeat, plain.step),
               "spiff_state_bytes": plain.state_bytes()}
        rows.append(row)
    if args.engine:
        for row, value in zip(rows, engine_points(points, args.repeat, args.database_url).values()):
            row["engine_ms"] = value
    base = rows[0]
    for row in rows:
        row["tiergate_ratio"] = row["tiergate_ms"] / base["tiergate_ms"]
        row["spiff_ratio"] = row["spiff_ms"] / base["spiff_ms"]
        if "engine_ms" in row:
            row["engine_ratio"] = row["engine_ms"] / base["engine_ms"]
    meta = {"python": platform.python_version(), "machine": platform.machine(), "repeat": args.repeat,
            "when": datetime.now(timezone.utc).strftime("%Y-%m-%d")}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(f"Tier 1 step cost (median of {args.repeat}), Python {meta['python']} on {meta['machine']}")
    header = f"{'completed tasks':>16} {'tiergate ms':>12} {'ratio':>6} {'state B':>8}   " \
             f"{'plain Spiff ms':>14} {'ratio':>6} {'state B':>9}"
    if args.engine:
        header += f"   {'Engine.complete ms':>18} {'ratio':>6}"
    print(header)
    for row in rows:
        line = (f"{row['completed_tasks']:>16} {row['tiergate_ms']:>12.2f} {row['tiergate_ratio']:>6.2f} "
                f"{row['tiergate_state_bytes']:>8}   {row['spiff_ms']:>14.2f} {row['spiff_ratio']:>6.2f} "
                f"{row['spiff_state_bytes']:>9}")
        if args.engine:
            line += f"   {row['engine_ms']:>18.2f} {row['engine_ratio']:>6.2f}"
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
