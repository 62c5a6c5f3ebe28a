"""The passes a move makes over every task of a kept workflow (the data view, the timers, the
waiting message catches, whether the run is complete for the signals it waits for) give what the
plain walks give: checked after every move of a multi-instance run against the walks written out
here, on the very workflow the engine kept (``tiergate.bpmn.kept``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from SpiffWorkflow.util.task import TaskState
from test_tier1_instances import camunda_mi, repeated
from test_tier1_signals import event, process
from tier1_helpers import chain, tier1_home, user

from tiergate.bpmn import kept, messages, persistence, signals, taskkinds
from tiergate.bpmn.definition import load_process
from tiergate.engine import Engine
from tiergate.jsonutil import to_jsonable
from tiergate.store import runs as store

#: A parallel multi-instance task, and an event subprocess a signal could start all along.
MANY = process("many", '<bpmn:startEvent id="start"/>'
               + repeated("vote", camunda_mi("voters", "voter"))
               + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "vote", "after", "end")
               + '<bpmn:subProcess id="handler" triggeredByEvent="true">'
               + event("startEvent", "h_s", attrs='isInterrupting="false"') + user("notify")
               + '<bpmn:endEvent id="h_e"/>' + chain("h_s", "notify", "h_e", prefix="h") + '</bpmn:subProcess>')


def _walked_data_view(workflow: Any) -> dict[str, Any]:
    """The data view as a plain walk: every ready (else waiting) task's data, an instance's after its activity's."""
    if workflow.is_completed():
        return to_jsonable(workflow.data or (workflow.last_task.data if workflow.last_task else {}))
    tasks = persistence.all_tasks(workflow)
    chosen = [t for t in tasks if t.state in (TaskState.READY, TaskState.ERROR) and taskkinds.element_of(t) is not None]
    if not chosen:
        chosen = [t for t in tasks if t.state == TaskState.WAITING and taskkinds.element_of(t) is not None]
    merged: dict[str, Any] = {}
    for task in chosen or [workflow.task_tree]:
        element = taskkinds.element_of(task)
        if element is not None and taskkinds.step_of(task) != element and task.parent is not None:
            merged.update(task.parent.data)
        merged.update(task.data)
    return to_jsonable(merged)


def _kept_workflow(engine: Engine, run_id: str) -> tuple[dict[str, Any], Any]:
    with engine.db.read() as conn:
        record = store.get_run(conn, run_id)
    assert record is not None
    move = record.state.get("move")
    workflow = next((wf for (stamp, _), wf in kept._kept.items() if stamp == move), None) if move else None
    assert workflow is not None
    return record.state, workflow


def test_the_passes_over_every_task_give_what_the_plain_walks_give(tmp_path: Path,
                                                                   make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(tier1_home(tmp_path / "home", {"many": MANY}))
    voters = [f"v{i}" for i in range(40)]
    definition, _ = load_process(MANY, "processes/many.bpmn", "many", schema_folder=tmp_path / "home" / "processes")
    assert definition is not None
    model = definition.model
    run = engine.start("many", {"voters": voters, "note": "start"}, actor="agent:a")
    for index in range(len(voters)):
        evidence = {"note": f"voted {index}"} if index % 3 else {"extra": index}
        engine.complete(run.id, f"vote[{index}]", evidence, actor="agent:a")
        state, workflow = _kept_workflow(engine, run.id)
        if index < len(voters) - 1:
            assert state["data"]["voter"] == voters[-1]  # the view merges the open instances' data, the last wins
        assert state["data"] == _walked_data_view(workflow)
        tasks = persistence.all_tasks(workflow)
        waiting = [t for t in tasks if t.state == TaskState.WAITING]
        assert [e["element"] for e in messages.waiting_catches(tasks, model, taskkinds.element_of)] == [
            e for t in waiting for _, e in messages.catches(t, taskkinds.element_of)]
        assert persistence.is_completed(workflow) is workflow.is_completed() is False
        assert signals.waiting(workflow, model, taskkinds.element_of) == [{"signal": "go_live", "element": "h_s"}]
        assert state["signals"] == [{"signal": "go_live", "element": "h_s"}]
    assert state["data"]["voters"] == voters and "after" in [s for s in state["steps"]]
    info = engine.complete(run.id, "after", {"note": "done"}, actor="agent:a")
    assert info.status == "completed"
    with engine.db.read() as conn:
        record = store.get_run(conn, run.id)
    assert record is not None and record.state["signals"] == [] and record.state["data"]["note"] == "done"
