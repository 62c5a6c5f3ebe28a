"""Decision services: through evaluate(), from FEEL, and from a BPMN business rule task."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tiergate.dmn import load_dmn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tier1_helpers import bpmn, chain, tier1_home, user  # noqa: E402

NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"

MODEL = f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="{NS}" id="defs" name="pricing" namespace="urn:pricing">
  <inputData id="i_amount" name="amount"><variable name="amount" typeRef="number"/></inputData>
  <decision id="d_rate" name="rate"><variable name="rate" typeRef="number"/>
    <literalExpression><text>0.1</text></literalExpression></decision>
  <decision id="d_fee" name="fee"><variable name="fee" typeRef="number"/>
    <informationRequirement><requiredInput href="#i_amount"/></informationRequirement>
    <informationRequirement><requiredDecision href="#d_rate"/></informationRequirement>
    <literalExpression><text>amount * rate</text></literalExpression></decision>
  <decision id="d_total" name="total"><variable name="total" typeRef="number"/>
    <informationRequirement><requiredInput href="#i_amount"/></informationRequirement>
    <informationRequirement><requiredDecision href="#d_fee"/></informationRequirement>
    <literalExpression><text>amount + fee</text></literalExpression></decision>
  <decisionService id="pricing" name="pricing"><variable name="pricing"/>
    <outputDecision href="#d_total"/><outputDecision href="#d_fee"/>
    <encapsulatedDecision href="#d_rate"/>
    <inputData href="#i_amount"/></decisionService>
  <decisionService id="fee_at" name="fee at"><variable name="fee at"/>
    <outputDecision href="#d_fee"/>
    <inputDecision href="#d_rate"/><inputData href="#i_amount"/></decisionService>
  <decision id="d_quote" name="quote"><variable name="quote"/>
    <knowledgeRequirement><requiredKnowledge href="#fee_at"/></knowledgeRequirement>
    <literalExpression><text>[fee at(200, 0.5), fee at(rate: 0.25, amount: 40), fee at("x", 1)]</text>
    </literalExpression></decision>
</definitions>"""


def test_a_service_answers_a_context_of_its_output_decisions():
    model = load_dmn(MODEL.encode())
    result = model.evaluate("pricing", {"amount": 100})
    assert result.value == {"total": Decimal("110.0"), "fee": Decimal("10.0")}
    assert [s.name for s in model.services] == ["pricing", "fee at"]
    assert model.services[1].parameters == ("amount", "rate")
    assert model.input_names("pricing") == ["amount"]


def test_an_input_decision_is_given_not_computed():
    model = load_dmn(MODEL.encode())
    assert model.evaluate("fee at", {"amount": 100, "rate": 0.5}).value == Decimal("50.0")
    assert model.evaluate("fee at", {"amount": 100}).value is None   # rate not given: null


def test_a_service_is_a_feel_function_with_typed_parameters():
    model = load_dmn(MODEL.encode())
    assert model.evaluate("quote").value == [Decimal("100.0"), Decimal("10.00"), None]


def test_a_service_needs_every_parameter_and_its_declared_output_type():
    typed = MODEL.replace('<variable name="fee at"/>', '<variable name="fee at" typeRef="tFeeAt"/>').replace(
        '<inputData id="i_amount"', '<itemDefinition name="tFeeAt"><functionItem outputTypeRef="string"/>'
        '</itemDefinition><inputData id="i_amount"').replace(
        "fee at(\"x\", 1)]", "fee at(\"x\", 1), fee at(200)]")
    model = load_dmn(typed.encode())
    # the fee is a number, the service declares a string: null; one argument of two: null
    assert model.evaluate("quote").value == [None, None, None, None]
    assert model.evaluate("fee at", {"amount": 100, "rate": 0.5}).value is None


def test_a_service_with_no_output_decision_is_refused():
    bad = MODEL.replace('<outputDecision href="#d_fee"/>\n    <inputDecision', '<inputDecision')
    with pytest.raises(Exception) as info:
        load_dmn(bad.encode())
    assert "outputDecision" in str(info.value) and "fee_at" in str(info.value)


def test_a_business_rule_task_calls_a_decision_service(tmp_path, make_engine):
    xml = bpmn("priced", '<bpmn:startEvent id="start"/>' + user("ask", gate={
        "type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}})
        + '<bpmn:businessRuleTask id="price" camunda:decisionRef="pricing"/>' + user("review")
        + '<bpmn:endEvent id="end"/>' + chain("start", "ask", "price", "review", "end"))
    home = tier1_home(tmp_path / "home", {"priced": xml},
                      decisions={"pricing": (MODEL, "decision: pricing\ncases: []\n")})
    engine = make_engine(home)
    assert [p for p in engine.check() if p.severity == "error"] == []
    run = engine.start("priced", {}, actor="agent:a")
    info = engine.complete(run.id, "ask", {"amount": 100}, actor="agent:a")
    assert info.data["total"] == 110 and info.data["fee"] == 10
    decided = [e for e in engine.log(run.id) if e["event"] == "decision_evaluated"]
    assert decided[0]["detail"]["outputs"] == {"total": 110, "fee": 10}
