"""FEEL built-in functions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tiergate.dmn import YearsMonthsDuration, evaluate_expression as E

D = Decimal


@pytest.mark.parametrize("text, expected", [
    # strings
    ('substring("foobar", 3)', "obar"), ('substring("foobar", 3, 3)', "oba"),
    ('substring("foobar", -2, 1)', "a"), ('substring("foobar", 0)', None),
    ('string length("foo")', D(3)), ('upper case("aBc4")', "ABC4"), ('lower case("aBc4")', "abc4"),
    ('substring before("foobar", "bar")', "foo"), ('substring before("foobar", "xyz")', ""),
    ('substring after("foobar", "ob")', "ar"), ('substring after("", "a")', ""),
    ('replace("abcd", "(ab)|(a)", "[1=$1][2=$2]")', "[1=ab][2=]cd"),
    ('replace("a.b.c", "\\.", "-")', "a-b-c"), ('replace("Abc", "b", "X", "i")', "AXc"),
    ('contains("foobar", "of")', False), ('contains("foobar", "ob")', True),
    ('starts with("foobar", "fo")', True), ('ends with("foobar", "r")', True),
    ('matches("foobar", "^fo*b")', True), ('matches("FOO", "foo", "i")', True),
    ('matches("foo", "[")', None),
    ('split("John Doe", "\\s")', ["John", "Doe"]), ('split("a;b;c", ";")', ["a", "b", "c"]),
    ('string join(["a", "b", "c"], ", ")', "a, b, c"), ('string join(["a", null, "c"])', "ac"),
    ('string length(5)', None), ('upper case(null)', None),
    # numbers
    ("decimal(1/3, 2)", D("0.33")), ("decimal(1.5, 0)", D(2)), ("decimal(2.5, 0)", D(2)),
    ("floor(1.5)", D(1)), ("floor(-1.5)", D(-2)), ("floor(1.56, 1)", D("1.5")),
    ("ceiling(1.5)", D(2)), ("ceiling(-1.5)", D(-1)),
    ("round up(5.5, 0)", D(6)), ("round up(-5.5, 0)", D(-6)), ("round down(5.5, 0)", D(5)),
    ("round half up(5.5, 0)", D(6)), ("round half up(-5.5, 0)", D(-6)),
    ("round half down(5.5, 0)", D(5)), ("round half down(-5.5, 0)", D(-5)),
    ("abs(-10)", D(10)), ('abs(duration("-P1D"))', dt.timedelta(days=1)),
    ("modulo(12, 5)", D(2)), ("modulo(-12, 5)", D(3)), ("modulo(12, -5)", D(-3)), ("modulo(1, 0)", None),
    ("sqrt(16)", D(4)), ("sqrt(-1)", None), ("log(1)", D(0)), ("log(0)", None), ("exp(0)", D(1)),
    ("odd(5)", True), ("odd(2)", False), ("even(2)", True), ("even(2.5)", None),
    # lists
    ("list contains([1, 2, 3], 2)", True), ("list contains([1, null], null)", True),
    ("count([1, 2, 3])", D(3)), ("count([])", D(0)),
    ("min([1, 2, 3])", D(1)), ("min(1, 2, 3)", D(1)), ("max([1, 2, 3])", D(3)), ("min([])", None),
    ('max("a", "c", "b")', "c"), ('min([1, "a"])', None),
    ("sum([1, 2, 3])", D(6)), ("sum(1, 2, 3)", D(6)), ("sum([])", None), ('sum([1, "a"])', None),
    ("mean([1, 2, 3])", D(2)), ("mean(1, 2, 3, 4)", D("2.5")), ("mean([])", None),
    ("median([8, 2, 5, 3, 4])", D(4)), ("median([6, 1, 2, 3])", D("2.5")), ("median([])", None),
    ("stddev(2, 4, 7, 5)", D("2.081665999466132735282297706979931")), ("stddev([1])", None),
    ("mode([6, 3, 9, 6, 6])", [D(6)]), ("mode([6, 1, 9, 6, 1])", [D(1), D(6)]), ("mode([])", []),
    ("all([true, true])", True), ("all([true, false])", False), ("all([true, null])", None),
    ("all([])", True), ("and([true, false])", False), ("or(false, true)", True), ("true and and([true])", True),
    ("any([false, true])", True), ("any([false, null])", None), ("any([])", False),
    ("sublist([4, 5, 6], 1, 2)", [D(4), D(5)]), ("sublist([4, 5, 6], -2)", [D(5), D(6)]),
    ("append([1], 2, 3)", [D(1), D(2), D(3)]), ("concatenate([1, 2], [3])", [D(1), D(2), D(3)]),
    ("insert before([1, 3], 1, 2)", [D(2), D(1), D(3)]), ("remove([1, 2, 3], 2)", [D(1), D(3)]),
    ("reverse([1, 2, 3])", [D(3), D(2), D(1)]), ("index of([1, 2, 3, 2], 2)", [D(2), D(4)]),
    ("union([1, 2], [2, 3])", [D(1), D(2), D(3)]), ("distinct values([1, 2, 3, 2, 1])", [D(1), D(2), D(3)]),
    ("flatten([[1, 2], [[3]], 4])", [D(1), D(2), D(3), D(4)]), ("product([2, 3, 4])", D(24)),
    ("product(2, 3)", D(6)), ("sort([3, 1, 4, 2])", [D(1), D(2), D(3), D(4)]),
    ("sort([3, 1, 4, 2], function(x, y) x > y)", [D(4), D(3), D(2), D(1)]),
    ('sort(list: ["b", "a"], precedes: function(x, y) x < y)', ["a", "b"]),
    ("count(5)", None),
    # dates and times
    ('date("2012-12-25")', dt.date(2012, 12, 25)), ("date(2012, 12, 25)", dt.date(2012, 12, 25)),
    ('date(date and time("2012-12-25T12:00:00"))', dt.date(2012, 12, 25)),
    ('time("23:59:00")', dt.time(23, 59)), ("time(23, 59, 0)", dt.time(23, 59)),
    ('time(23, 59, 0, duration("PT1H"))', dt.time(23, 59, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ('date and time("2012-12-24T23:59:00")', dt.datetime(2012, 12, 24, 23, 59)),
    ('date and time(date("2012-12-24"), time("23:59:00"))', dt.datetime(2012, 12, 24, 23, 59)),
    ('duration("P2DT20H14M")', dt.timedelta(days=2, hours=20, minutes=14)),
    ('duration("P2Y2M")', YearsMonthsDuration(26)),
    ('years and months duration(date("2011-12-22"), date("2013-08-24"))', YearsMonthsDuration(20)),
    ('day of week(date("2019-09-17"))', "Tuesday"), ('day of year(date("2019-09-17"))', D(260)),
    ('month of year(date("2019-09-17"))', "September"), ('week of year(date("2019-09-17"))', D(38)),
    ('week of year(date("2005-01-01"))', D(53)),
    # conversion
    ('number("1 000,0", " ", ",")', D(1000)), ('number("12.5")', D("12.5")), ('number("x")', None),
    ("string(1.1)", "1.1"), ("string(10/5)", "2"), ("string(true)", "true"), ("string(null)", None),
    ('string(date("2020-01-02"))', "2020-01-02"), ('string(duration("P1DT1H"))', "P1DT1H"),
    ('string(duration("P14M"))', "P1Y2M"), ('string([1, "a"])', '[1, "a"]'),
    ('string(time("10:00:00Z"))', "10:00:00Z"),
    # boolean, misc, contexts
    ("not(false)", True), ("is(1, 1.0)", True), ('is(1, "1")', False),
    ('is(date("2020-01-01"), date and time("2020-01-01T00:00:00"))', False),
    ("get or else(null, 3)", D(3)), ("get or else(1, 3)", D(1)),
    ('get value({a: 1}, "a")', D(1)), ('get value({a: 1}, "b")', None),
    ("get entries({a: 1, b: 2})", [{"key": "a", "value": D(1)}, {"key": "b", "value": D(2)}]),
    ('context put({a: 1}, "b", 2)', {"a": D(1), "b": D(2)}),
    ("context merge([{a: 1}, {a: 2, b: 3}])", {"a": D(2), "b": D(3)}),
    ('context([{key: "a", value: 1}])', {"a": D(1)}),
])
def test_builtin(text, expected):
    assert E(text) == expected


def test_now_and_today():
    assert isinstance(E("now()"), dt.datetime)
    assert E("today()") == dt.date.today()


def test_builtin_can_be_passed_as_value():
    assert E("{f: max, r: f([1, 5])}.r") == D(5)
