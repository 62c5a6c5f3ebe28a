"""Every hit policy, on small tables written here."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tiergate.dmn import load_dmn
from tiergate.errors import DMNError, EvaluationError

D = Decimal
AGE_RULES = [([">= 18"], ['"adult"']), (["< 18"], ['"minor"']), ([">= 65"], ['"senior"'])]


def model(dmn, rules, **kw):
    return load_dmn(dmn.definitions(dmn.table(rules, **kw)))


def test_unique(dmn):
    m = model(dmn, AGE_RULES[:2], hit="UNIQUE")
    r = m.evaluate("Decision", {"Age": 20})
    assert r.value == "adult" and r.matched_rules == ["r1"]
    assert m.evaluate("Decision", {"Age": 5}).value == "minor"


def test_unique_violation_names_the_rules(dmn):
    m = model(dmn, AGE_RULES, hit="UNIQUE")
    with pytest.raises(EvaluationError) as info:
        m.evaluate("Decision", {"Age": 70})
    assert info.value.details["rules"] == ["r1", "r3"]
    assert "r1" in info.value.message and "r3" in info.value.message and "UNIQUE" in info.value.message


def test_any(dmn):
    rules = [([">= 18"], ['"ok"']), ([">= 65"], ['"ok"']), (["> 100"], ['"odd"'])]
    m = model(dmn, rules, hit="ANY")
    r = m.evaluate("Decision", {"Age": 70})
    assert r.value == "ok" and r.matched_rules == ["r1", "r2"]
    with pytest.raises(EvaluationError) as info:
        m.evaluate("Decision", {"Age": 101})
    assert info.value.details["rules"] == ["r1", "r2", "r3"]


def test_first_stops_at_first_match(dmn):
    m = model(dmn, AGE_RULES, hit="FIRST")
    r = m.evaluate("Decision", {"Age": 70})
    assert r.value == "adult" and r.matched_rules == ["r1"]


def test_priority_follows_output_values_order(dmn):
    m = model(dmn, AGE_RULES, hit="PRIORITY", output_values={"result": '"senior", "minor", "adult"'})
    r = m.evaluate("Decision", {"Age": 70})
    assert r.value == "senior" and r.matched_rules == ["r1", "r3"]
    assert m.evaluate("Decision", {"Age": 30}).value == "adult"


def test_priority_multi_output_uses_first_output_first(dmn):
    rules = [(["-"], ['"B"', '"x"']), (["-"], ['"A"', '"z"']), (["-"], ['"A"', '"y"'])]
    m = model(dmn, rules, hit="PRIORITY", outputs=(("o1", "string"), ("o2", "string")),
              output_values={"o1": '"A", "B"', "o2": '"y", "z"'})
    assert m.evaluate("Decision", {"Age": 1}).value == {"o1": "A", "o2": "y"}


def test_rule_order(dmn):
    m = model(dmn, AGE_RULES, hit="RULE ORDER")
    assert m.evaluate("Decision", {"Age": 70}).value == ["adult", "senior"]
    assert m.evaluate("Decision", {"Age": None}).value == []


def test_output_order(dmn):
    m = model(dmn, AGE_RULES, hit="OUTPUT ORDER", output_values={"result": '"senior", "adult", "minor"'})
    assert m.evaluate("Decision", {"Age": 70}).value == ["senior", "adult"]


def test_collect_without_aggregation(dmn):
    m = model(dmn, AGE_RULES, hit="COLLECT")
    assert m.evaluate("Decision", {"Age": 70}).value == ["adult", "senior"]
    assert m.evaluate("Decision", {"Age": 5}).value == ["minor"]


NUM_RULES = [(["> 1"], ["100"]), (["> 2"], ["200"]), (["> 3"], ["50"]), (["> 10"], ["7"])]


@pytest.mark.parametrize("aggregation, age, expected", [
    ("SUM", 5, D(350)), ("MIN", 5, D(50)), ("MAX", 5, D(200)), ("COUNT", 5, D(3)),
    ("SUM", 0, None), ("MIN", 0, None), ("MAX", 0, None), ("COUNT", 0, D(0)),
])
def test_collect_aggregations(dmn, aggregation, age, expected):
    m = model(dmn, NUM_RULES, hit="COLLECT", aggregation=aggregation, outputs=(("amount", "number"),))
    assert m.evaluate("Decision", {"Age": age}).value == expected


def test_abbreviated_hit_policy(dmn):
    m = model(dmn, AGE_RULES, hit="F")
    assert m.decisions[0].table.hit_policy == "FIRST"


def test_multiple_outputs_give_a_context(dmn):
    rules = [([">= 18"], ['"adult"', "1"]), (["< 18"], ['"minor"', "2"])]
    m = model(dmn, rules, outputs=(("label", "string"), ("code", "number")))
    assert m.evaluate("Decision", {"Age": 30}).value == {"label": "adult", "code": D(1)}


def test_no_match_is_null_or_default(dmn):
    m = model(dmn, AGE_RULES[:1], hit="UNIQUE")
    r = m.evaluate("Decision", {"Age": 3})
    assert r.value is None and r.matched_rules == []
    m = model(dmn, AGE_RULES[:1], hit="FIRST", defaults={"result": '"unknown"'})
    assert m.evaluate("Decision", {"Age": 3}).value == "unknown"


def test_output_type_mismatch_is_null(dmn):
    m = model(dmn, [(["-"], ['"text"'])], outputs=(("n", "number"),))
    assert m.evaluate("Decision", {"Age": 1}).value is None


def test_rules_without_ids_get_decision_index_ids(dmn):
    m = model(dmn, AGE_RULES, hit="COLLECT", rule_ids=False)
    assert m.evaluate("Decision", {"Age": 70}).matched_rules == ["decision#1", "decision#3"]
    assert [r.id for r in m.decisions[0].table.rules] == ["decision#1", "decision#2", "decision#3"]


def test_unknown_hit_policy_and_bad_aggregation(dmn):
    with pytest.raises(DMNError, match="unknown hitPolicy"):
        model(dmn, AGE_RULES, hit="SOMETIMES")
    with pytest.raises(DMNError, match="aggregation"):
        model(dmn, AGE_RULES, hit="FIRST", aggregation="SUM")
