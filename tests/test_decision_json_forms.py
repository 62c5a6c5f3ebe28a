"""FEEL values a decision may answer reach every door as JSON, or as a clear error.

Years-and-months durations are ISO 8601 text, ranges an object with their ends, and a function,
which has no JSON form, is an ``evaluation_failed`` error naming the decision: never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
from tier1_helpers import bpmn, chain, tier1_home, user

from tiergate.dmn import Range, YearsMonthsDuration, evaluate_expression
from tiergate.engine import Engine
from tiergate.jsonutil import NoJSONForm, canonical_json, to_jsonable

NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def literal(decision_id: str, text: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<definitions xmlns="{NS}" id="d" name="D" '
            f'namespace="urn:{decision_id}">\n'
            '<inputData id="i_n" name="n"><variable name="n" typeRef="number"/></inputData>\n'
            f'<decision id="{decision_id}" name="{decision_id}"><informationRequirement>'
            '<requiredInput href="#i_n"/></informationRequirement>'
            f'<literalExpression><text>{text}</text></literalExpression></decision>\n</definitions>\n')


VALUES = '{term: duration("P1Y2M"), band: [1..n), negative: duration("-P3M")}'
FUNCTION = '{term: duration("P1Y"), how: function(x) x + n}'


def test_json_forms_of_feel_values() -> None:
    assert to_jsonable(YearsMonthsDuration(14)) == "P1Y2M"
    assert to_jsonable([YearsMonthsDuration(0), YearsMonthsDuration(-3)]) == ["P0M", "-P3M"]
    value = evaluate_expression("[1..10)")
    assert isinstance(value, Range)
    assert to_jsonable({"r": value}) == {"r": {"start": 1, "end": 10, "start_included": True,
                                               "end_included": False}}
    assert to_jsonable(evaluate_expression("(< 5)")) == {"start": None, "end": 5, "start_included": False,
                                                       "end_included": False}
    assert to_jsonable(evaluate_expression('[date("2026-01-01")..date("2026-12-31")]'))["end"] == "2026-12-31"
    with pytest.raises(NoJSONForm, match="FEEL function") as err:
        canonical_json({"f": evaluate_expression("function(x) x")})
    assert isinstance(err.value, TypeError) and "has no JSON form" in str(err.value)


def _home(root: Path, text: str) -> Any:
    process = bpmn("decide", '<bpmn:startEvent id="start"/>' + user("ask", gate={
        "type": "object", "required": ["n"], "properties": {"n": {"type": "number"}}})
        + '<bpmn:businessRuleTask id="rate" camunda:decisionRef="terms"/>' + user("after")
        + '<bpmn:endEvent id="end"/>' + chain("start", "ask", "rate", "after", "end"))
    cases = "decision: terms\ncases:\n  - name: one\n    inputs: {n: 3}\n    expect: {term: P1Y2M}\n"
    return tier1_home(root, {"decide": process}, decisions={"terms": (literal("terms", text), cases)})


def test_a_business_rule_task_passes_them_on(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(_home(tmp_path / "home", VALUES))
    run = engine.start("decide", {}, actor="agent:a")
    info = engine.complete(run.id, "ask", {"n": 3}, actor="agent:a")
    assert info.status == "active" and [s.id for s in info.ready_steps] == ["after"]
    assert info.data["term"] == "P1Y2M" and info.data["negative"] == "-P3M"
    assert info.data["band"] == {"start": 1, "end": 3, "start_included": True, "end_included": False}
    logged = [e for e in engine.log(run.id) if e["event"] == "decision_evaluated"][0]["detail"]["outputs"]
    assert logged["term"] == "P1Y2M"


def test_a_business_rule_task_answering_a_function_fails_the_run_clearly(
        tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    engine = make_engine(_home(tmp_path / "home", FUNCTION))
    run = engine.start("decide", {}, actor="agent:a")
    info = engine.complete(run.id, "ask", {"n": 3}, actor="agent:a")
    assert info.status == "failed"
    failed = engine.log(run.id)[-1]
    assert failed["event"] == "failed" and failed["step"] == "rate"
    assert "decision 'terms' answered a value with no JSON form (FEEL function" in failed["detail"]["error"]


def test_decisions_test_compares_and_refuses_them_through_the_cli(tmp_path: Path, cli: Any) -> None:
    good = _home(tmp_path / "good", VALUES)
    answer = cli("decisions", "test", "terms", "--json", home=good)
    assert answer.returncode == 0, answer
    bad = _home(tmp_path / "bad", FUNCTION)
    answer = cli("decisions", "test", "terms", "--json", home=bad)
    assert answer.returncode == 1 and "Traceback" not in answer.stderr, answer
    assert "no JSON form" in answer.stdout


ROUTING = ('{tier: 2, rationale: "checklist", until: duration("P6M"), '
           'window: [1..3], how: if n = 1 then function(x) x else null}')


@pytest.mark.parametrize("n, ok", [(0, True), (1, False)])
def test_route_answers_or_says_why_not(tmp_path: Path, cli: Any, n: int, ok: bool) -> None:
    home = _home(tmp_path / "home", VALUES)
    home.write("decisions/tier_routing.dmn", literal("tier_routing", ROUTING))
    answer = cli("route", "decide", "--data", f'{{"n": {n}}}', "--json", home=home)
    assert "Traceback" not in answer.stderr, answer
    if ok:
        assert answer.returncode == 0 and answer.json["ok"] is True, answer
    else:
        assert answer.returncode == 1 and answer.json["error"]["code"] == "evaluation_failed", answer
        assert "decision 'tier_routing' answered a value with no JSON form" in answer.json["error"]["message"]
