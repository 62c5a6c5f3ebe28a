"""<import> of other DMN models: item definitions and functions under the import's name."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tiergate.dmn import load_dmn
from tiergate.errors import DMNError

NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def _defs(ns: str, body: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><definitions xmlns="{NS}" id="defs" '
            f'name="m" namespace="{ns}">{body}</definitions>')


LIB = _defs("urn:lib", """
<itemDefinition name="tPerson">
  <itemComponent name="name"><typeRef>string</typeRef></itemComponent>
  <itemComponent name="age"><typeRef>number</typeRef></itemComponent>
</itemDefinition>
<businessKnowledgeModel id="b_hello" name="Say Hello"><encapsulatedLogic>
  <formalParameter name="p" typeRef="tPerson"/>
  <literalExpression><text>"Hello " + p.name</text></literalExpression>
</encapsulatedLogic></businessKnowledgeModel>
<inputData id="i_x" name="x"><variable name="x" typeRef="number"/></inputData>
<decision id="d_twice" name="twice"><informationRequirement><requiredInput href="#i_x"/>
  </informationRequirement><literalExpression><text>x * 2</text></literalExpression></decision>
""")


def _main(extra: str = "", text: str = "lib.Say Hello(Person)", type_ref: str = "lib.tPerson") -> str:
    return _defs("urn:main", f"""
<import namespace="urn:lib" name="lib" importType="{NS}"/>
<inputData id="i_p" name="Person"><variable name="Person" typeRef="{type_ref}"/></inputData>
<decision id="d_greet" name="greet">
  <informationRequirement><requiredInput href="#i_p"/></informationRequirement>
  <knowledgeRequirement><requiredKnowledge href="urn:lib#b_hello"/></knowledgeRequirement>
  {extra}<literalExpression><text>{text}</text></literalExpression></decision>""")


def test_an_imported_bkm_and_item_definition(tmp_path):
    (tmp_path / "lib.dmn").write_text(LIB)
    (tmp_path / "main.dmn").write_text(_main())
    model = load_dmn(tmp_path / "main.dmn")
    assert model.evaluate("greet", {"Person": {"name": "Ann", "age": 3}}).value == "Hello Ann"
    # the imported type is checked: a person without an age is no lib.tPerson
    assert model.evaluate("greet", {"Person": {"name": "Ann"}}).value is None
    assert load_dmn(tmp_path / "lib.dmn").evaluate("twice", {"x": 2}).value == D(4)


def test_an_import_is_found_by_namespace_or_refused_clearly(tmp_path):
    (tmp_path / "main.dmn").write_text(_main())
    with pytest.raises(DMNError, match="no .dmn file .* has the namespace 'urn:lib'"):
        load_dmn(tmp_path / "main.dmn")
    with pytest.raises(DMNError, match="not loaded from a file"):
        load_dmn(_main().encode())


def test_a_decision_of_an_imported_model_takes_its_inputs_by_name(tmp_path):
    (tmp_path / "lib.dmn").write_text(LIB)
    extra = '<informationRequirement><requiredDecision href="urn:lib#d_twice"/></informationRequirement>'
    (tmp_path / "main.dmn").write_text(_main(extra, text="lib.twice + 1"))
    model = load_dmn(tmp_path / "main.dmn")
    assert model.input_names("greet") == ["Person", "x"]
    assert model.evaluate("greet", {"x": 20}).value == D(41)
    assert model.evaluate("greet", {}).value is None          # x missing: null, as in lib


def test_inputdata_of_an_imported_model_is_refused(tmp_path):
    (tmp_path / "lib.dmn").write_text(LIB)
    extra = '<informationRequirement><requiredInput href="urn:lib#i_x"/></informationRequirement>'
    (tmp_path / "main.dmn").write_text(_main(extra))
    with pytest.raises(DMNError, match="inputData of the imported model 'lib' are not supported"):
        load_dmn(tmp_path / "main.dmn")


def test_an_import_cycle_is_an_error(tmp_path):
    back = LIB.replace("<itemDefinition", f'<import namespace="urn:main" name="main" importType="{NS}"/>'
                       "<itemDefinition", 1)
    (tmp_path / "lib.dmn").write_text(back)
    (tmp_path / "main.dmn").write_text(_main())
    with pytest.raises(DMNError, match="a cycle"):
        load_dmn(tmp_path / "main.dmn")
