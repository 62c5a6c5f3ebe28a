"""``tiergate.bpmn.taskdict`` makes each task's dict exactly as SpiffWorkflow's serializer does,
and a dump made with it (``tiergate.bpmn.dumping``) is SpiffWorkflow's whole dump, byte for byte.

Every process of the corpus of ``tests/test_tier1_fresh.py`` is built, run on with data, and moved
step by step (the first ready person's task completed with evidence each time); at every move each
task's dict is compared with ``registry.convert(task)``, and the move's dump with ``json.dumps`` of
``persistence.dump``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import pytest
from SpiffWorkflow.bpmn.serializer.config import DEFAULT_CONFIG
from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from test_tier1_fresh import DATA, SPECS

from tiergate.bpmn import dumping, persistence, taskdict
from tiergate.bpmn.scripting import RestrictedScriptEngine, RestrictedWorkflow

REGISTRY = persistence.REGISTRY


def _compare(workflow: RestrictedWorkflow) -> int:
    """Compare every task's dict and the whole dump; the number of tasks compared."""
    convert = taskdict.converter(REGISTRY)
    compared = 0
    for owner in (workflow, *workflow.subprocesses.values()):
        for task in owner.tasks.values():
            ours, theirs = convert(task), REGISTRY.convert(task)
            assert ours == theirs and list(ours) == list(theirs)
            assert json.dumps(ours) == json.dumps(theirs) == taskdict.text(ours) == taskdict.text(ours, task)
            compared += 1
    dumped = dumping.dump(workflow)
    assert dumped.text == json.dumps(persistence.dump(workflow)) == json.dumps(dict(dumped))
    return compared


@pytest.mark.parametrize("name, spec, subprocess_specs", SPECS, ids=[name for name, _, _ in SPECS])
def test_each_tasks_dict_and_each_dump_are_spiffworkflows(name: str, spec: Any,
                                                          subprocess_specs: dict[str, Any]) -> None:
    workflow = RestrictedWorkflow(spec, subprocess_specs, script_engine=RestrictedScriptEngine())
    compared = _compare(workflow)
    workflow.task_tree.data.update(json.loads(json.dumps(DATA)))
    for move in range(8):
        try:
            persistence.advance(workflow)
        except persistence.StepFailure:
            compared += _compare(workflow)
            break
        compared += _compare(workflow)
        ready = [t for t in persistence.all_tasks(workflow) if t.state == TaskState.READY and t.task_spec.manual]
        if not ready:
            break
        ready[0].data.update({"note": f"move {move}", "n": move, "checks": {"a": [1, 2]}})
        ready[0].data.pop("ticket", None)  # a deletion in the delta against its parent
        try:
            ready[0].run()
        except Exception:  # noqa: BLE001 - a hook that fails: the tree is compared as it is
            compared += _compare(workflow)
            break
    assert compared > 0


def test_a_registry_that_converts_tasks_otherwise_keeps_its_own_converter() -> None:
    class Marked(TaskConverter):
        def to_dict(self, task: Task) -> dict[str, Any]:
            return {**super().to_dict(task), "marked": True}

    config = {**DEFAULT_CONFIG, Task: Marked}
    registry = BpmnWorkflowSerializer.configure(config)
    assert taskdict.converter(registry) == registry.convert
    assert taskdict.converter(REGISTRY) != REGISTRY.convert  # SpiffWorkflow's own: made directly


class _Parent:
    """Something with children's ids, as ``taskdict._children_text`` reads a task."""

    def __init__(self, children: list[UUID]):
        self._children = children


def test_a_parents_children_text_follows_each_kind_of_change() -> None:
    ids = [uuid4() for _ in range(40)]
    parent = _Parent(list(ids))
    changes: list[Callable[[list[UUID]], list[UUID]]] = [
        lambda c: c[1:],  # the first removed (an instance completed)
        lambda c: c[:7] + c[8:],  # one in the middle
        lambda c: c[:-1],  # the last
        lambda c: c + [uuid4(), uuid4()],  # new ones at the end
        lambda c: [uuid4()] + c,  # one at the start
        lambda c: c[:3] + [uuid4()] + c[4:],  # one replaced
        lambda c: c[:5] + [c[5], c[5]] + c[6:],  # an id twice
        lambda c: list(reversed(c)),
        lambda c: [UUID(str(x)) for x in c],  # equal ids, other objects
        lambda c: c[:2],
        lambda c: [c[0], c[0]],
        lambda c: c[:1],  # what is shared at the start and at the end overlaps
        lambda c: [],
        lambda c: ids[:20],
    ]
    for change in changes:
        parent._children = change(parent._children)
        assert taskdict._children_text(parent) == [str(x) for x in parent._children]  # type: ignore[arg-type]


class _Text(str):
    pass


@pytest.mark.parametrize("strings", [
    [f"tenant-{i}" for i in range(20)], ['say "hi"'] * 20, ["back\\slash"] * 20, ["caf\u00e9"] * 20,
    ["\x7f"] * 20, ["\x01"] * 20, ["\n"] * 20, [_Text("sub")] * 20, ['", "'] * 20, [""] * 20,
    ["a"] * 19 + [None], ["a"] * 19 + [1], [1.5] * 20, [["a"]] * 20, [],
])
def test_a_tasks_text_is_json_dumps_with_long_lists_of_strings_joined(strings: list[Any]) -> None:
    dct = {"id": "x", "children": strings, "internal_data": {"merged": strings, "n": 1},
           "data": {"list": strings}, "delta": {}}
    assert taskdict.text(dct) == json.dumps(dct)
    assert taskdict._internal(dct["internal_data"], REGISTRY) == REGISTRY.convert(dct["internal_data"])
