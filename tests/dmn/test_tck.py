"""The DMN TCK compliance-level-2 suite, run against tiergate's DMN engine.

Each ``testCase`` of each ``*-test-01.xml`` is one pytest test (id ``<model folder>/<case id>``);
a test case can check several decisions (``resultNode``), and the TCK counts those: 126 result
nodes in 116 test cases. ``test_tck_summary`` prints a per-case table (``pytest -s``) and asserts
the exact pass count and the exact set of known failures.

Comparison follows FEEL: numbers by value (``1.0`` equals ``1``), with a relative tolerance of
1e-12, because a few expected decimals of the suite were produced with binary floating point:
0008/002 expects ``562.707359373292`` where the exact value (and ours, 34 digits) is
``562.70735937326592...``. An expected ``errorResult`` passes when the engine raises a tiergate
error or returns null.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tiergate.dmn import load_dmn
from tiergate.dmn.feel.types import parse_date, parse_date_and_time, parse_duration, parse_time
from tiergate.errors import TiergateError

CORPUS = Path(__file__).resolve().parents[1] / "data"
TCK = CORPUS / "dmn-tck" / "compliance-level-2"
NS = "{http://www.omg.org/spec/DMN/20160719/testcase}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"

#: Result nodes ("<folder>/<case>/<decision>") that are known not to pass, with the reason.
#: Keep in sync with docs/dmn.md ("TCK").
KNOWN_FAILURES: dict[str, str] = {}
#: Result nodes of the suite and how many of them pass.
TOTAL_RESULT_NODES = 126
EXPECTED_PASSES = 126


def _value(node: etree._Element | None) -> Any:
    """The expected/input value held by a TCK value node (value, component*, list)."""
    if node is None:
        return None
    components = node.findall(NS + "component")
    if components:
        return {c.get("name"): _value(c) for c in components}
    lst = node.find(NS + "list")
    if lst is not None:
        return [_value(item) for item in lst.findall(NS + "item")]
    value = node.find(NS + "value")
    if value is None or value.get(XSI + "nil") == "true":
        return None
    return _typed(value.get(XSI + "type") or "xsd:string", value.text or "")


def _typed(xsd_type: str, text: str) -> Any:
    local = xsd_type.split(":")[-1]
    if local in ("decimal", "double", "float", "integer", "int", "long"):
        return Decimal(text.strip())
    if local == "boolean":
        return text.strip() == "true"
    if local == "date":
        return parse_date(text.strip())
    if local == "dateTime":
        return parse_date_and_time(text.strip())
    if local == "time":
        return parse_time(text.strip())
    if local in ("duration", "dayTimeDuration", "yearMonthDuration"):
        return parse_duration(text.strip())
    return text


def _cases() -> list[dict]:
    if not TCK.is_dir():
        return []
    cases = []
    for test_file in sorted(TCK.glob("*/*-test-01.xml")):
        root = etree.parse(str(test_file)).getroot()
        model = test_file.parent / root.findtext(NS + "modelName").strip()
        for case in root.findall(NS + "testCase"):
            inputs = {n.get("name"): _value(n) for n in case.findall(NS + "inputNode")}
            results = [(r.get("name"), r.get("errorResult") == "true", _value(r.find(NS + "expected")))
                       for r in case.findall(NS + "resultNode")]
            cases.append({"id": f"{test_file.parent.name}/{case.get('id')}", "model": model,
                          "inputs": inputs, "results": results})
    return cases


CASES = _cases()
_TOLERANCE = Decimal("1e-12")


def same(actual: Any, expected: Any) -> bool:
    """FEEL-style comparison of an engine value with a TCK expected value."""
    if expected is None:
        return actual is None
    if isinstance(expected, Decimal):
        if actual.__class__ is not Decimal:
            return False
        return actual == expected or abs(actual - expected) <= _TOLERANCE * max(abs(expected), Decimal(1))
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            same(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            same(actual[k], v) for k, v in expected.items())
    if isinstance(expected, (dt.date, dt.time, dt.timedelta)):
        return type(actual) is type(expected) and actual == expected
    return type(actual) is type(expected) and actual == expected


@lru_cache(maxsize=None)
def _model(path: Path):
    return load_dmn(path)


def run_case(case: dict) -> list[tuple[str, bool, str]]:
    """[(result node key, passed, explanation)] for one test case."""
    out = []
    for name, error_expected, expected in case["results"]:
        key = f"{case['id']}/{name}"
        try:
            actual = _model(case["model"]).evaluate(name, case["inputs"]).value
        except TiergateError as exc:
            out.append((key, error_expected, f"raised {type(exc).__name__}: {exc.message}"))
            continue
        if error_expected:
            out.append((key, actual is None, f"expected an error, got {actual!r}"))
        else:
            out.append((key, same(actual, expected), f"expected {expected!r}, got {actual!r}"))
    return out


def test_corpus_present():
    assert TCK.is_dir(), f"the DMN TCK corpus is missing: expected it at {TCK}"
    assert sum(len(c["results"]) for c in CASES) == TOTAL_RESULT_NODES


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_tck_case(case):
    failures = [(key, why) for key, ok, why in run_case(case) if not ok and key not in KNOWN_FAILURES]
    assert not failures, failures


def test_tck_summary(capsys):
    rows = [row for case in CASES for row in run_case(case)]
    passed = [key for key, ok, _ in rows if ok]
    failed = {key: why for key, ok, why in rows if not ok}
    with capsys.disabled():
        print(f"\nDMN TCK compliance-level-2: {len(passed)} of {len(rows)} result nodes pass "
              f"({len(CASES)} test cases)")
        for key, ok, why in rows:
            print(f"  {'PASS' if ok else 'FAIL'}  {key}" + ("" if ok else f"  -- {why}"))
    assert len(rows) == TOTAL_RESULT_NODES
    assert set(failed) == set(KNOWN_FAILURES), failed
    assert len(passed) == EXPECTED_PASSES
