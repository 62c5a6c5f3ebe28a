"""Tier 1 multi-instance and loop user tasks: one step per instance, ``ID[KEY]``, each with its gate and actor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import states
from tier1_helpers import GATE_NOTE, bpmn, chain, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import GateFailedError, RefusedError


def repeated(task_id: str, marker: str, **props: Any) -> str:
    """A user task with a loop or multi-instance marker (the marker's XML)."""
    return user(task_id, **props).replace("</bpmn:userTask>", marker + "</bpmn:userTask>")


def camunda_mi(collection: str, element: str, sequential: bool = False, condition: str = "") -> str:
    cond = f"<bpmn:completionCondition>{condition}</bpmn:completionCondition>" if condition else ""
    return (f'<bpmn:multiInstanceLoopCharacteristics isSequential="{str(sequential).lower()}" '
            f'camunda:collection="{collection}" camunda:elementVariable="{element}">{cond}'
            '</bpmn:multiInstanceLoopCharacteristics>')


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], process_id: str, body: str,
               lanes: dict[str, list[str]] | None = None) -> Engine:
    engine = make_engine(tier1_home(tmp_path / "home", {process_id: bpmn(process_id, body, lanes=lanes)}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    return engine


def ready(info: Any) -> list[str]:
    return [s.id for s in info.ready_steps]


def test_parallel_instances_over_a_list_each_a_step_with_its_gate_actor_and_four_eyes(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + user("prepare", "Prepare the rollout")
            + repeated("verify", camunda_mi("tenants", "tenant"), name="Verify tenant", gate=GATE_NOTE,
                       distinct_from="prepare")
            + '<bpmn:endEvent id="end"/>' + chain("start", "prepare", "verify", "end"))
    engine = engine_for(tmp_path, make_engine, "roll", body, lanes={"agent": ["prepare"], "reviewer": ["verify"]})
    run = engine.start("roll", {"tenants": ["acme", "globex", "initech"]}, actor="agent:a")
    info = engine.complete(run.id, "prepare", {}, actor="agent:reviewer-bot")
    assert ready(info) == ["verify[0]", "verify[1]", "verify[2]"]
    assert info.data["tenants"] == ["acme", "globex", "initech"]  # shown, though no instance carries a copy
    assert [s.title for s in info.ready_steps] == ["Verify tenant [acme]", "Verify tenant [globex]",
                                                   "Verify tenant [initech]"]
    assert all(s.done_when == GATE_NOTE and s.roles == ["reviewer"] for s in info.ready_steps)

    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "verify", {"note": "fine"}, actor="human:carol")
    assert err.value.reason == "unknown_step" and "name the instance, e.g. verify[0]" in err.value.message
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "verify[7]", {"note": "fine"}, actor="human:carol")
    assert err.value.reason == "not_ready"
    with pytest.raises(RefusedError) as err:  # four eyes hold for each instance
        engine.complete(run.id, "verify[1]", {"note": "fine"}, actor="agent:reviewer-bot")
    assert err.value.reason == "same_actor"
    with pytest.raises(RefusedError) as err:  # the lane's role holds for each instance
        engine.complete(run.id, "verify[1]", {"note": "fine"}, actor="human:alice")
    assert err.value.reason == "actor_not_allowed"
    with pytest.raises(GateFailedError):  # and the gate
        engine.complete(run.id, "verify[1]", {"note": "x"}, actor="human:carol")

    assert ready(engine.complete(run.id, "verify[1]", {"note": "globex ok"}, actor="human:carol")) == [
        "verify[0]", "verify[2]"]
    engine.complete(run.id, "verify[0]", {"note": "acme ok"}, actor="human:carol")
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "verify[0]", {"note": "again"}, actor="human:carol")
    assert err.value.reason == "already_done"
    done = engine.complete(run.id, "verify[2]", {"note": "initech ok"}, actor="human:carol")
    assert done.status == "completed"
    assert done.data["tenants"] == ["acme", "globex", "initech"] and "tenant" not in done.data
    assert states(engine, run.id) == {"prepare": "done", "verify[0]": "done", "verify[1]": "done",
                                      "verify[2]": "done"}
    completed = [(e["step"], e["actor"]) for e in engine.log(run.id) if e["event"] == "step_completed"]
    assert completed[1:] == [("verify[1]", "human:carol"), ("verify[0]", "human:carol"),
                             ("verify[2]", "human:carol")]


def test_sequential_instances_over_a_dict_stop_at_the_completion_condition(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>'
            + repeated("ask", camunda_mi("suppliers", "supplier", sequential=True, condition="accepted"))
            + '<bpmn:endEvent id="end"/>' + chain("start", "ask", "end"))
    engine = engine_for(tmp_path, make_engine, "quote", body)
    run = engine.start("quote", {"suppliers": {"north": "N-1", "south": "S-2", "west": "W-3"}}, actor="agent:a")
    assert ready(run) == ["ask[north]"]
    assert ready(engine.complete(run.id, "ask[north]", {"accepted": False}, actor="agent:a")) == ["ask[south]"]
    done = engine.complete(run.id, "ask[south]", {"accepted": True}, actor="agent:a")
    assert done.status == "completed" and done.data["accepted"] is True
    assert states(engine, run.id) == {"ask[north]": "done", "ask[south]": "done"}


def test_a_parallel_completion_condition_closes_the_other_instances(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>'
            + repeated("vote", camunda_mi("voters", "voter", condition="veto and len(voters) &gt; 2"))
            + user("after") + '<bpmn:endEvent id="end"/>' + chain("start", "vote", "after", "end"))
    engine = engine_for(tmp_path, make_engine, "veto", body)
    run = engine.start("veto", {"voters": ["a", "b", "c"]}, actor="agent:a")
    info = engine.complete(run.id, "vote[1]", {"veto": True}, actor="agent:a")
    assert ready(info) == ["after"]
    skipped = [(e["step"], e["detail"]["reason"]) for e in engine.log(run.id) if e["event"] == "step_skipped"]
    assert sorted(skipped) == [("vote[0]", "cancelled: the process moved on without it"),
                               ("vote[2]", "cancelled: the process moved on without it")]


def test_standard_bpmn_inputs_outputs_and_a_cardinality(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    standard = ('<bpmn:multiInstanceLoopCharacteristics isSequential="true">'
                '<bpmn:loopDataInputRef>regions</bpmn:loopDataInputRef>'
                '<bpmn:loopDataOutputRef>results</bpmn:loopDataOutputRef>'
                '<bpmn:inputDataItem id="region" name="region"/><bpmn:outputDataItem id="result" name="result"/>'
                '</bpmn:multiInstanceLoopCharacteristics>')
    counted = ('<bpmn:multiInstanceLoopCharacteristics>'
               '<bpmn:loopCardinality>len(regions)</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>')
    body = ('<bpmn:startEvent id="start"/>' + repeated("check", standard) + repeated("sign", counted)
            + '<bpmn:endEvent id="end"/>' + chain("start", "check", "sign", "end"))
    engine = engine_for(tmp_path, make_engine, "std", body)
    run = engine.start("std", {"regions": ["eu", "us"]}, actor="agent:a")
    engine.complete(run.id, "check[0]", {"result": "eu fine"}, actor="agent:a")
    info = engine.complete(run.id, "check[1]", {"result": "us fine"}, actor="agent:a")
    assert ready(info) == ["sign[0]", "sign[1]"]
    assert info.data["results"] == ["eu fine", "us fine"]
    engine.complete(run.id, "sign[0]", {}, actor="agent:a")
    assert engine.complete(run.id, "sign[1]", {}, actor="agent:a").status == "completed"


def test_a_loop_task_repeats_until_its_condition_and_each_round_is_a_step(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    loop = ('<bpmn:standardLoopCharacteristics testBefore="false">'
            '<bpmn:loopCondition>not approved</bpmn:loopCondition></bpmn:standardLoopCharacteristics>')
    body = ('<bpmn:startEvent id="start"/>' + repeated("review", loop) + '<bpmn:endEvent id="end"/>'
            + chain("start", "review", "end"))
    engine = engine_for(tmp_path, make_engine, "loop", body)
    run = engine.start("loop", {"approved": False}, actor="agent:a")
    assert ready(run) == ["review[0]"]
    assert ready(engine.complete(run.id, "review[0]", {"approved": False}, actor="agent:a")) == ["review[1]"]
    assert engine.complete(run.id, "review[1]", {"approved": True}, actor="agent:a").status == "completed"


def test_four_eyes_between_two_multi_instance_steps_pairs_the_same_instance(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>' + repeated("make", camunda_mi("items", "item"))
            + repeated("check", camunda_mi("items", "item"), distinct_from="make")
            + '<bpmn:endEvent id="end"/>' + chain("start", "make", "check", "end"))
    engine = engine_for(tmp_path, make_engine, "pair", body)
    run = engine.start("pair", {"items": ["x", "y"]}, actor="agent:a")
    engine.complete(run.id, "make[0]", {}, actor="agent:one")
    info = engine.complete(run.id, "make[1]", {}, actor="agent:two")
    assert [s.distinct_from for s in info.ready_steps] == ["make[0]", "make[1]"]
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "check[0]", {}, actor="agent:one")
    assert err.value.reason == "same_actor"
    engine.complete(run.id, "check[0]", {}, actor="agent:two")  # did make[1], not make[0]
    assert engine.complete(run.id, "check[1]", {}, actor="agent:one").status == "completed"


def test_loop_expressions_are_checked_like_any_other() -> None:
    import yaml
    from tier1_helpers import ROLES

    from tiergate.bpmn.definition import load_process
    from tiergate.definitions.models import Roles

    xml = bpmn("bad", '<bpmn:startEvent id="start"/>' + repeated("t", camunda_mi("xs", "x", condition="x.__class__"))
               + '<bpmn:endEvent id="end"/>' + chain("start", "t", "end"))
    _, found = load_process(xml, "processes/bad.bpmn", "bad", roles=Roles.model_validate(yaml.safe_load(ROLES)),
                            decisions={})
    assert any(p.message.startswith("t: completionCondition: attribute '.__class__' is not allowed")
               for p in found), found
