"""Loading DMN models: versions, namespaces, DRDs, BKMs, boxed expressions, types, errors, API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tiergate.dmn import DMNSyntaxError, load_dmn
from tiergate.errors import DMNError, EvaluationError, FEELError, NotFoundError

D = Decimal
VERSIONS = [
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "https://www.omg.org/spec/DMN/20211108/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
]
AGE_RULES = [([">= 18"], ['"adult"']), (["< 18"], ['"minor"'])]


@pytest.mark.parametrize("ns", VERSIONS)
def test_every_dmn_version_default_namespace(dmn, ns):
    m = load_dmn(dmn.definitions(dmn.table(AGE_RULES), ns=ns))
    assert m.evaluate("Decision", {"Age": 30}).value == "adult"


@pytest.mark.parametrize("ns", VERSIONS)
def test_prefixed_namespace(dmn, ns):
    xml = dmn.definitions(dmn.table(AGE_RULES), ns=ns, prefix="dmn")
    assert b"<dmn:decisionTable" in xml and b"<decision " not in xml
    m = load_dmn(xml)
    assert m.evaluate("decision", {"Age": 3}).value == "minor"


def test_unknown_namespace_is_refused(dmn):
    with pytest.raises(DMNError, match="not a DMN namespace"):
        load_dmn(dmn.definitions(dmn.table(AGE_RULES), ns="urn:something-else"))


def test_table_without_id(dmn):
    m = load_dmn(dmn.definitions(dmn.table(AGE_RULES, table_id=None)))
    assert m.decisions[0].table.id is None
    assert m.evaluate("Decision", {"Age": 30}).matched_rules == ["r1"]


def test_path_and_bytes_and_text_sources(dmn, tmp_path):
    xml = dmn.definitions(dmn.table(AGE_RULES))
    f = tmp_path / "m.dmn"
    f.write_bytes(xml)
    for source in (f, str(f), xml, xml.decode()):
        assert load_dmn(source).evaluate("Decision", {"Age": 1}).value == "minor"
    with pytest.raises(DMNError, match="cannot read"):
        load_dmn(tmp_path / "missing.dmn")


DRD = """
<inputData id="i_age" name="Applicant Age"><variable name="Applicant Age" typeRef="number"/></inputData>
<inputData id="i_income" name="Monthly Income"><variable name="Monthly Income" typeRef="number"/></inputData>
<decision id="d_band" name="Age Band">
  <variable name="Age Band" typeRef="string"/>
  <informationRequirement><requiredInput href="#i_age"/></informationRequirement>
  <decisionTable id="t_band" hitPolicy="UNIQUE">
    <input id="c1" label="Applicant Age"><inputExpression typeRef="number"><text>Applicant Age</text></inputExpression></input>
    <output id="o1" name="band" typeRef="string"/>
    <rule id="young"><inputEntry><text>&lt; 30</text></inputEntry><outputEntry><text>"young"</text></outputEntry></rule>
    <rule id="older"><inputEntry><text>&gt;= 30</text></inputEntry><outputEntry><text>"older"</text></outputEntry></rule>
  </decisionTable>
</decision>
<decision id="d_limit" name="Credit Limit">
  <variable name="Credit Limit" typeRef="number"/>
  <informationRequirement><requiredDecision href="#d_band"/></informationRequirement>
  <informationRequirement><requiredInput href="#i_income"/></informationRequirement>
  <decisionTable hitPolicy="FIRST">
    <input label="band"><inputExpression typeRef="string"><text>Age Band</text></inputExpression></input>
    <output name="limit" typeRef="number"/>
    <rule><inputEntry><text>"young"</text></inputEntry><outputEntry><text>Monthly Income * 2</text></outputEntry></rule>
    <rule><inputEntry><text>-</text></inputEntry><outputEntry><text>Monthly Income * 3</text></outputEntry></rule>
  </decisionTable>
</decision>
<decision id="d_msg" name="Message">
  <variable name="Message" typeRef="string"/>
  <informationRequirement><requiredDecision href="#d_limit"/></informationRequirement>
  <literalExpression><text>"Limit: " + string(Credit Limit)</text></literalExpression>
</decision>
"""


def test_drd_required_decisions_in_dependency_order(dmn):
    m = load_dmn(dmn.definitions(DRD))
    r = m.evaluate("Message", {"Applicant Age": 25, "Monthly Income": 1000})
    assert r.value == "Limit: 2000"
    assert r.matched_rules == ["young", "d_limit#1"]  # the required decision's table first
    assert r.decisions == {"Age Band": "young", "Credit Limit": D(2000), "Message": "Limit: 2000"}
    r = m.evaluate("d_limit", {"Applicant Age": 40, "Monthly Income": 1000})
    assert r.value == D(3000) and r.matched_rules == ["older", "d_limit#2"]


def test_input_names_are_transitive(dmn):
    m = load_dmn(dmn.definitions(DRD))
    assert m.input_names("Message") == ["Applicant Age", "Monthly Income"]
    assert m.input_names("d_band") == ["Applicant Age"]


def test_descriptors(dmn):
    m = load_dmn(dmn.definitions(DRD))
    band, limit, msg = m.decisions
    assert (band.id, band.name, band.kind, band.hit_policy) == ("d_band", "Age Band", "table", "UNIQUE")
    assert band.required_inputs == ("Applicant Age",)
    assert limit.required_decisions == ("Age Band",)
    assert limit.required_inputs == ("Applicant Age", "Monthly Income")
    assert band.table.inputs[0].expression == "Applicant Age"
    assert band.table.outputs[0].name == "band" and band.table.outputs[0].type_ref == "string"
    rule = band.table.rules[0]
    assert (rule.id, rule.index, rule.input_entries, rule.output_entries) == ("young", 1, ("< 30",), ('"young"',))
    assert msg.kind == "literal" and msg.expression == '"Limit: " + string(Credit Limit)'
    assert m.decision("Message") is msg


def test_decision_names_used_without_requirements_are_dependencies(dmn):
    body = dmn.input_data("x", "number") + dmn.literal("a", "x + 1") + dmn.literal("b", "a * 2")
    m = load_dmn(dmn.definitions(body))
    assert m.evaluate("b", {"x": 1}).value == D(4)
    assert m.decision("b").required_decisions == ("a",)
    assert m.input_names("b") == ["x"]


def test_cycle_is_an_error(dmn):
    body = dmn.literal("a", "b + 1") + dmn.literal("b", "a + 1")
    with pytest.raises(DMNError, match="cycle"):
        load_dmn(dmn.definitions(body))


def test_unknown_decision_lists_available(dmn):
    m = load_dmn(dmn.definitions(DRD))
    with pytest.raises(NotFoundError) as info:
        m.evaluate("Nope", {})
    assert "Age Band" in info.value.message and "d_limit" in info.value.details["available"]


def test_missing_input_is_null_or_strict_error(dmn):
    m = load_dmn(dmn.definitions(DRD))
    assert m.evaluate("Age Band", {}).value is None
    with pytest.raises(EvaluationError) as info:
        m.evaluate("Message", {"Applicant Age": 20}, strict=True)
    assert info.value.details["missing"] == ["Monthly Income"]


def test_input_type_mismatch(dmn):
    m = load_dmn(dmn.definitions(DRD))
    r = m.evaluate("Age Band", {"Applicant Age": "twenty"})
    assert r.value is None and "Applicant Age" in r.warnings[0]
    with pytest.raises(EvaluationError) as info:
        m.evaluate("Age Band", {"Applicant Age": "twenty"}, strict=True)
    d = info.value.details
    assert (d["input"], d["expected"], d["actual"]) == ("Applicant Age", "number", "string")


ITEMS = """
<itemDefinition name="tStatus"><typeRef>string</typeRef>
  <allowedValues><text>"OPEN", "CLOSED"</text></allowedValues></itemDefinition>
<itemDefinition name="tLoan">
  <itemComponent name="amount"><typeRef>number</typeRef></itemComponent>
  <itemComponent name="status"><typeRef>tStatus</typeRef></itemComponent>
</itemDefinition>
<itemDefinition name="tAmounts" isCollection="true"><typeRef>number</typeRef></itemDefinition>
<inputData id="i_loan" name="Loan"><variable name="Loan" typeRef="tLoan"/></inputData>
<inputData id="i_amounts" name="Amounts"><variable name="Amounts" typeRef="tAmounts"/></inputData>
<decision id="d_total" name="Total"><variable name="Total" typeRef="number"/>
  <literalExpression><text>Loan.amount + sum(Amounts)</text></literalExpression></decision>
<decision id="d_check" name="Check"><variable name="Check" typeRef="boolean"/>
  <literalExpression><text>Loan instance of tLoan</text></literalExpression></decision>
"""


def test_item_definitions(dmn):
    m = load_dmn(dmn.definitions(ITEMS))
    loan = {"amount": 10, "status": "OPEN"}
    assert m.evaluate("Total", {"Loan": loan, "Amounts": [1, 2]}).value == D(13)
    assert m.evaluate("Total", {"Loan": loan, "Amounts": 5}).value == D(15)  # singleton list
    assert m.evaluate("Check", {"Loan": loan}).value is True
    with pytest.raises(EvaluationError, match="should be tLoan"):
        m.evaluate("Total", {"Loan": {"amount": 1, "status": "LOST"}, "Amounts": []}, strict=True)
    with pytest.raises(EvaluationError):
        m.evaluate("Total", {"Loan": {"amount": "1"}, "Amounts": []}, strict=True)


def test_structured_types_need_every_component(dmn):
    checks = {"lost": '{amount: 1, status: "LOST"}', "null": "{amount: 1, status: null}",
              "extra": '{amount: 1, status: "OPEN", extra: 2}', "missing": "{amount: 1}",
              "one": '[{amount: 1, status: "OPEN"}]'}
    extra = "".join(f'<decision id="d_{k}" name="{k}"><literalExpression><text>{t} instance of tLoan'
                    f"</text></literalExpression></decision>" for k, t in checks.items())
    m = load_dmn(dmn.definitions(ITEMS + extra))
    # instance of: structure and kinds only, allowedValues do not count, every component needed
    assert {k: m.evaluate(k, {}).value for k in checks} == {
        "lost": True, "null": True, "extra": True, "missing": False, "one": False}
    # a context lacking a component conforms neither as an input nor for instance of
    r = m.evaluate("Total", {"Loan": {"amount": 1}, "Amounts": []})
    assert r.value is None and "Loan" in r.warnings[0]
    with pytest.raises(EvaluationError, match="should be tLoan"):
        m.evaluate("Total", {"Loan": {"amount": 1}, "Amounts": []}, strict=True)


def test_unknown_type_ref_is_an_error(dmn):
    with pytest.raises(DMNError, match="tNope"):
        load_dmn(dmn.definitions(dmn.input_data("x", "tNope") + dmn.literal("a", "x")))


BKM = """
<businessKnowledgeModel id="b_fee" name="Fee">
  <encapsulatedLogic>
    <formalParameter name="amount" typeRef="number"/><formalParameter name="rate" typeRef="number"/>
    <literalExpression><text>amount * rate</text></literalExpression>
  </encapsulatedLogic>
</businessKnowledgeModel>
<businessKnowledgeModel id="b_grade" name="Grade">
  <encapsulatedLogic>
    <formalParameter name="score" typeRef="number"/>
    <decisionTable hitPolicy="FIRST">
      <input><inputExpression><text>score</text></inputExpression></input>
      <output/>
      <rule id="g_a"><inputEntry><text>&gt;= 90</text></inputEntry><outputEntry><text>"A"</text></outputEntry></rule>
      <rule id="g_b"><inputEntry><text>-</text></inputEntry><outputEntry><text>"B"</text></outputEntry></rule>
    </decisionTable>
  </encapsulatedLogic>
</businessKnowledgeModel>
<inputData id="i_amount" name="Amount"><variable name="Amount" typeRef="number"/></inputData>
<decision id="d_fee" name="Fee Due">
  <knowledgeRequirement><requiredKnowledge href="#b_fee"/></knowledgeRequirement>
  <literalExpression><text>Fee(Amount, 0.1)</text></literalExpression></decision>
<decision id="d_inv" name="Invoked">
  <knowledgeRequirement><requiredKnowledge href="#b_fee"/></knowledgeRequirement>
  <invocation>
    <literalExpression><text>Fee</text></literalExpression>
    <binding><parameter name="rate"/><literalExpression><text>0.5</text></literalExpression></binding>
    <binding><parameter name="amount"/><literalExpression><text>Amount</text></literalExpression></binding>
  </invocation></decision>
<decision id="d_grade" name="Graded">
  <knowledgeRequirement><requiredKnowledge href="#b_grade"/></knowledgeRequirement>
  <literalExpression><text>Grade(Amount)</text></literalExpression></decision>
"""


def test_business_knowledge_models(dmn):
    m = load_dmn(dmn.definitions(BKM))
    assert m.evaluate("Fee Due", {"Amount": 200}).value == D(20)
    assert m.evaluate("Invoked", {"Amount": 200}).value == D(100)
    r = m.evaluate("Graded", {"Amount": 95})
    assert r.value == "A" and r.matched_rules == ["g_a"]
    assert m.decision("Fee Due").required_knowledge == ("Fee",)


BOXED = """
<inputData id="i_n" name="n"><variable name="n" typeRef="number"/></inputData>
<decision id="d_ctx" name="Ctx">
  <context>
    <contextEntry><variable name="double"/><literalExpression><text>n * 2</text></literalExpression></contextEntry>
    <contextEntry><variable name="plus one"/><literalExpression><text>double + 1</text></literalExpression></contextEntry>
  </context></decision>
<decision id="d_ctx_result" name="CtxResult">
  <context>
    <contextEntry><variable name="x"/><literalExpression><text>n + 1</text></literalExpression></contextEntry>
    <contextEntry><literalExpression><text>x * 10</text></literalExpression></contextEntry>
  </context></decision>
<decision id="d_list" name="Lst">
  <list><literalExpression><text>n</text></literalExpression><literalExpression><text>n + 1</text></literalExpression></list>
</decision>
<decision id="d_rel" name="Rel">
  <relation><column name="a"/><column name="b"/>
    <row><literalExpression><text>1</text></literalExpression><literalExpression><text>"x"</text></literalExpression></row>
    <row><literalExpression><text>n</text></literalExpression><literalExpression><text>"y"</text></literalExpression></row>
  </relation></decision>
<decision id="d_cond" name="Cond">
  <conditional>
    <if><literalExpression><text>n > 1</text></literalExpression></if>
    <then><literalExpression><text>"big"</text></literalExpression></then>
    <else><literalExpression><text>"small"</text></literalExpression></else>
  </conditional></decision>
<decision id="d_for" name="Squares">
  <for iteratorVariable="x">
    <in><literalExpression><text>[1, 2, n]</text></literalExpression></in>
    <return><literalExpression><text>x * x</text></literalExpression></return>
  </for></decision>
<decision id="d_every" name="AllPositive">
  <every iteratorVariable="x">
    <in><literalExpression><text>[1, 2, n]</text></literalExpression></in>
    <satisfies><literalExpression><text>x > 0</text></literalExpression></satisfies>
  </every></decision>
<decision id="d_filter" name="Big">
  <filter>
    <in><literalExpression><text>[{v: 1}, {v: 5}, {v: n}]</text></literalExpression></in>
    <match><literalExpression><text>v > 2</text></literalExpression></match>
  </filter></decision>
"""


def test_boxed_expressions(dmn):
    m = load_dmn(dmn.definitions(BOXED))
    assert m.evaluate("Ctx", {"n": 2}).value == {"double": D(4), "plus one": D(5)}
    assert m.evaluate("CtxResult", {"n": 2}).value == D(30)
    assert m.evaluate("Lst", {"n": 2}).value == [D(2), D(3)]
    assert m.evaluate("Rel", {"n": 2}).value == [{"a": D(1), "b": "x"}, {"a": D(2), "b": "y"}]
    assert m.evaluate("Cond", {"n": 2}).value == "big"
    assert m.evaluate("Squares", {"n": 3}).value == [D(1), D(4), D(9)]
    assert m.evaluate("AllPositive", {"n": -1}).value is False
    assert m.evaluate("Big", {"n": 9}).value == [{"v": D(5)}, {"v": D(9)}]
    assert [d.kind for d in m.decisions] == ["context", "context", "list", "relation", "conditional",
                                             "for", "every", "filter"]


def test_unsupported_element_names_id_and_line(dmn):
    body = dmn.literal("a", "1") + '\n<decisionService id="svc1" name="svc"/>'
    with pytest.raises(DMNError) as info:
        load_dmn(dmn.definitions(body))
    assert info.value.details["id"] == "svc1" and info.value.details["line"] == 2
    assert "decisionService" in info.value.message and "svc1" in info.value.message


def test_non_feel_expression_language_is_refused(dmn):
    body = ('<decision id="d" name="d"><literalExpression expressionLanguage="python">'
            "<text>1</text></literalExpression></decision>")
    with pytest.raises(DMNError, match="written in Python .*FEEL only"):
        load_dmn(dmn.definitions(body))


_TABLE = ('<decision id="d1" name="D"><decisionTable id="t1"><input id="in1" label="Age">'
          '<inputExpression id="ie1" typeRef="number"{lang}>{text}</inputExpression></input>'
          '<output id="o1" name="r"/><rule id="r1"><inputEntry id="e1"><text>-</text></inputEntry>'
          '<outputEntry id="oe1"><text>1</text></outputEntry></rule></decisionTable></decision>')


@pytest.mark.parametrize("body, says", [
    (_TABLE.format(lang="", text="<text></text>"),
     r"input column 1 'Age'.*<inputExpression> id 'ie1' is empty .*modeler.*name of an input"),
    (_TABLE.format(lang="", text=""), r"<inputExpression> id 'ie1' is empty"),
    ('<decision id="d1" name="D"><literalExpression id="le1"/></decision>',
     r"decision 'd1'.*<literalExpression> id 'le1' is empty .*write its FEEL expression"),
    (_TABLE.format(lang=' expressionLanguage="juel"', text="<text>${age}</text>"),
     r"<inputExpression> id 'ie1' '\$\{age\}' is written in JUEL \(Camunda 7\)"),
    (_TABLE.format(lang="", text="<text>${age}</text>"), r"is written in JUEL"),
])
def test_modeler_templates_and_other_languages_get_a_clear_error(dmn, body, says):
    with pytest.raises(DMNError, match=says) as info:
        load_dmn(dmn.definitions(body))
    assert info.value.details["line"] == 1


def test_the_dmn_1_1_namespace_loads(dmn):
    body = '<decision id="d1" name="D"><literalExpression id="le1"><text>1 + 1</text></literalExpression></decision>'
    model = load_dmn(dmn.definitions(body, ns="http://www.omg.org/spec/DMN/20151101/dmn.xsd"))
    assert model.evaluate("D").value == 2


def test_a_decision_without_logic_loads_and_says_so_when_evaluated(dmn):
    model = load_dmn(dmn.definitions('<decision id="d1" name="D"><variable name="D"/></decision>'))
    with pytest.raises(EvaluationError, match=r"<decision>, id 'd1', name 'D'.*no decision logic yet"):
        model.evaluate("D")


def test_syntax_error_in_cell_names_rule_and_column(dmn):
    rules = [([">= 18"], ['"adult"']), (["< 18 +"], ['"minor"'])]
    with pytest.raises(DMNSyntaxError) as info:
        load_dmn(dmn.definitions(dmn.table(rules)))
    err = info.value
    assert isinstance(err, FEELError) and isinstance(err, DMNError)
    d = err.details
    assert (d["decision"], d["rule"], d["rule_index"], d["column_kind"], d["column"]) == (
        "decision", "r2", 2, "input", 1)
    assert d["expression"] == "< 18 +" and d["position"] == 7 and isinstance(d["line"], int)
    assert "r2" in err.message and "input column 1" in err.message and "'< 18 +'" in err.message


def test_syntax_error_in_output_cell(dmn):
    rules = [([">= 18"], ['"adult" +'])]
    with pytest.raises(DMNSyntaxError) as info:
        load_dmn(dmn.definitions(dmn.table(rules, rule_ids=False)))
    assert info.value.details["rule"] == "decision#1"
    assert info.value.details["column_kind"] == "output"


def test_unknown_name_is_a_load_error(dmn):
    with pytest.raises(DMNError) as info:
        load_dmn(dmn.definitions(dmn.table([(["< Agee"], ['"x"'])])))
    assert info.value.details["unknown_names"] == ["Agee"]


def test_rule_with_wrong_number_of_entries(dmn):
    with pytest.raises(DMNError, match="rule #1 has 2 input"):
        load_dmn(dmn.definitions(dmn.table([(["1", "2"], ['"x"'])])))


def test_duplicate_names_are_refused(dmn):
    with pytest.raises(DMNError, match="used twice"):
        load_dmn(dmn.definitions(dmn.input_data("x") + dmn.literal("x", "1")))


def test_inputs_must_be_a_mapping(dmn):
    m = load_dmn(dmn.definitions(dmn.table(AGE_RULES)))
    with pytest.raises(EvaluationError, match="mapping"):
        m.evaluate("Decision", [("Age", 1)])


def test_decision_result_type_coercion(dmn):
    m = load_dmn(dmn.definitions(dmn.literal("a", '"text"', type_ref="number")))
    r = m.evaluate("a", {})
    assert r.value is None and r.warnings
    with pytest.raises(EvaluationError):
        m.evaluate("a", {}, strict=True)


def test_expression_type_ref_converts_its_value(dmn):
    body = ('<decision id="d_one" name="One"><literalExpression typeRef="number"><text>[10]</text>'
            '</literalExpression></decision>'
            '<decision id="d_bad" name="Bad"><literalExpression typeRef="number"><text>"ten"</text>'
            '</literalExpression></decision>')
    m = load_dmn(dmn.definitions(body))
    assert m.evaluate("One", {}).value == D(10)        # a one-item list is its item
    assert m.evaluate("Bad", {}).value is None         # a string is no number: an error, null
