"""FEEL features added for the TCK's level 3 (the TCK covers them too; these pin the behaviour)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from tiergate.dmn import Range
from tiergate.dmn import evaluate_expression as E


@pytest.mark.parametrize("text, expected", [
    ("1.23e4 = 12300", True),
    ("3 ** 4 ** 5", D(3) ** 20),                       # left-associative
    ("-3 ** 2", D(9)),                                 # negation binds tighter
    ("(< 10) = (null..10)", False),                    # a null end is not unbounded
    ("(< 10).end", D(10)),
    ("5 in (< 10)", True),
    ("5 in [[1..3], [4..6]]", True),
    ("[1,2] in [[1,2,3], [1,2]]", True),
    ("[1, 2] instance of list<number>", True),
    ('[1, "a"] instance of list<number>', False),
    ('{a: "x"} instance of context<a: string>', True),
    ('{a: 1} instance of context<a: string>', False),
    ("(function(x) x) instance of function<Any> -> Any", True),
    ("(function(x, y) x) instance of function<Any> -> Any", False),
    ("[1..2] instance of range<number>", True),
    ("{foo+bar: 1, b: 2}.b", D(2)),
    ('string({"{": 1})', '{"{": 1}'),
    ("{a: 1, a: 2}", None),                            # duplicate keys: an error
    ('@"not a date"', None),
    ('@"2021-01-01T24:00:00"', dt.datetime(2021, 1, 2)),
])
def test_expressions(text, expected):
    assert E(text) == expected


@pytest.mark.parametrize("text, expected", [
    ('range("[1..3]")', Range(D(1), D(3), True, True)),
    ('range(">= 10")', None),                          # a unary test is no range literal
    ('range("[x..3]")', None),                         # endpoints must be literals
    ('range("[3..1]")', None),
    ("before(1, 2)", True),
    ("before([1..5], 5)", False),
    ("before([1..5), 5)", True),
    ("after(10, [1..10))", True),
    ("meets([1..5], [5..10])", True),
    ("meets([1..5), [5..10])", False),
    ("overlaps([1..5], [3..8])", True),
    ("overlaps before([1..5], [3..8])", True),
    ("finishes(10, [1..10])", True),
    ("includes([1..10], [2..3])", True),
    ("during(5, [1..10])", True),
    ("starts(1, [1..10])", True),
    ("started by([1..10], [1..5])", True),
    ("coincides([1..5], [1..5])", True),
    ("before(point1: 1, point2: 2)", True),
    ('before(1, "a")', None),
    ("list replace([1, 2, 3], 2, 9)", [D(1), D(9), D(3)]),
    ("list replace([1, 2, 3], -1, 9)", [D(1), D(2), D(9)]),
    ("list replace([1, 2, 3], function(item, newItem) item > 1, 0)", [D(1), D(0), D(0)]),
    ("list replace([1, 2, 3], 4, 9)", None),
    ('string join("a", "X")', "a"),
    ('context merge({"a": 1})', {"a": D(1)}),
    ("sum()", None),
])
def test_builtins(text, expected):
    assert E(text) == expected


def test_for_over_dates_goes_day_by_day():
    assert E('for d in @"1980-01-01"..@"1980-01-03" return d') == [
        dt.date(1980, 1, 1), dt.date(1980, 1, 2), dt.date(1980, 1, 3)]
    assert E("for i in [1..3] return i") is None       # a range literal is not iterable


@pytest.mark.parametrize("text, expected", [
    ('string(@"-2021-01-31T10:10:10+11:00" + @"P1M")', "-2021-02-28T10:10:10+11:00"),
    ('string(@"-2020-02-29" + @"P1Y")', "-2019-02-28"),    # -2020 is a leap year, -2019 is not
    ('string(@"-2021-01-01T10:10:10@Australia/Melbourne" - @"P1D")',
     "-2022-12-31T10:10:10@Australia/Melbourne"),
    ('string(@"9999-12-31" + @"P1D")', "10000-01-01"),     # crossing Python's last year
    ('@"10000-01-01" - @"P1D" = @"9999-12-31"', True),    # and back to a plain date
    ('string(date(-999999999, 12, 31))', "-999999999-12-31"),
    ("date(1000000000, 1, 1)", None),                      # beyond FEEL's years
    ('@"-2021-01-01" < @"2021-01-01"', True),
    ('@"-2021-01-01" = @"-2021-01-01"', True),
    ('@"-2021-01-01T10:00:00Z" - @"-2021-01-01T09:00:00+01:00"', dt.timedelta(hours=2)),
    ('@"-2021-01-01T10:00:00" - @"-2021-01-01T09:00:00Z"', None),  # local minus zoned
    ('@"10000-01-02" - @"9999-12-31"', dt.timedelta(days=2)),
    ('@"-0001-01-01".weekday', D(5)),                      # proleptic Gregorian: a Friday
    ('day of year(@"-2021-06-01")', D(152)),
    ('@"-2021-06-01T01:02:03@Europe/Paris".timezone', "Europe/Paris"),
    ('@"-2021-06-01" instance of date', True),
    ('string(sort([@"2000-01-01", @"-0005-01-01", @"10000-01-01"]))',
     "[-0005-01-01, 2000-01-01, 10000-01-01]"),
    ('years and months duration(date("-2016-01-30"), date("-2017-02-28"))',
     E('@"-P11M"')),
])
def test_years_outside_python(text, expected):
    assert E(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("5 in [1..null]", None),                          # a null end: the test is null
    ("5 in (null..10]", None),
    ("(= 10).start included", True),
    ("(= 10) = [10..10]", False),                      # the test's range is not the literal
    ("5 in (= 5)", True),
    ('is(value1: @"2021-02-13")', False),              # the omitted argument is null
    ('time("10:30:00.0001") = time("10:30:00.0002")', True),  # equality to the second
    ('date and time("2018-12-08T00:00:00.0001") = date and time("2018-12-08T00:00:00")', True),
    ('time("10:30:00.0001") < time("10:30:00.0002")', True),
    ("list replace([2, 4], function(item, newItem) item, 5)", None),  # a match must be boolean
    ('context put(context: {y: {a: 0}}, key: ["y", "a"], value: 2)', None),
    ('context put(context: {y: {a: 0}}, keys: ["y", "a"], value: 2)', {"y": {"a": D(2)}}),
    ('matches("hello world", "\\p{ I s B a s i c L a t i n }+", "x")', True),
    ('matches("héllo", "^\\p{IsBasicLatin}+$")', False),
    ('matches("hello", "^[\\p{IsBasicLatin}]+$")', True),
    ("non_existing_function()", None),
    ('"abs"(-1)', None),
    ('string(@"2021-01-02" - @"2021-01-01T10:10:10+11:00")', "P1DT49M50S"),  # date: midnight UTC
    ('@"2021-01-02" - @"2021-01-01T10:10:10"', None),  # against a local date and time: null
    ('string(time(11, 59, 45, duration("-PT2H45M55S")))', "11:59:45-02:45:55"),
])
def test_single_cases(text, expected):
    assert E(text) == expected


@pytest.mark.parametrize("text, expected", [
    ('string(@"10:15:30.123456789+02:00")', "10:15:30.123456789+02:00"),
    ('@"10:15:30.123456789".second', D("30.123456789")),
    ('@"10:15:30.123456789" > @"10:15:30.123456788"', True),
    ('@"10:15:30.123456789" = @"10:15:30"', True),           # equality to the second
    ('string(@"10:15:30.123456789" + @"PT1S")', "10:15:31.123456789"),
    ('@"10:15:31.5" - @"10:15:30.123456789"', dt.timedelta(seconds=1, microseconds=376543)),
    ('string(date and time(date("2017-01-01"), time("23:59:01.123456789@Europe/Paris")))',
     "2017-01-01T23:59:01.123456789@Europe/Paris"),
    ('string(@"2011-12-31T10:15:30.123456789Z" + @"P1M")', "2012-01-31T10:15:30.123456789Z"),
    ('@"2011-12-31T10:15:30.123456789Z" > @"2011-12-31T10:15:30.123456Z"', True),
    ('date(@"2011-12-31T10:15:30.123456789Z") = @"2011-12-31"', True),
    ('string(time(@"2011-12-31T10:15:30.000000001@Europe/Paris"))', "10:15:30.000000001@Europe/Paris"),
    ('@"10:15:30.123456789" instance of time', True),
    ('string(date and time("-999999999-12-31T23:59:59.999999999+02:00"))',
     "-999999999-12-31T23:59:59.999999999+02:00"),
])
def test_nanoseconds(text, expected):
    assert E(text) == expected


def test_far_and_nano_values_have_json_forms():
    from tiergate.jsonutil import to_jsonable

    values = {"a": E('@"-2021-01-01T10:00:00+01:00"'), "b": E('@"10:00:00.123456789Z"'),
              "c": E('@"99999-01-01"'), "n": E('@"2021-01-01T10:00:00.5000001Z"')}
    assert to_jsonable(values) == {"a": "-2021-01-01T10:00:00+01:00", "b": "10:00:00.123456789+00:00",
                                   "c": "99999-01-01", "n": "2021-01-01T10:00:00.5000001+00:00"}
