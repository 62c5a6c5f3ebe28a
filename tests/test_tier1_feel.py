"""FEEL in Tier 1 processes as Camunda 8 (Zeebe) writes it, evaluated by tiergate's FEEL engine (real SpiffWorkflow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tier1_helpers import DMN_TESTS_EMPTY, bpmn, chain, dmn_table, flow, tier1_home, user

from tiergate.engine import Engine
from tiergate.errors import LimitExceededError

ZEEBE = 'xmlns:zeebe="http://camunda.org/schema/zeebe/1.0"'


def with_zeebe(xml: str) -> str:
    return xml.replace('id="defs"', f'{ZEEBE} id="defs"', 1)


def gateway(yes: str, no: str, language: str = "") -> str:
    lang = f' language="{language}"' if language else ""
    return ('<bpmn:startEvent id="start"/>' + user("decide") + '<bpmn:exclusiveGateway id="gw" default="f_other"/>'
            + user("accept") + user("reject") + user("other") + '<bpmn:endEvent id="end"/>'
            + chain("start", "decide", "gw")
            + f'<bpmn:sequenceFlow id="f_yes" sourceRef="gw" targetRef="accept"><bpmn:conditionExpression{lang}>'
              f'{yes}</bpmn:conditionExpression></bpmn:sequenceFlow>'
            + f'<bpmn:sequenceFlow id="f_no" sourceRef="gw" targetRef="reject"><bpmn:conditionExpression{lang}>'
              f'{no}</bpmn:conditionExpression></bpmn:sequenceFlow>'
            + flow("f_other", "gw", "other") + chain("accept", "end", prefix="a") + chain("reject", "end", prefix="r")
            + chain("other", "end", prefix="o"))


def engine_for(tmp_path: Path, make_engine: Callable[..., Engine], body: str, **kwargs: object) -> Engine:
    return make_engine(tier1_home(tmp_path / "home", {"fl": with_zeebe(bpmn("fl", body))}, **kwargs))


@pytest.mark.parametrize("yes, no, language", [
    ("= approved", "= not(approved)", ""),                              # Camunda 8's `=` form
    ("approved = true", "approved = false", "https://www.omg.org/spec/FEEL/20140401"),  # a FEEL language attribute
])
def test_feel_conditions_choose_the_path(tmp_path: Path, make_engine: Callable[..., Engine], yes: str, no: str,
                                         language: str) -> None:
    engine = engine_for(tmp_path, make_engine, gateway(yes, no, language))
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("fl", {}, actor="agent:a")
    assert [s.id for s in engine.complete(run.id, "decide", {"approved": False}, actor="agent:a").ready_steps] == \
        ["reject"]
    other = engine.start("fl", {}, actor="agent:a")
    assert [s.id for s in engine.complete(other.id, "decide", {"approved": True}, actor="agent:a").ready_steps] == \
        ["accept"]


def test_a_name_the_data_lacks_is_null_and_some_every_read_lists(tmp_path: Path,
                                                                make_engine: Callable[..., Engine]) -> None:
    body = gateway('= some risk in riskLevels satisfies risk = "red"', '= every risk in riskLevels satisfies risk = '
                   '"green"')
    engine = engine_for(tmp_path, make_engine, body)
    run = engine.start("fl", {}, actor="agent:a")  # riskLevels missing: null, neither holds, the default flow
    assert [s.id for s in engine.complete(run.id, "decide", {}, actor="agent:a").ready_steps] == ["other"]
    run = engine.start("fl", {}, actor="agent:a")
    info = engine.complete(run.id, "decide", {"riskLevels": ["green", "red"]}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["accept"]
    run = engine.start("fl", {}, actor="agent:a")
    info = engine.complete(run.id, "decide", {"riskLevels": ["green"]}, actor="agent:a")
    assert [s.id for s in info.ready_steps] == ["reject"]


def test_check_reports_a_feel_syntax_error_at_its_line(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, gateway("= some risk in", "= not(approved)"))
    [problem] = [p for p in engine.check() if p.severity == "error"]
    assert problem.line == 4 and problem.message.startswith("f_yes: condition: FEEL: FEEL syntax error")


def test_a_feel_condition_over_its_budget_refuses_the_step_and_changes_nothing(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = engine_for(tmp_path, make_engine, gateway("= count(for i in 1..2000000 return i) > 0", "= false"))
    run = engine.start("fl", {}, actor="agent:a")
    with pytest.raises(LimitExceededError) as err:
        engine.complete(run.id, "decide", {}, actor="agent:a")
    assert "FEEL limit exceeded" in err.value.message and err.value.details["element"] == "gw"
    assert [s.id for s in engine.status(run.id).ready_steps] == ["decide"]


def test_zeebe_multi_instance_collection_and_feel_completion_condition(tmp_path: Path,
                                                                       make_engine: Callable[..., Engine]) -> None:
    marker = ('<bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements><zeebe:loopCharacteristics '
              'inputCollection="=tenants" inputElement="tenant"/></bpmn:extensionElements>'
              '<bpmn:completionCondition>= failed = true</bpmn:completionCondition>'
              '</bpmn:multiInstanceLoopCharacteristics>')
    verify = user("verify").replace("</bpmn:userTask>", marker + "</bpmn:userTask>")
    body = '<bpmn:startEvent id="start"/>' + verify + '<bpmn:endEvent id="end"/>' + chain("start", "verify", "end")
    engine = engine_for(tmp_path, make_engine, body)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("fl", {"tenants": ["acme", "initech", "globex"]}, actor="agent:a")
    assert [(s.id, s.title) for s in run.ready_steps] == [
        ("verify[0]", "verify [acme]"), ("verify[1]", "verify [initech]"), ("verify[2]", "verify [globex]")]
    engine.complete(run.id, "verify[0]", {"failed": False}, actor="agent:a")
    info = engine.complete(run.id, "verify[1]", {"failed": True}, actor="agent:a")  # the condition holds
    assert info.status == "completed"
    bad = engine_for(tmp_path / "bad", make_engine, body.replace('"=tenants"', '"=tenants[1..2]"'))
    [problem] = [p for p in bad.check() if p.severity == "error"]
    assert "inputCollection=\"=tenants[1..2]\" is not the name of a field of the data" in problem.message


def test_zeebe_decision_reference_and_output_mappings(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    risk = dmn_table("risk_check", [("amount", "number")], ["riskLevel"],
                     [(["> 1000"], ['"red"']), (["-"], ['"green"'])])
    rule = ('<bpmn:businessRuleTask id="check_risk"><bpmn:extensionElements><zeebe:ioMapping>'
            '<zeebe:output source="= [result.riskLevel]" target="riskLevels"/>'
            '<zeebe:output source="= &quot;risk &quot; + result.riskLevel" target="summary.text"/>'
            '</zeebe:ioMapping><zeebe:calledDecision decisionId="risk_check" resultVariable="result"/>'
            '</bpmn:extensionElements></bpmn:businessRuleTask>')
    body = ('<bpmn:startEvent id="start"/>' + rule + user("review") + '<bpmn:endEvent id="end"/>'
            + chain("start", "check_risk", "review", "end"))
    engine = engine_for(tmp_path, make_engine, body,
                        decisions={"risk_check": (risk, DMN_TESTS_EMPTY.format(id="risk_check"))})
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("fl", {"amount": 5000}, actor="agent:a")
    assert run.data["result"] == {"riskLevel": "red"}
    assert run.data["riskLevels"] == ["red"] and run.data["summary"] == {"text": "risk red"}
    [decided] = [e for e in engine.log(run.id) if e["event"] == "decision_evaluated"]
    assert decided["step"] == "check_risk" and decided["detail"]["outputs"] == {"riskLevel": "red"}
    bad = engine_for(tmp_path / "bad", make_engine, body.replace("= [result.riskLevel]", "= [result.riskLevel"),
                     decisions={"risk_check": (risk, DMN_TESTS_EMPTY.format(id="risk_check"))})
    [problem] = [p for p in bad.check() if p.severity == "error"]
    assert problem.message.startswith("check_risk: zeebe:output source: FEEL: FEEL syntax error")


def test_a_business_rule_task_naming_no_decision_is_a_gated_step(tmp_path: Path,
                                                                 make_engine: Callable[..., Engine]) -> None:
    rule = user("apply_rule", kind="businessRuleTask", gate={"type": "object", "required": ["eligible"]})
    body = ('<bpmn:startEvent id="start"/>' + rule + '<bpmn:endEvent id="end"/>' + chain("start", "apply_rule", "end"))
    engine = engine_for(tmp_path, make_engine, body)
    problems = engine.check()
    assert [p for p in problems if p.severity == "error"] == []
    [warning] = [p for p in problems if "names no decision" in p.message]
    assert warning.severity == "warning" and "so it is a step" in warning.message
    run = engine.start("fl", {}, actor="agent:a")
    assert [s.id for s in run.ready_steps] == ["apply_rule"]
    from tiergate.errors import GateFailedError

    with pytest.raises(GateFailedError):
        engine.complete(run.id, "apply_rule", {}, actor="human:alice")
    assert engine.complete(run.id, "apply_rule", {"eligible": True}, actor="human:alice").status == "completed"
    ungated = engine_for(tmp_path / "b", make_engine, body.replace(rule, '<bpmn:businessRuleTask id="apply_rule"/>'))
    assert any("has no gate" in p.message for p in ungated.check() if p.severity == "error")
