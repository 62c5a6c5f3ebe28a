"""Tier 1 service tasks: gated work for an agent, with an optional topic workers ask for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tier1_helpers import GATE_NOTE, ROLES, bpmn, chain, props, tier1_home, user

from tiergate.bpmn.definition import load_process
from tiergate.definitions.models import Roles
from tiergate.engine import Engine
from tiergate.errors import GateFailedError, RefusedError


def service(task_id: str, attrs: str = "", **values: object) -> str:
    return f'<bpmn:serviceTask id="{task_id}" {attrs}>{props(**values)}</bpmn:serviceTask>'


def test_a_service_task_is_a_gated_step_only_an_agent_completes(tmp_path: Path,
                                                                make_engine: Callable[..., Engine]) -> None:
    body = ('<bpmn:startEvent id="start"/>'
            + service("build", 'camunda:type="external" camunda:topic="ci-build"', gate=GATE_NOTE)
            + service("scan", gate=GATE_NOTE, topic="security-scan") + user("review") + '<bpmn:endEvent id="end"/>'
            + chain("start", "build", "scan", "review", "end"))
    engine = make_engine(tier1_home(tmp_path / "home", {"svc": bpmn("svc", body)}))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("svc", {}, actor="human:alice")
    assert [(s.id, s.actors, s.done_when) for s in run.ready_steps] == [("build", ["agent"], GATE_NOTE)]
    with pytest.raises(RefusedError) as err:
        engine.complete(run.id, "build", {"note": "built"}, actor="human:alice")
    assert err.value.reason == "actor_not_allowed"
    with pytest.raises(GateFailedError):
        engine.complete(run.id, "build", {}, actor="agent:ci")
    engine.complete(run.id, "build", {"note": "built 1.4.2"}, actor="agent:ci")
    engine.complete(run.id, "scan", {"note": "no findings"}, actor="agent:scanner")
    ready = [(e["step"], e["detail"]) for e in engine.log(run.id) if e["event"] == "step_ready"]
    assert ready == [("build", {"topic": "ci-build"}), ("scan", {"topic": "security-scan"}), ("review", {})]
    assert engine.complete(run.id, "review", {}, actor="human:alice").status == "completed"


@pytest.mark.parametrize("body, lanes", [
    (service("build", gate={"type": "object"}, actors="human"), None),
    (service("build", gate={"type": "object"}), {"human": ["build"]}),
])
def test_a_service_task_a_person_would_do_is_refused_by_check(body: str, lanes: dict[str, list[str]] | None) -> None:
    xml = bpmn("p", '<bpmn:startEvent id="start"/>' + body + '<bpmn:endEvent id="end"/>' + chain("start", "build", "end"),
               lanes=lanes)
    _, found = load_process(xml, "processes/p.bpmn", "p", roles=Roles.model_validate(yaml.safe_load(ROLES)),
                            decisions={})
    assert any(p.message.startswith("build: a service task is work for an agent") for p in found), found


def test_a_service_task_without_a_gate_is_refused_like_any_step() -> None:
    xml = bpmn("p", '<bpmn:startEvent id="start"/><bpmn:serviceTask id="build"/><bpmn:endEvent id="end"/>'
               + chain("start", "build", "end"))
    _, found = load_process(xml, "processes/p.bpmn", "p", roles=None, decisions={})
    assert any("build: serviceTask 'build' has no gate" in p.message for p in found), found
