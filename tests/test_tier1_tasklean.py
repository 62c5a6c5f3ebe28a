"""The two tree walks ``tiergate.bpmn.tasklean`` answers from the task dictionary give SpiffWorkflow's answers.

Every process of the corpus (``test_tier1_fresh.SPECS``) is built and run to its end (people's
tasks completed as they become ready) twice: with SpiffWorkflow's own functions and with
tiergate's; the trees as stored are the same at every point. Then once more with each of
tiergate's answers checked against SpiffWorkflow's as it is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.util.task import TaskState
from test_tier1_fresh import DATA, SPECS, stored
from tier1_helpers import bpmn, chain, flow, user

from tiergate.bpmn import calls, persistence, tasklean
from tiergate.bpmn.model import read_process
from tiergate.bpmn.parser import build_specs
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow
from tiergate.bpmn.xml import parse_bpmn

#: Two paths that end apart: the end join waits for the second.
TWO_ENDS = bpmn("two_ends", '<bpmn:startEvent id="start"/><bpmn:parallelGateway id="split"/>' + user("a") + user("b")
                + '<bpmn:endEvent id="end_a"/><bpmn:endEvent id="end_b"/>' + chain("start", "split")
                + flow("fa", "split", "a") + flow("fb", "split", "b") + chain("a", "end_a") + chain("b", "end_b"))


def _inline(name: str, xml: str) -> tuple[str, Any, dict[str, Any]]:
    tree = parse_bpmn(xml.encode(), f"{name}.bpmn")
    spec, subprocess_specs = build_specs(tree, read_process(tree, name, f"{name}.bpmn"), f"{name}.bpmn",
                                         calls.called_trees({}))
    persistence.connect_join_listeners(spec)
    return name, spec, subprocess_specs


CHECKED = [*SPECS, _inline("two_ends", TWO_ENDS)]


@pytest.fixture
def spiffworkflows_own() -> Iterator[None]:
    tasklean.uninstall()
    try:
        yield
    finally:
        tasklean.install()


def _to_the_end(spec: Any, subprocess_specs: dict[str, Any], rounds: int = 40) -> list[Any]:
    """The stored tree after each move of a run that completes every people's task as it becomes ready."""
    workflow = RestrictedWorkflow(spec, subprocess_specs, script_engine=RestrictedScriptEngine())
    workflow.task_tree.data.update(DATA)
    seen = [stored(workflow)]
    for _ in range(rounds):
        try:
            persistence.advance(workflow)
        except persistence.StepFailure as failure:
            return [*seen, {"failed": str(failure)}, stored(workflow)]
        seen.append(stored(workflow))
        ready = [t for t in persistence.all_tasks(workflow) if t.state == TaskState.READY and t.task_spec.manual]
        if not ready:
            break
        try:
            ready[0].run()
        except Exception as exc:  # noqa: BLE001 - a failing completion: part of what is compared
            return [*seen, {"raised": type(exc).__name__}]
    return seen


def test_it_is_installed() -> None:
    assert CatchingEvent._run_hook is tasklean.catching_run_hook
    assert _EndJoin._check_threshold_unstructured is tasklean.end_join_may_fire


@pytest.mark.parametrize("name, spec, subprocess_specs", CHECKED, ids=[name for name, _, _ in CHECKED])
def test_runs_are_those_with_spiffworkflows_own_walks(name: str, spec: Any, subprocess_specs: dict[str, Any],
                                                      request: pytest.FixtureRequest) -> None:
    ours = _to_the_end(spec, subprocess_specs)
    request.getfixturevalue("spiffworkflows_own")
    assert _to_the_end(spec, subprocess_specs) == ours


def test_every_answer_is_spiffworkflows(monkeypatch: pytest.MonkeyPatch) -> None:
    answered = {"end join": 0, "end join waits": 0, "catch alone": 0}

    def end_join(self: Any, my_task: Any) -> bool:
        ours = tasklean.end_join_may_fire(self, my_task)
        assert ours == tasklean.ORIGINAL_END_JOIN(self, my_task)
        answered["end join"] += 1
        answered["end join waits"] += not ours
        return ours

    def catch(self: Any, my_task: Any) -> Any:
        walked = my_task.workflow.get_tasks(my_task, spec_name=self.name)
        alone = [t for t in my_task.workflow.tasks.values() if t.task_spec.name == self.name] == [my_task]
        if alone:  # what tiergate's function resets without the walk: the walk's tasks
            assert walked == [my_task]
            answered["catch alone"] += 1
        return tasklean.catching_run_hook(self, my_task)

    monkeypatch.setattr(_EndJoin, "_check_threshold_unstructured", end_join)
    monkeypatch.setattr(CatchingEvent, "_run_hook", catch)
    for _, spec, subprocess_specs in CHECKED:
        _to_the_end(spec, subprocess_specs)
    assert answered["end join"] >= 8 and answered["end join waits"] >= 1 and answered["catch alone"] >= 15, answered


def test_a_large_tree_is_walked_by_spiffworkflow(monkeypatch: pytest.MonkeyPatch) -> None:
    _, spec, subprocess_specs = next(s for s in SPECS if s[0] == "many:many")
    workflow = RestrictedWorkflow(spec, subprocess_specs, script_engine=RestrictedScriptEngine())
    workflow.task_tree.data.update({**DATA, "tenants": [f"t{i}" for i in range(tasklean.SMALL)]})
    persistence.advance(workflow)
    assert len(workflow.tasks) >= tasklean.SMALL
    walked: list[int] = []
    monkeypatch.setattr(tasklean, "ORIGINAL_END_JOIN", lambda self, task: walked.append(1) or False)
    end = next(t for t in workflow.tasks.values() if isinstance(t.task_spec, _EndJoin))
    assert tasklean.end_join_may_fire(end.task_spec, end) is False and walked == [1]
