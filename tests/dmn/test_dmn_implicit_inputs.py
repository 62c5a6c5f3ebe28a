"""Implicit inputs: decision tables written by Camunda Modeler / dmn-js, without inputData."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tiergate.dmn import load_dmn
from tiergate.errors import DMNError, EvaluationError

D = Decimal

CAMUNDA = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d1" name="x" namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="dish" name="Dish">
    <decisionTable id="t1" hitPolicy="FIRST">
      <input id="i1" label="Season"><inputExpression id="e1" typeRef="string"><text>season</text></inputExpression></input>
      <output id="o1" name="dish" typeRef="string"/>
      <rule id="r1"><inputEntry id="a"><text>"Winter"</text></inputEntry><outputEntry id="b"><text>"Roastbeef"</text></outputEntry></rule>
      <rule id="r2"><inputEntry id="c"><text>-</text></inputEntry><outputEntry id="d"><text>"Salad"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_camunda_table_without_input_data():
    m = load_dmn(CAMUNDA)
    assert m.evaluate("dish", {"season": "Winter"}).value == "Roastbeef"
    r = m.evaluate("Dish", {"season": "Summer"})
    assert (r.value, r.matched_rules) == ("Salad", ["r2"])
    assert m.input_names("dish") == ["season"]
    info = m.decision("dish")
    assert info.implicit_inputs == ("season",)
    assert info.required_inputs == ()
    assert info.table.inputs[0].type_ref == "string"  # the inputExpression's typeRef is kept


def test_missing_implicit_input_is_null_and_strict_names_it():
    m = load_dmn(CAMUNDA)
    r = m.evaluate("dish", {})
    assert (r.value, r.matched_rules) == ("Salad", ["r2"])
    assert m.evaluate("dish", None).value == "Salad"
    with pytest.raises(EvaluationError, match="missing input.*'season'") as info:
        m.evaluate("dish", {"other": 1}, strict=True)
    assert info.value.details["missing"] == ["season"]
    assert m.evaluate("dish", {"season": "Winter"}, strict=True).value == "Roastbeef"


def test_implicit_input_values_are_converted_like_any_input():
    m = load_dmn(CAMUNDA)
    with pytest.raises(EvaluationError, match="input 'season'"):
        m.evaluate("dish", {"season": object()})


MULTI_RULES = [
    # Customer Age, ticket.severity, ticket.amount
    ([">= 65", '"high"', "-"], ['"senior urgent"', "Customer Age"]),
    (["-", '"high"', "< ticket.limit"], ['"urgent"', "ticket.amount * 2"]),
    (["-", "-", "-"], ['"normal"', "0"]),
]


def multi(dmn, **kw):
    return dmn.table(MULTI_RULES, hit="FIRST", input_data=False,
                     inputs=(("Customer Age", "number"), ("ticket.severity", "string"),
                             ("ticket.amount", "number")),
                     outputs=(("level", "string"), ("score", "number")), **kw)


def test_names_with_spaces_and_paths(dmn):
    m = load_dmn(dmn.definitions(multi(dmn)))
    assert m.input_names("Decision") == ["Customer Age", "ticket"]  # column order, no duplicates
    assert m.decision("Decision").implicit_inputs == ("Customer Age", "ticket")
    senior = m.evaluate("Decision", {"Customer Age": 70, "ticket": {"severity": "high", "amount": 5}})
    assert senior.value == {"level": "senior urgent", "score": D(70)}
    # an implicit input is in scope in the table's own cells (input and output entries)
    r = m.evaluate("Decision", {"Customer Age": 30, "ticket": {"severity": "high", "amount": 5,
                                                               "limit": 10}})
    assert r.value == {"level": "urgent", "score": D(10)}
    r = m.evaluate("Decision", {"Customer Age": 30, "ticket": {"severity": "high", "amount": 50,
                                                               "limit": 10}})
    assert r.value == {"level": "normal", "score": D(0)}
    r = m.evaluate("Decision", {})
    assert r.value == {"level": "normal", "score": D(0)} and r.matched_rules == ["r3"]


def test_several_names_in_one_input_expression_keep_their_order(dmn):
    for text, expected in (("b + a", ["b", "a"]), ("a + b", ["a", "b"]),
                           ("if flag then x else y", ["flag", "x", "y"])):
        xml = dmn.table([(["> 1"], ['"big"'])], inputs=((text, "number"),), input_data=False)
        m = load_dmn(dmn.definitions(xml))
        assert m.input_names("Decision") == expected
    m = load_dmn(dmn.definitions(dmn.table([(["> 1"], ['"big"'])], inputs=(("b + a", "number"),),
                                           input_data=False)))
    assert m.evaluate("Decision", {"a": 1, "b": 1}).value == "big"


def test_names_bound_in_the_input_expression_are_not_inputs(dmn):
    text = "count(for x in items return x) + sum(orders[amount > 1].amount)"
    m = load_dmn(dmn.definitions(dmn.table([(["> 1"], ['"many"'])], inputs=((text, "number"),),
                                           input_data=False)))
    assert m.input_names("Decision") == ["items", "orders"]  # not x, not the filter's amount
    r = m.evaluate("Decision", {"items": [1, 2], "orders": [{"amount": 5}]})
    assert r.value == "many"


def test_built_ins_are_not_implicit_inputs(dmn):
    text = "string length(code) + count(tags)"
    m = load_dmn(dmn.definitions(dmn.table([(["> 3"], ['"long"'])], inputs=((text, "number"),),
                                           input_data=False)))
    assert m.input_names("Decision") == ["code", "tags"]
    assert m.evaluate("Decision", {"code": "abc", "tags": ["x"]}).value == "long"


@pytest.mark.parametrize("cells", [(["< seasonn"], ['"x"']), (["-"], ["seasonn + 1"])])
def test_typo_in_a_rule_cell_is_still_a_load_error(dmn, cells):
    xml = dmn.table([cells], inputs=(("season", "string"),), input_data=False)
    with pytest.raises(DMNError, match="unknown name.*'seasonn'") as info:
        load_dmn(dmn.definitions(xml))
    assert info.value.details["unknown_names"] == ["seasonn"]
    assert info.value.details["rule"] == "r1"


def test_typo_in_a_default_output_is_a_load_error(dmn):
    xml = dmn.table([(['"a"'], ['"x"'])], inputs=(("season", "string"),), input_data=False,
                    defaults={"result": "seasn"})
    with pytest.raises(DMNError) as info:
        load_dmn(dmn.definitions(xml))
    assert info.value.details["unknown_names"] == ["seasn"]
    ok = dmn.table([(['"a"'], ['"x"'])], inputs=(("season", "string"),), input_data=False,
                   defaults={"result": "season"})
    assert load_dmn(dmn.definitions(ok)).evaluate("Decision", {"season": "b"}).value == "b"


def test_literal_expressions_do_not_get_implicit_inputs(dmn):
    with pytest.raises(DMNError) as info:
        load_dmn(dmn.definitions(dmn.literal("Greeting", '"Hello " + name')))
    assert info.value.details["unknown_names"] == ["name"]
    # not even the implicit inputs of another decision
    xml = (dmn.table([(['"Winter"'], ['"x"'])], inputs=(("season", "string"),), input_data=False)
           + dmn.literal("Other", "season"))
    with pytest.raises(DMNError) as info:
        load_dmn(dmn.definitions(xml))
    assert info.value.details["unknown_names"] == ["season"]


def test_a_decision_reading_its_own_name_is_still_an_error(dmn):
    xml = dmn.table([(["> 1"], ['"x"'])], inputs=(("Decision", "number"),), input_data=False)
    with pytest.raises(DMNError) as info:
        load_dmn(dmn.definitions(xml))
    assert info.value.details["unknown_names"] == ["Decision"]


def test_tables_in_business_knowledge_models_get_no_implicit_inputs(dmn):
    bkm = """<businessKnowledgeModel id="b" name="classify"><encapsulatedLogic>
      <formalParameter name="x" typeRef="number"/>
      <decisionTable><input><inputExpression><text>y</text></inputExpression></input>
        <output name="o"/><rule><inputEntry><text>-</text></inputEntry><outputEntry><text>1</text></outputEntry></rule>
      </decisionTable></encapsulatedLogic></businessKnowledgeModel>"""
    with pytest.raises(DMNError) as info:
        load_dmn(dmn.definitions(bkm + dmn.literal("Top", "classify(1)")))
    assert info.value.details["unknown_names"] == ["y"]


MIXED = """
<inputData id="i_age" name="Applicant Age"><variable name="Applicant Age" typeRef="number"/></inputData>
<decision id="d_offer" name="Offer">
  <informationRequirement><requiredInput href="#i_age"/></informationRequirement>
  <decisionTable hitPolicy="FIRST">
    <input><inputExpression typeRef="string"><text>region</text></inputExpression></input>
    <input><inputExpression typeRef="number"><text>Applicant Age</text></inputExpression></input>
    <output name="offer" typeRef="string"/>
    <rule id="eu_young"><inputEntry><text>"EU"</text></inputEntry><inputEntry><text>&lt; 30</text></inputEntry>
      <outputEntry><text>"starter " + region</text></outputEntry></rule>
    <rule id="other"><inputEntry><text>-</text></inputEntry><inputEntry><text>-</text></inputEntry>
      <outputEntry><text>"standard"</text></outputEntry></rule>
  </decisionTable>
</decision>
"""


def test_input_data_and_implicit_inputs_together(dmn):
    m = load_dmn(dmn.definitions(MIXED))
    assert m.input_names("Offer") == ["Applicant Age", "region"]  # inputData first
    info = m.decision("Offer")
    assert info.required_inputs == ("Applicant Age",) and info.implicit_inputs == ("region",)
    r = m.evaluate("Offer", {"Applicant Age": 25, "region": "EU"})
    assert (r.value, r.matched_rules) == ("starter EU", ["eu_young"])
    # the inputData typeRef is enforced; the implicit input has none
    r = m.evaluate("Offer", {"Applicant Age": "young", "region": "EU"})
    assert r.value == "standard" and "Applicant Age" in r.warnings[0]
    with pytest.raises(EvaluationError) as err:
        m.evaluate("Offer", {"Applicant Age": 25}, strict=True)
    assert err.value.details["missing"] == ["region"]


DRD = """
<inputData id="i_budget" name="budget"><variable name="budget" typeRef="number"/></inputData>
<decision id="dish" name="Dish">
  <decisionTable hitPolicy="FIRST">
    <input><inputExpression typeRef="string"><text>season</text></inputExpression></input>
    <output name="dish" typeRef="string"/>
    <rule id="winter"><inputEntry><text>"Winter"</text></inputEntry><outputEntry><text>"Roastbeef"</text></outputEntry></rule>
    <rule id="else"><inputEntry><text>-</text></inputEntry><outputEntry><text>"Salad"</text></outputEntry></rule>
  </decisionTable>
</decision>
<decision id="drinks" name="Drinks">
  <informationRequirement><requiredDecision href="#dish"/></informationRequirement>
  <decisionTable hitPolicy="COLLECT">
    <input><inputExpression typeRef="string"><text>Dish</text></inputExpression></input>
    <input><inputExpression typeRef="boolean"><text>guests with children</text></inputExpression></input>
    <input><inputExpression typeRef="string"><text>season</text></inputExpression></input>
    <input><inputExpression typeRef="number"><text>budget</text></inputExpression></input>
    <output name="drink" typeRef="string"/>
    <rule id="juice"><inputEntry><text>-</text></inputEntry><inputEntry><text>true</text></inputEntry>
      <inputEntry><text>-</text></inputEntry><inputEntry><text>-</text></inputEntry><outputEntry><text>"Juice"</text></outputEntry></rule>
    <rule id="wine"><inputEntry><text>"Roastbeef"</text></inputEntry><inputEntry><text>-</text></inputEntry>
      <inputEntry><text>-</text></inputEntry><inputEntry><text>&gt; 20</text></inputEntry><outputEntry><text>"Red wine"</text></outputEntry></rule>
  </decisionTable>
</decision>
"""


def test_required_decision_with_implicit_inputs(dmn):
    m = load_dmn(dmn.definitions(DRD))
    # inputData first; then implicit inputs in evaluation order (required decision first), once
    assert m.input_names("Drinks") == ["budget", "season", "guests with children"]
    assert m.input_names("Dish") == ["season"]
    drinks = m.decision("Drinks")
    assert drinks.required_decisions == ("Dish",)
    assert drinks.required_inputs == ("budget",)
    assert drinks.implicit_inputs == ("guests with children", "season")  # its own, direct
    r = m.evaluate("Drinks", {"season": "Winter", "guests with children": True, "budget": 50})
    assert r.value == ["Juice", "Red wine"]
    assert r.decisions["Dish"] == "Roastbeef" and r.matched_rules == ["winter", "juice", "wine"]
    with pytest.raises(EvaluationError) as err:
        m.evaluate("Drinks", {"budget": 50}, strict=True)
    assert err.value.details["missing"] == ["season", "guests with children"]


def test_evaluate_compiles_nothing(dmn, monkeypatch):
    m = load_dmn(dmn.definitions(DRD))

    def refuse(*args, **kwargs):
        raise AssertionError("compiled during evaluate")

    monkeypatch.setattr("tiergate.dmn.compiling.compile_feel", refuse)
    assert m.evaluate("Drinks", {"season": "Summer", "guests with children": True}).value == ["Juice"]
