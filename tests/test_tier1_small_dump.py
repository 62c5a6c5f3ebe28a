"""A small task tree with nothing to reuse is dumped in one ``json.dumps`` (``tiergate.bpmn.dumping._small_tree``).

Its text is SpiffWorkflow's whole dump, byte for byte; its parked tasks' dicts are kept as the
partial dump keeps them, so the next dump reuses them; a small tree whose text is long enough to
be stored in parts, or whose parked tasks were kept, goes the partial dump's way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowDataException
from SpiffWorkflow.util.task import TaskState
from test_tier1_fresh import SPECS

from tiergate.bpmn import dumping, persistence
from tiergate.bpmn.scripting import RestrictedScriptEngine
from tiergate.jsontext import PARTED_MIN_TEXT, Parted


def _new(name: str, data: dict[str, Any]) -> Any:
    _, spec, subprocess_specs = next(s for s in SPECS if s[0] == name)
    workflow = persistence.new_workflow(spec, subprocess_specs, RestrictedScriptEngine(now=datetime.now(UTC)))
    workflow.task_tree.data.update(data)
    persistence.advance(workflow)
    return workflow


@pytest.fixture
def small_trees(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each dump's tasks were made by ``_small_tree`` (True) or the partial dump (False)."""
    made: list[bool] = []
    small = dumping._small_tree

    def counted(*args: Any) -> Any:
        result = small(*args)
        made.append(result is not None)
        return result

    monkeypatch.setattr(dumping, "_small_tree", counted)
    return made


def _converted(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The tasks each dump converts from now on."""
    seen: list[Any] = []
    converter = dumping._converter

    def counting(registry: Any) -> Callable[[Any], Any]:
        convert = converter(registry)

        def count(task: Any) -> Any:
            seen.append(task)
            return convert(task)
        return count

    monkeypatch.setattr(dumping, "_converter", counting)
    return seen


def test_a_new_runs_tree_is_the_whole_dump_and_keeps_its_parked_tasks(
        small_trees: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    workflow = _new("linear:linear", {"ticket": "T-1"})
    first = dumping.dump(workflow)
    assert small_trees == [True] and first.text == json.dumps(persistence.dump(workflow))
    parked = [t for t in workflow.tasks.values() if t.state == TaskState.READY and t.task_spec.manual]
    assert len(parked) == 1 and set(workflow._tiergate_task_dumps) == {id(parked[0])}

    converted = _converted(monkeypatch)
    workflow.task_tree.data["ticket"] = "T-2"  # the root changes; the parked task's delta does not
    second = dumping.dump(workflow)  # the parked task was kept: the partial dump, which reuses its dict
    assert small_trees == [True, False] and parked[0] not in converted and len(converted) == len(workflow.tasks) - 1
    assert second.text == json.dumps(persistence.dump(workflow)) != first.text

    parked[0].data["note"] = "drafted"
    parked[0].run()  # the people's task done: nothing parked is left to reuse
    persistence.advance(workflow)
    converted.clear()
    third = dumping.dump(workflow)
    assert small_trees[-1] is True and len(converted) == len(workflow.tasks)
    assert third.text == json.dumps(persistence.dump(workflow))


def test_a_small_tree_with_a_long_text_is_stored_in_parts(small_trees: list[bool]) -> None:
    workflow = _new("linear:linear", {"ticket": "T-1", "notes": ["x" * 100] * (PARTED_MIN_TEXT // 50)})
    dumped = dumping.dump(workflow)
    tasks = dumped["tasks"]
    assert small_trees == [False] and isinstance(tasks, Parted) and len(tasks.text) >= PARTED_MIN_TEXT
    assert dumped.text == json.dumps(persistence.dump(workflow))


@pytest.mark.parametrize("name, spec, subprocess_specs", SPECS, ids=[name for name, _, _ in SPECS])
def test_every_process_dumps_as_spiffworkflow_after_each_move(name: str, spec: Any,
                                                              subprocess_specs: dict[str, Any]) -> None:
    workflow = persistence.new_workflow(spec, subprocess_specs, RestrictedScriptEngine())
    workflow.task_tree.data.update({"n": 7, "tenants": ["acme", "globex"], "ticket": "T-1"})
    for _ in range(12):
        try:
            persistence.advance(workflow)
        except persistence.StepFailure:
            break
        assert dumping.dump(workflow).text == json.dumps(persistence.dump(workflow))
        ready = [t for t in persistence.all_tasks(workflow) if t.state == TaskState.READY and t.task_spec.manual]
        if not ready:
            break
        try:
            ready[0].run()
        except WorkflowDataException:  # a data output the driver does not give (a data store's, MIWG C.1.1)
            break
