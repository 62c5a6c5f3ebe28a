"""FEEL budgets (issue 12): loops, lists, strings and function calls stop with limit_exceeded,
and regular expressions run on RE2 in linear time with XSD semantics."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tiergate.dmn import evaluate_expression as E
from tiergate.dmn import load_dmn
from tiergate.dmn.feel.limits import FEEL_LIMITS
from tiergate.errors import LimitExceededError


def _limit(text: str, context=None) -> str:
    with pytest.raises(LimitExceededError) as info:
        E(text, context)
    assert info.value.code == "limit_exceeded"
    return info.value.details["limit"]


def test_for_over_a_huge_range_is_refused_before_it_allocates(monkeypatch):
    assert _limit("for i in 1..20000000 return i") == "feel.list_items"
    from tiergate.dmn.feel import limits

    # nested loops: counted as they go (a small item limit, so the clock never decides)
    monkeypatch.setattr(limits, "FEEL_LIMITS", limits.FEELLimits(list_items=5000, seconds=600))
    assert _limit("count(for i in 1..2000, j in 1..2000 return 0)") == "feel.list_items"


def test_for_under_the_limit_still_works():
    assert E("count(for i in 1..1000 return i)") == Decimal(1000)


def test_strings_cannot_double_without_bound():
    text = 'for i in 1..40 return if i = 1 then "ab" else partial[i - 1] + partial[i - 1]'
    assert _limit(text) == "feel.string_chars"


def test_runaway_function_calls_stop_on_the_clock(monkeypatch):
    from tiergate.dmn.feel import limits

    monkeypatch.setattr(limits, "FEEL_LIMITS", limits.FEELLimits(seconds=0.2))
    text = "{f: function(n) if n <= 1 then 1 else f(n - 1) + f(n - 2), r: f(60)}.r"
    assert _limit(text) == "feel.seconds"


def test_a_catastrophic_regex_answers_at_once():
    # backtracking engines take exponential time on this; RE2 is linear
    evidence = "a" * 100_000 + "!"
    assert E('matches(x, "^(a+)+$")', {"x": evidence}) is False
    assert E('matches(x, "^(a|aa)+$")', {"x": "a" * 50_000}) is True
    assert E('replace(x, "(a+)+b", "c")', {"x": "a" * 50_000}) == "a" * 50_000


@pytest.mark.parametrize("text, expected", [
    ('matches("O", "^[A-Z-[OI]]$")', False),         # character-class subtraction
    ('matches("P", "^[A-Z-[OI]]$")', True),
    ('matches("abc", "a b c", "x")', True),           # x: whitespace in the pattern ignored
    ('matches("a b", "a[ ]b", "x")', True),           # ... but not inside a class
    ('matches("aa", "(a)\\1")', True),                # a back-reference (XPath), on the regex module
    ('matches("aA", "(a)\\1", "i")', True),
    ('matches("ab", "(a)\\1")', False),
    ('matches("h", "(.)\\2")', None),                 # no group 2: an error
    ('matches("aa", "(a\\1)")', None),                # its group is not closed yet: an error
    ('matches("abcd", "(asd)[\\1]")', None),          # not inside a class: an error
    ('matches("a", "a", "g")', None),                 # unknown flag: error
    ('matches("A", "a", "i")', True),
    ('matches("a.b", ".", "q")', True),
    ('replace("abc", "b", "[$0]")', "a[b]c"),
    ('replace("abc", "", "x")', None),                # a pattern matching "" is an error
    ('split("a1b22c", "[0-9]+")', ["a", "b", "c"]),
])
def test_xsd_regex_semantics(text, expected):
    assert E(text) == expected


def test_a_backtracking_pattern_stops_at_its_budget():
    with pytest.raises(LimitExceededError) as info:
        E('matches(x, "^((a+)+)\\1$")', {"x": "a" * 5000 + "b"})
    assert info.value.details["limit"] == "feel.regex_seconds"


def test_limits_live_in_one_place():
    assert FEEL_LIMITS.list_items >= 100_000 and FEEL_LIMITS.seconds > 0


def test_a_decision_over_budget_raises_limit_exceeded(dmn):
    req = '<informationRequirement><requiredInput href="#i_n"/></informationRequirement>'
    model = load_dmn(dmn.definitions(dmn.literal("Big", "count(for i in 1..n return i)", requires=req)
                                     + dmn.input_data("n", "number")))
    assert model.evaluate("Big", {"n": 10}).value == Decimal(10)
    with pytest.raises(LimitExceededError) as info:
        model.evaluate("Big", {"n": 50_000_000})
    assert info.value.details["limit"] == "feel.list_items"
