"""A Tier 1 run's state does not grow with its history: loops, parallel joins, subprocesses, timers.

Sizes are measured, not timed: the stored state after many iterations must be the size it was
after a few. bench/tier1_steps.py measures what that does to the cost of a step.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from tier1_helpers import bpmn, chain, flow, tier1_home, user
from tiergate.actors import Actor
from tiergate.bpmn.definition import BpmnDefinition
from tiergate.engine import Engine
from tiergate.runners.base import RunContext
from tiergate.runners.bpmn import BpmnRunner

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)

LOOP = bpmn("loop", (
    '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="merge"/>' + user("work")
    + '<bpmn:exclusiveGateway id="more" default="f_done"/><bpmn:endEvent id="end"/>'
    + chain("start", "merge", "work", "more") + flow("f_again", "more", "merge", "again", deviation=True)
    + flow("f_done", "more", "end")))

PARALLEL_LOOP = bpmn("ploop", (
    '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="merge"/><bpmn:parallelGateway id="split"/>'
    '<bpmn:parallelGateway id="join"/>' + user("left") + user("right")
    + '<bpmn:scriptTask id="tally"><bpmn:script>rounds = rounds + 1</bpmn:script></bpmn:scriptTask>'
    + '<bpmn:subProcess id="sub"><bpmn:startEvent id="s_start"/>' + user("inside")
    + '<bpmn:endEvent id="s_end"/>' + chain("s_start", "inside", "s_end", prefix="s") + '</bpmn:subProcess>'
    + '<bpmn:exclusiveGateway id="more" default="f_done"/><bpmn:endEvent id="end"/>'
    + chain("start", "merge", "split") + flow("f_l", "split", "left") + flow("f_r", "split", "right")
    + flow("f_t", "split", "tally") + flow("f_lj", "left", "join") + flow("f_rj", "right", "join")
    + flow("f_tj", "tally", "join") + chain("join", "sub", "more")
    + flow("f_again", "more", "merge", "again", deviation=True) + flow("f_done", "more", "end")))

TIMER_LOOP = bpmn("tloop", (
    '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="merge"/>' + user("review")
    + '<bpmn:boundaryEvent id="nudge" attachedToRef="review" cancelActivity="false"><bpmn:timerEventDefinition>'
      '<bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
    + '<bpmn:boundaryEvent id="late" attachedToRef="review"><bpmn:timerEventDefinition>'
      '<bpmn:timeDuration>P2D</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
    + '<bpmn:scriptTask id="remind"><bpmn:script>reminders = reminders + 1</bpmn:script></bpmn:scriptTask>'
    + '<bpmn:endEvent id="reminded"/>' + user("escalate")
    + '<bpmn:exclusiveGateway id="more" default="f_done"/><bpmn:endEvent id="end"/>'
    + chain("start", "merge", "review", "more") + chain("nudge", "remind", "reminded", prefix="n")
    + flow("f_late", "late", "escalate", deviation=True) + flow("f_esc", "escalate", "more")
    + flow("f_again", "more", "merge", "again", deviation=True) + flow("f_done", "more", "end")))

SCRIPT_LOOP = bpmn("sloop", (
    '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="merge"/>'
    '<bpmn:scriptTask id="count"><bpmn:script>n = n + 1\ntotal = total + n</bpmn:script></bpmn:scriptTask>'
    '<bpmn:exclusiveGateway id="more" default="f_done"/>' + user("report")
    + '<bpmn:endEvent id="end"/>' + chain("start", "merge", "count", "more")
    + flow("f_again", "more", "merge", "n < limit") + flow("f_done", "more", "report") + chain("report", "end")))


class Driver:
    """Runs a process with the runner alone, the state through JSON between steps as the database does."""

    def __init__(self, xml: str, process_id: str, data: dict[str, Any]):
        self.definition = BpmnDefinition(process_id=process_id, xml=xml, source=f"processes/{process_id}.bpmn")
        self.runner = BpmnRunner()
        self.now = T0
        self.status = "active"
        self.events: list[Any] = []
        self.state = self._through_json(self.runner.start(self.definition, data, self._ctx()))

    def _ctx(self) -> RunContext:
        return RunContext(run_id="run", actor=Actor("agent", "a"), now=self.now)

    def _through_json(self, transition: Any) -> dict[str, Any]:
        self.status = transition.status.value
        self.events.extend(transition.events)
        return json.loads(json.dumps(transition.state))

    def ready(self) -> list[str]:
        return sorted(s for s, r in self.state["steps"].items() if r["status"] == "ready")

    def complete(self, step: str, evidence: dict[str, Any]) -> None:
        self.now += timedelta(minutes=1)
        self.state = self._through_json(self.runner.complete_step(self.definition, self.state, step, evidence,
                                                                  self._ctx()))

    def tick(self, delta: timedelta) -> None:
        self.now += delta
        self.state = self._through_json(self.runner.fire_timers(self.definition, self.state, self._ctx()))

    @property
    def size(self) -> int:
        return len(json.dumps(self.state["workflow"]))

    @property
    def tasks(self) -> int:
        workflow = self.state["workflow"]
        return len(workflow["tasks"]) + sum(len(s["tasks"]) for s in workflow["subprocesses"].values())


def test_plain_spiffworkflow_silently_stops_a_long_loop() -> None:
    """The pitfall, measured: without pruning, a loop past ~250 iterations loses its ready task."""
    definition = BpmnDefinition(process_id="loop", xml=LOOP, source="processes/loop.bpmn")
    spec, subprocess_specs = definition.specs
    workflow = BpmnWorkflow(spec, subprocess_specs)
    workflow.do_engine_steps()
    iterations = 0
    while iterations < 400:
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if not ready:
            break
        ready[0].data["again"] = True
        ready[0].run()
        workflow.do_engine_steps()
        iterations += 1
    assert iterations < 400 and workflow.is_completed()  # "completed" while a task is still ready
    assert any(t.state == TaskState.READY for t in workflow.tasks.values())


def test_two_thousand_iterations_run_to_the_end_with_a_state_that_does_not_grow() -> None:
    run = Driver(LOOP, "loop", {})
    sizes = {}
    for i in range(1, 2001):
        assert run.ready() == ["work"], i
        run.complete("work", {"again": i < 2000, "iteration": i % 7})
        if i in (10, 1000, 2000):
            sizes[i] = (run.size, run.tasks)
    assert run.status == "completed"
    # Same tasks; the bytes differ only by the digits of timestamps.
    assert sizes[1000][1] == sizes[10][1] and abs(sizes[1000][0] - sizes[10][0]) < 40 and run.tasks < 20
    off_path = [e for e in run.events if e.event == "step_ready" and e.detail.get("off_path")]
    assert len(off_path) == 1999 and {e.detail["flow"] for e in off_path} == {"f_again"}


def test_parallel_joins_subprocesses_and_scripts_in_a_loop_stay_bounded() -> None:
    run = Driver(PARALLEL_LOOP, "ploop", {"rounds": 0})
    sizes = {}
    for i in range(1, 301):
        assert run.ready() == ["left", "right"], i
        run.complete("right", {"r": i % 3})
        assert run.ready() == ["left"]
        run.complete("left", {"l": i % 3})
        assert run.ready() == ["inside"]
        run.complete("inside", {"again": i < 300})
        if i in (10, 290):
            sizes[i] = (run.size, run.tasks)
        if i == 299:
            assert run.state["data"]["rounds"] == 299
    assert run.status == "completed" and run.state["data"]["rounds"] == 300
    assert sizes[290][1] == sizes[10][1] and abs(sizes[290][0] - sizes[10][0]) < 40  # the counter's digits


def test_boundary_timers_in_a_loop_stay_bounded() -> None:
    run = Driver(TIMER_LOOP, "tloop", {"reminders": 0})
    sizes = {}
    for i in range(1, 201):
        assert run.ready() == ["review"]
        run.tick(timedelta(hours=2))  # the non-interrupting reminder fires every round
        assert run.ready() == ["review"]
        if i % 50 == 0:  # now and then the interrupting timer takes the task away
            run.tick(timedelta(days=3))
            assert run.ready() == ["escalate"]
            run.complete("escalate", {"again": i < 200})
        else:
            run.complete("review", {"again": i < 200})
        if i in (10, 190):
            sizes[i] = (run.size, run.tasks)
    # Each reminder path copied the data when its timer fired: reminders counts only that firing.
    assert run.status == "completed" and run.state["data"]["reminders"] == 0
    assert sizes[190][1] == sizes[10][1] and abs(sizes[190][0] - sizes[10][0]) < 40
    fired = [e for e in run.events if e.event == "timer_fired"]
    assert len(fired) == 204 and {e.detail["timer"] for e in fired} == {"nudge", "late"}


def test_an_automatic_loop_of_thousands_runs_in_one_step() -> None:
    run = Driver(SCRIPT_LOOP, "sloop", {"n": 0, "total": 0, "limit": 5000})
    assert run.ready() == ["report"]
    assert run.state["data"]["n"] == 5000 and run.state["data"]["total"] == 5000 * 5001 // 2
    assert run.tasks < 20


def test_an_endless_automatic_loop_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiergate.bpmn import persistence

    monkeypatch.setattr(persistence, "MAX_PASSES", 500)
    monkeypatch.setattr(persistence.advance, "__defaults__", (None, 500))
    run = Driver(SCRIPT_LOOP, "sloop", {"n": 0, "total": 0, "limit": 10 ** 9})
    assert run.status == "failed"
    failed = [e for e in run.events if e.event == "failed"]
    assert "conditions never let it out" in failed[0].detail["error"]
    # A retry of the process element would change nothing: the hint says to cancel, and a retry is refused.
    assert failed[0].detail["retry"].startswith("the run cannot go on: cancel it")
    assert run.state["error"]["retryable"] is False


@pytest.mark.slow
def test_two_thousand_iterations_through_the_engine(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"loop": LOOP}))
    run = engine.start("loop", {}, actor="agent:a")
    sizes = {}
    for i in range(1, 2001):
        engine.complete(run.id, "work", {"again": i < 2000}, actor="agent:a")
        if i in (10, 1990):
            with engine.db.read() as conn:
                state = conn.exec_driver_sql("SELECT state FROM runs WHERE id = ?" if engine.db.is_sqlite
                                             else "SELECT state FROM runs WHERE id = %s", (run.id,)).scalar()
            sizes[i] = len(state if isinstance(state, str) else json.dumps(state))
    info = engine.status(run.id)
    assert info.status == "completed"
    assert abs(sizes[1990] - sizes[10]) < 100
    assert len([e for e in engine.log(run.id) if e["event"] == "step_completed"]) == 2000


INCLUSIVE_LOOP = bpmn("incl", (
    '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="merge"/><bpmn:inclusiveGateway id="split"/>'
    '<bpmn:inclusiveGateway id="join"/>' + user("a") + user("b") + user("c")
    + '<bpmn:exclusiveGateway id="more" default="f_done"/><bpmn:endEvent id="end"/>'
    + chain("start", "merge", "split") + flow("fa", "split", "a", "want_a") + flow("fb", "split", "b", "want_b")
    + flow("fc", "split", "c", "want_c") + flow("faj", "a", "join") + flow("fbj", "b", "join")
    + flow("fcj", "c", "join") + chain("join", "more")
    + flow("f_again", "more", "merge", "again", deviation=True) + flow("f_done", "more", "end")))

NESTED_LOOP = bpmn("nest", (
    '<bpmn:startEvent id="start"/><bpmn:exclusiveGateway id="merge"/>'
    '<bpmn:subProcess id="outer"><bpmn:startEvent id="o_s"/><bpmn:subProcess id="inner"><bpmn:startEvent id="i_s"/>'
    + user("deep") + '<bpmn:endEvent id="i_e"/>' + chain("i_s", "deep", "i_e", prefix="i") + '</bpmn:subProcess>'
    + '<bpmn:endEvent id="o_e"/>' + chain("o_s", "inner", "o_e", prefix="o") + '</bpmn:subProcess>'
    + '<bpmn:exclusiveGateway id="more" default="f_done"/><bpmn:endEvent id="end"/>'
    + chain("start", "merge", "outer", "more") + flow("f_again", "more", "merge", "again")
    + flow("f_done", "more", "end")))


def test_inclusive_joins_wait_for_the_branches_taken_round_after_round() -> None:
    run = Driver(INCLUSIVE_LOOP, "incl", {"want_a": True, "want_b": False, "want_c": True})
    sizes = {}
    for i in range(120):
        expected = ["a", "b", "c"] if run.state["data"].get("want_b") else ["a", "c"]
        assert run.ready() == expected, i
        run.complete("c", {})
        if "b" in expected:
            run.complete("b", {"want_b": False})
        assert run.ready() == ["a"], i  # the join waits for a
        run.complete("a", {"again": i < 119, "want_b": i % 2 == 0})
        if i in (10, 110):
            sizes[i] = run.tasks
    assert run.status == "completed" and sizes[110] == sizes[10]


def test_nested_subprocesses_in_a_loop_stay_bounded() -> None:
    run = Driver(NESTED_LOOP, "nest", {})
    sizes = {}
    for i in range(300):
        assert run.ready() == ["deep"], i
        run.complete("deep", {"again": i < 299})
        if i in (10, 290):
            sizes[i] = run.tasks
    assert run.status == "completed" and sizes[290] == sizes[10]
