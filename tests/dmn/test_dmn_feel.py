"""FEEL expressions and unary tests: syntax, semantics, null and three-valued logic."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest

from tiergate.dmn import FEELSyntaxError, Range, YearsMonthsDuration, evaluate_expression as E
from tiergate.dmn import evaluate_unary_tests as T
from tiergate.errors import EvaluationError, FEELError

D = Decimal


def test_grammar_has_no_conflicts(caplog):
    from lark import Lark

    from tiergate.dmn.feel.grammar import GRAMMAR

    caplog.set_level(logging.DEBUG, logger="lark")
    Lark(GRAMMAR, parser="lalr", lexer="basic", start=["start_expr", "start_tests"], debug=True)
    conflicts = [r.message for r in caplog.records if "conflict" in r.message.lower()]
    assert conflicts == []


def test_parser_is_built_once():
    from tiergate.dmn.feel.grammar import get_parser

    assert get_parser() is get_parser()


def test_every_node_kind_of_the_parser_has_a_compiler():
    """The node shapes parser.py documents are the ones compiled: the modules that register
    node compilers (iteration, functions, filters, ...) are all imported by the package."""
    import re

    from tiergate.dmn.feel import interpreter, parser

    documented = set(re.findall(r'\("(\w+)"', parser.__doc__))
    unary = {"tests", "t_any", "t_cmp", "t_expr", "t_not"}  # unary.compile_tests' own shapes
    assert unary <= documented
    assert set(interpreter._COMPILERS) == documented - unary


@pytest.mark.parametrize("text, expected", [
    ("0.1 + 0.2 = 0.3", True),
    ("0.1 + 0.2", D("0.3")),
    ("10 / 4", D("2.5")),
    ("1 / 3 * 3", D("0.9999999999999999999999999999999999")),  # decimal128, like the spec
    ("2 ** 10", D(1024)),
    ("10 ** -2", D("0.01")),
    ("-2 ** 2", D(4)),  # DMN 1.4+: negation binds tighter than ** (TCK 0075)
    ("2 ** 3 ** 2", D(64)),  # and ** is left-associative
    ("-10 - -5", D(-5)),
    ("(1 + 2) * 3", D(9)),
    ("1 + 2 * 3", D(7)),
    (".5 + 1", D("1.5")),
    ('"a" + "b"', "ab"),
    ("1 / 0", None),
    ('"a" + 1', None),
    ("null + 1", None),
    ("-null", None),
    ('-"a"', None),
])
def test_arithmetic(text, expected):
    assert E(text) == expected
    if expected is not None:
        assert type(E(text)) is type(expected)


def test_decimal_precision_is_34_digits():
    assert E("1 / 3") == D("0.3333333333333333333333333333333333")
    assert len(E("2 / 3").as_tuple().digits) == 34


@pytest.mark.parametrize("text, expected", [
    ("true and true", True), ("true and false", False), ("true and null", None),
    ("false and null", False), ("null and false", False), ("null and null", None),
    ("true or null", True), ("null or true", True), ("false or null", None), ("false or false", False),
    ('true and "x"', None), ('false and "x"', False), ('true or "x"', True),
    ("not(true)", False), ("not(null)", None), ('not("x")', None),
])
def test_three_valued_logic(text, expected):
    assert E(text) is expected


@pytest.mark.parametrize("text, expected", [
    ("1 = 1.0", True), ("1 != 2", True), ('"a" < "b"', True), ("1 < 2", True), ("2 <= 2", True),
    ("3 > 2", True), ("2 >= 3", False), ('1 = "1"', None), ('1 < "2"', None), ("null = null", True),
    ("1 = null", False), ("null < 1", None), ("true < false", None), ("[1, 2] = [1, 2]", True),
    ("[1, 2] = [2, 1]", False), ("{a: 1} = {a: 1}", True), ("{a: 1} = {a: 2}", False),
    ('date("2020-01-01") < date("2020-01-02")', True),
    ('duration("P1D") = duration("PT24H")', True),
    ("5 between 1 and 10", True), ("0 between 1 and 10", False), ("null between 1 and 10", None),
])
def test_comparison(text, expected):
    assert E(text) is expected


@pytest.mark.parametrize("text, expected", [
    ("5 in [1..10]", True), ("10 in [1..10)", False), ("1 in (1..10]", False), ("1 in ]1..10]", False),
    ("5 in (1, 5, 7)", True), ("6 in (1, 5, 7)", False), ("5 in (< 3, > 4)", True),
    ("5 in [3, 5]", True), ("5 in < 10", True), ('"b" in ["a", "b"]', True), ("5 in 5", True),
])
def test_in(text, expected):
    assert E(text) is expected


def test_if_for_quantifiers():
    assert E('if 1 > 2 then "yes" else "no"') == "no"
    assert E('if null then "yes" else "no"') == "no"
    assert E("for x in [1, 2, 3] return x * 2") == [D(2), D(4), D(6)]
    assert E("for x in [1, 2], y in [10, 20] return x + y") == [D(11), D(21), D(12), D(22)]
    assert E("for i in 1..3 return i") == [D(1), D(2), D(3)]
    assert E("for i in 3..1 return i") == [D(3), D(2), D(1)]
    assert E("for x in [1, 2, 3] return if x = 1 then 1 else x + partial[-1]") == [D(1), D(3), D(6)]
    assert E("some x in [1, 2, 3] satisfies x > 2") is True
    assert E("every x in [1, 2, 3] satisfies x > 2") is False
    assert E("every x in [] satisfies x > 2") is True
    assert E("some x in [1, 2], y in [2, 3] satisfies x = y") is True


def test_functions_and_invocation():
    assert E("(function(a, b) a - b)(5, 3)") == D(2)
    assert E("{f: function(x) x * x, r: f(4)}.r") == D(16)
    assert E("{f: function(a, b) a - b, r: f(b: 1, a: 10)}.r") == D(9)
    assert E('{f: function(x: number) x + 1, r: f("a")}.r') is None
    assert E("substring(string: \"abcdef\", start position: 3, length: 2)") == "cd"
    assert E("substring(start position: 3, string: \"abcdef\")") == "cdef"
    assert E('substring(nonsense: "abc")') is None
    assert E('substring("abc")') is None  # too few arguments: null
    assert E("unknownFunction(1)") is None


def test_variables_named_like_builtins():
    ctx = {"date": dt.date(2020, 1, 1), "count": 3, "sum": 10}
    assert E('date("2021-02-03")', ctx) == dt.date(2021, 2, 3)
    assert E("date.year + count", ctx) == D(2023)
    assert E("sum + 1", ctx) == D(11)
    assert E("{f: function(x) x + 1, r: f(1)}.r", ctx) == D(2)


def test_paths_contexts_lists_filters():
    assert E('{a: 1, "b c": 2, d: {e: a + 1}}') == {"a": D(1), "b c": D(2), "d": {"e": D(2)}}
    assert E("{a: 1, b: a + 1}.b") == D(2)
    assert E("{a: {b: {c: 5}}}.a.b.c") == D(5)
    assert E("[{a: 1}, {a: 2}].a") == [D(1), D(2)]
    assert E("[1, 2, 3, 4][item > 2]") == [D(3), D(4)]
    assert E("[1, 2, 3][1]") == D(1)
    assert E("[1, 2, 3][-1]") == D(3)
    assert E("[1, 2, 3][4]") is None
    assert E("[{x: 1, y: 2}, {x: 3, y: 4}][x > 1].y") == [D(4)]
    assert E("[{x: 1}, {x: 3}][item.x = 1]") == [{"x": D(1)}]
    assert E("{a: 1}.b") is None
    assert E("5.a") is None
    assert E("[]") == []


def test_names_with_spaces_from_context():
    ctx = {"Applicant Age": 30, "Monthly Salary": 1000, "Date of Birth": dt.date(1990, 5, 1),
           "Rule 1": 7, "Approved/Declined": "yes", "Customer's Name": "Ann"}
    assert E("Applicant Age + 1", ctx) == D(31)
    assert E("12 * Monthly Salary", ctx) == D(12000)
    assert E("Date of Birth.year", ctx) == D(1990)
    assert E("Rule 1 * 2", ctx) == D(14)
    assert E("Approved/Declined", ctx) == "yes"
    assert E('"Hi " + Customer\'s Name', ctx) == "Hi Ann"
    assert E("{first name: 1, last name: 2}.last name") == D(2)


def test_temporal_literals_and_properties():
    assert E('date("2020-02-28") + duration("P1D")') == dt.date(2020, 2, 29)
    assert E('date("2020-01-31") + duration("P1M")') == dt.date(2020, 2, 29)
    assert E('date and time("2020-01-01T10:30:00")') == dt.datetime(2020, 1, 1, 10, 30)
    assert E('date and time("2020-01-01T10:30:00Z").hour') == D(10)
    assert E('time("10:30:00").minute') == D(30)
    assert E('time("10:30:00+02:00")') == dt.time(10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert E('duration("P1DT2H")') == dt.timedelta(days=1, hours=2)
    assert E('duration("P1Y2M")') == YearsMonthsDuration(14)
    assert E('duration("P1Y2M").years') == D(1) and E('duration("P1Y2M").months') == D(2)
    assert E('duration("P2DT3H").days') == D(2)
    assert E('@"2020-01-01"') == dt.date(2020, 1, 1)
    assert E('@"P1D"') == dt.timedelta(days=1)
    assert E('@"10:00:00"') == dt.time(10)
    assert E('date("2020-01-10") - date("2020-01-01")') == dt.timedelta(days=9)
    assert E('date("2020-13-01")') is None
    assert E('duration("P1Y1D")') is None
    assert str(YearsMonthsDuration(-14)) == "-P1Y2M"


def test_invalid_at_literal_is_null():
    # DMN 1.5 10.3.2.3.6: an @-string that is no date, time or duration is null (TCK 0093)
    assert E('@"not a date"') is None
    assert E('@"2021-02-30"') is None


def test_instance_of():
    assert E("1 instance of number") is True
    assert E('"a" instance of number') is False
    assert E('date("2020-01-01") instance of date') is True
    assert E('date and time("2020-01-01T00:00:00") instance of date and time') is True
    assert E('duration("P1M") instance of years and months duration') is True
    assert E("null instance of number") is False
    assert E("[1] instance of list") is True
    with pytest.raises(FEELError):
        E("1 instance of nosuchtype")


@pytest.mark.parametrize("tests, value, expected", [
    ("-", "anything", True), ("-", None, True),
    ("< 5", D(4), True), ("< 5", D(5), False), ("<= 5", D(5), True), ("> 5", 6, True), (">= 5", 4, False),
    ("< 5", "a", False), ("< 5", None, False),
    ("[1..10]", 10, True), ("[1..10[", 10, False), ("]1..10]", 1, False), ("(1..10)", 5, True),
    ('"a", "b"', "b", True), ('"a", "b"', "c", False),
    ('not("a", "b")', "c", True), ('not("a", "b")', "a", False), ("not(< 5)", 3, False),
    ("null", None, True), ("null", 1, False), ("not(null)", 1, True),
    ("? > 5 and ? < 10", 7, True), ("? > 5 and ? < 10", 11, False),
    ("true", True, True), ("true", False, False), ("false", True, False), ("true", None, False),
    ('>= date("2020-01-01")', dt.date(2020, 6, 1), True),
    ('>= date("2020-01-01")', dt.date(2019, 6, 1), False),
    ("5", D("5.0"), True), ("[1, 2, 3]", 2, True), ("= 5", 5, True), ("!= 5", 5, False),
    ("count(?) > 1", [1, 2], True), ("list contains(?, 3)", [1, 2], False),
])
def test_unary_tests(tests, value, expected):
    assert T(tests, value) is expected


def test_unary_tests_with_context():
    assert T("< limit", 5, {"limit": 10}) is True
    assert T("limit", 10, {"limit": 10}) is True
    assert T("limit > 3", 99, {"limit": 10}) is True  # a boolean expression without ? decides


@pytest.mark.parametrize("bad, column", [("1 +", 4), ("(1", 3), ('"unterminated', 1), ("a $ b", 3),
                                          ("if 1 then 2", 12), ("1 2", 3)])
def test_syntax_errors_give_column(bad, column):
    with pytest.raises(FEELSyntaxError) as info:
        E(bad)
    assert info.value.details["expression"] == bad
    assert info.value.details["column"] == column
    assert f"column {column}" in info.value.message
    assert isinstance(info.value, FEELError)


def test_inputs_are_converted():
    assert E("x", {"x": 3}) == D(3) and type(E("x", {"x": 3})) is D
    assert E("x", {"x": 0.1}) == D("0.1")
    assert E("x + 1", {"x": True}) is None
    assert E("x.a", {"x": {"a": (1, 2)}}) == [D(1), D(2)]
    with pytest.raises(EvaluationError):
        E("x", {"x": object()})
    with pytest.raises(EvaluationError):
        E("x", {"x": float("nan")})


def test_range_values():
    r = E("[1..5)")
    assert r == Range(D(1), D(5), True, False)
    assert E("[1..5).start included") is True
    assert E('[5..1]') is not None and E('[1.."a"]') is None


def test_comments_are_ignored():
    assert E("1 + // one\n 2") == D(3)
    assert E("1 /* plus */ + 2") == D(3)
