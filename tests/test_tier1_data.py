"""Tier 1 data objects and data inputs/outputs, as SpiffWorkflow executes them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate.engine import Engine


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], body: str) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", {"data": bpmn("data", body)}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    return engine


def test_a_data_object_is_written_by_one_task_and_read_by_another(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:dataObject id="limit" name="Approval limit"/>'
            '<bpmn:dataObjectReference id="limit_out" dataObjectRef="limit"/>'
            '<bpmn:dataObjectReference id="limit_in" dataObjectRef="limit"/>'
            '<bpmn:startEvent id="start"/>'
            '<bpmn:scriptTask id="compute"><bpmn:dataOutputAssociation id="writes">'
            '<bpmn:targetRef>limit_out</bpmn:targetRef></bpmn:dataOutputAssociation>'
            '<bpmn:script>limit = 2 * base</bpmn:script></bpmn:scriptTask>'
            + user("enter").replace("</bpmn:userTask>", '<bpmn:dataInputAssociation id="reads">'
                                    '<bpmn:sourceRef>limit_in</bpmn:sourceRef></bpmn:dataInputAssociation>'
                                    '</bpmn:userTask>')
            + '<bpmn:endEvent id="end"/>' + chain("start", "compute", "enter", "end"))
    engine = engine_for(tmp_path, make_engine, body)
    run = engine.start("data", {"base": 21}, actor="agent:a")
    assert run.data == {"base": 21, "limit": 42}  # the task that reads the data object has it
    done = engine.complete(run.id, "enter", {"amount": 40}, actor="agent:a")
    assert done.status == "completed"
    assert done.data["data_objects"] == {"limit": 42} and done.data["amount"] == 40


IO = ('<bpmn:ioSpecification id="io_{id}"><bpmn:dataInput id="base" name="base"/>'
      '<bpmn:dataOutput id="limit" name="limit"/><bpmn:inputSet id="in_{id}"><bpmn:dataInputRefs>base'
      '</bpmn:dataInputRefs></bpmn:inputSet><bpmn:outputSet id="out_{id}"><bpmn:dataOutputRefs>limit'
      '</bpmn:dataOutputRefs></bpmn:outputSet></bpmn:ioSpecification>')


def test_a_task_with_data_inputs_and_outputs_sees_its_inputs_and_passes_on_its_outputs(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/><bpmn:scriptTask id="compute">' + IO.format(id="compute")
            + '<bpmn:script>limit = 2 * base\nscratch = 1</bpmn:script></bpmn:scriptTask>'
            + user("enter") + '<bpmn:endEvent id="end"/>' + chain("start", "compute", "enter", "end"))
    engine = engine_for(tmp_path, make_engine, body)
    run = engine.start("data", {"base": 21, "other": "kept out"}, actor="agent:a")
    # SpiffWorkflow's semantics: after a task with an ioSpecification only its outputs go on.
    assert (run.status, run.data) == ("active", {"limit": 42})

    failed = engine.start("data", {"other": "no base"}, actor="agent:a")
    assert failed.status == "failed"
    entry = engine.log(failed.id)[-1]
    assert (entry["event"], entry["step"]) == ("failed", "compute") and "Missing data input" in entry["detail"]["error"]
