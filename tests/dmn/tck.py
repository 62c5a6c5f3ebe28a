"""Run the DMN TCK (tests/data/dmn-tck) against tiergate's DMN engine, scored as the TCK scores.

    python tests/dmn/tck.py            # print the score of each folder
    python tests/dmn/tck.py --write    # also rewrite the known failures, docs/dmn-tck.md and the CSV

A result node (``resultNode`` of a ``testCase``) is one TCK result: the TCK's table counts those.
A model that does not load fails every result node of its test file. Comparison follows FEEL:
numbers by value (``1.0`` equals ``1``) with a relative tolerance of 1e-12, because a few
expected decimals were produced with binary floating point (level 2, 0008/002 expects
``562.707359373292`` where the exact value is ``562.70735937326592...``). An expected
``errorResult`` passes when the engine raises a tiergate error or answers null.

Each model is parsed once per process (``model()`` caches it, the load error too).
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "src") not in sys.path:  # run as a script from a worktree
    sys.path.insert(0, str(ROOT / "src"))

from tiergate.dmn import load_dmn  # noqa: E402
from tiergate.dmn.feel.types import (parse_date, parse_date_and_time, parse_duration,  # noqa: E402
                                     parse_time)
from tiergate.errors import TiergateError  # noqa: E402

TCK = ROOT / "tests" / "data" / "dmn-tck"
LEVELS = ("compliance-level-2", "compliance-level-3", "non-compliant")
KNOWN_FAILURES_FILE = Path(__file__).with_name("tck_known_failures.tsv")
DOC = ROOT / "docs" / "dmn-tck.md"
CSV_FILE = ROOT / "docs" / "tck_results.csv"
NS = "{http://www.omg.org/spec/DMN/20160719/testcase}"
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_TOLERANCE = Decimal("1e-12")  # relative, for large numbers
#: absolute: the comparison precision of jDMN's TCK runner (the engine that passes the whole TCK);
#: the suite writes computed values to 8 decimals (0052's exp(4) is 54.59815003)
_ABSOLUTE = Decimal("1e-8")


@dataclass
class Case:
    level: str
    folder: str           # the model folder, e.g. 0001-filter
    file: str             # the test file's stem, e.g. 0001-filter-test-01
    id: str               # the testCase id
    model: Path
    inputs: dict[str, Any]
    results: list[tuple[str, bool, Any]]   # (resultNode name, errorResult, expected value)
    invocable: str | None = None
    bad_value: str | None = None           # an input or expected value this runner cannot read

    @property
    def key(self) -> str:
        return f"{self.level}/{self.folder}/{self.id}"


@dataclass
class Outcome:
    case: Case
    nodes: list[tuple[str, bool, str]] = field(default_factory=list)  # (key, passed, why)

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.nodes)


class _Unreadable(Exception):
    pass


class Untyped(str):
    """A value written without ``xsi:type``: it matches a result whose text is the same
    (``true`` a boolean, ``500000`` a number), as the TCK's runners read such values by the
    model's types. An empty one (``<value/>``) is also met by null. Only the non-compliant folder
    uses them."""


def _value(node: etree._Element | None) -> Any:
    """The value held by a TCK value node (value, component*, list)."""
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
    xsd_type = value.get(XSI + "type")
    if xsd_type is None:
        return Untyped(value.text or "")
    try:
        return _typed(xsd_type, value.text or "")
    except Exception as exc:  # a value our parsers refuse: the case fails, the run goes on
        raise _Unreadable(f"{xsd_type} {value.text!r}: {exc}") from None


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


def cases(level: str) -> list[Case]:
    out = []
    for test_file in sorted((TCK / level).glob("*/*-test-*.xml")):
        root = etree.parse(str(test_file)).getroot()
        model = test_file.parent / root.findtext(NS + "modelName").strip()
        for tc in root.findall(NS + "testCase"):
            case = Case(level, test_file.parent.name, test_file.stem, tc.get("id"), model, {}, [],
                        tc.get("invocableName") if tc.get("type") == "decisionService" else None)
            try:
                case.inputs = {n.get("name"): _value(n) for n in tc.findall(NS + "inputNode")}
            except _Unreadable as exc:
                case.bad_value = f"input value not readable: {exc}"
            for r in tc.findall(NS + "resultNode"):
                try:
                    expected = _value(r.find(NS + "expected"))
                except _Unreadable as exc:
                    expected, case.bad_value = None, f"expected value not readable: {exc}"
                case.results.append((r.get("name"), r.get("errorResult") == "true", expected))
            out.append(case)
    return out


def same(actual: Any, expected: Any) -> bool:
    """FEEL-style comparison of an engine value with a TCK expected value."""
    if expected is None:
        return actual is None
    if isinstance(expected, Untyped):
        if actual is None:  # <value/>, empty and untyped, writes no value
            return expected == ""
        if actual.__class__ is bool:
            return expected == ("true" if actual else "false")
        if actual.__class__ is Decimal:
            try:
                return Decimal(expected) == actual
            except ArithmeticError:
                return False
        return actual.__class__ is str and actual == expected
    if isinstance(expected, Decimal):
        if actual.__class__ is not Decimal:
            return False
        diff = abs(actual - expected)
        return diff < _ABSOLUTE or diff <= _TOLERANCE * max(abs(expected), Decimal(1))
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            same(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            same(actual[k], v) for k, v in expected.items())
    return type(actual) is type(expected) and actual == expected


@lru_cache(maxsize=None)
def model(path: Path):
    """The loaded model, or the text of the error that stopped it loading."""
    try:
        return load_dmn(path)
    except TiergateError as exc:
        return f"{type(exc).__name__}: {exc.message}"
    except Exception as exc:  # an engine bug: report it as a failure of this model
        return f"crash {type(exc).__name__}: {exc}"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).replace(str(ROOT) + "/", "").split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run(case: Case) -> Outcome:
    outcome = Outcome(case)
    loaded = model(case.model)
    for name, error_expected, expected in case.results:
        key = f"{case.key}/{name}"
        if isinstance(loaded, str):
            outcome.nodes.append((key, False, _short(f"model does not load: {loaded}")))
            continue
        if case.bad_value:
            outcome.nodes.append((key, False, _short(case.bad_value)))
            continue
        try:
            actual = loaded.evaluate(case.invocable or name, _typed_inputs(loaded, case.inputs))
            value = actual.value
            if case.invocable and isinstance(value, dict) and name != case.invocable:
                value = value.get(name)
        except TiergateError as exc:
            outcome.nodes.append((key, error_expected, _short(f"raised {type(exc).__name__}: {exc.message}")))
            continue
        except Exception as exc:
            outcome.nodes.append((key, False, _short(f"crash {type(exc).__name__}: {exc}")))
            continue
        if error_expected:
            outcome.nodes.append((key, value is None, _short(f"expected an error, got {value!r}")))
        else:
            outcome.nodes.append((key, same(value, expected), _short(f"expected {expected!r}, got {value!r}")))
    return outcome


def _typed_inputs(loaded, inputs: dict[str, Any]) -> dict[str, Any]:
    """Untyped input values read by the type of their inputData (number, boolean, dates, and
    the components of structured types), as the TCK's runners do."""
    def convert(value: Any, spec) -> Any:
        while spec is not None and spec.ref is not None and not spec.is_collection:
            spec = spec.ref
        if isinstance(value, list):
            item = spec
            if spec is not None and spec.is_collection:
                item = spec.ref if spec.ref is not None else _item_of(spec)
            return [convert(v, item) for v in value]
        if isinstance(value, dict):
            parts = getattr(spec, "components", None) or {}
            return {k: convert(v, parts.get(k)) for k, v in value.items()}
        if not isinstance(value, Untyped):
            return value
        base = getattr(spec, "base", None)
        if base == "number":
            return Decimal(value)
        if base == "boolean":
            return value == "true"
        if base in ("date", "date and time", "time") and str(value):
            return _typed({"date": "date", "date and time": "dateTime", "time": "time"}[base], str(value))
        return str(value)

    out = {}
    for key, value in inputs.items():
        out[key] = convert(value, loaded._input_specs.get(key))
    return out


def _item_of(spec):
    """The type of one item of a collection type declared with a base or components."""
    from types import SimpleNamespace

    return SimpleNamespace(ref=None, is_collection=False, base=spec.base, components=spec.components)


@lru_cache(maxsize=None)
def outcomes(level: str) -> tuple[Outcome, ...]:
    return tuple(run(c) for c in cases(level))


def known_failures() -> dict[str, str]:
    """Result-node key -> reason, from tck_known_failures.tsv."""
    out = {}
    if KNOWN_FAILURES_FILE.exists():
        for line in KNOWN_FAILURES_FILE.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                key, _, why = line.partition("\t")
                out[key] = why
    return out


def write_reports() -> None:
    rows = {level: outcomes(level) for level in LEVELS}
    lines = ["# Result nodes of the DMN TCK that tiergate does not pass, with the reason.",
             "# Written by `python tests/dmn/tck.py --write`; tests/dmn/test_tck.py compares."]
    for level in LEVELS:
        lines += [f"{k}\t{why}" for o in rows[level] for k, ok, why in o.nodes if not ok]
    KNOWN_FAILURES_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with CSV_FILE.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for level in LEVELS:
            for o in rows[level]:
                detail = "; ".join(why for _, ok, why in o.nodes if not ok)
                writer.writerow([f"{level}/{o.case.folder}", o.case.file, o.case.id,
                                 "SUCCESS" if o.passed else "ERROR", detail])
    DOC.write_text(_doc(rows), encoding="utf-8")


def _doc(rows: dict[str, tuple[Outcome, ...]]) -> str:
    out = ["# DMN TCK results", "",
           "Written by `python tests/dmn/tck.py --write` from the TCK copy in `tests/data/dmn-tck`",
           "(source commit in `tests/data/README.md`); `tests/dmn/test_tck.py` fails when a result",
           "changes. Scored as the TCK scores: a result is one `resultNode`, and a model that does not",
           "load fails all its results. Every test case's outcome, in the TCK's results format, is in",
           "[tck_results.csv](tck_results.csv). See [dmn.md](dmn.md) for the engine.", "",
           "| folder | results | passed |", "|---|---:|---:|"]
    for level in LEVELS:
        nodes = [n for o in rows[level] for n in o.nodes]
        out.append(f"| **{level}** | **{len(nodes)}** | **{sum(ok for _, ok, _ in nodes)}** |")
    out += ["", "## Per test case", "",
            "| test case | results | passed | reason of a failure |", "|---|---:|---:|---|"]
    for level in LEVELS:
        for o in rows[level]:
            why = next((w for _, ok, w in o.nodes if not ok), "")
            out.append(f"| {o.case.key} | {len(o.nodes)} | {sum(ok for _, ok, _ in o.nodes)} | "
                       f"{why.replace('|', '¦')} |")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    for level in LEVELS:
        nodes = [n for o in outcomes(level) for n in o.nodes]
        passed = sum(ok for _, ok, _ in nodes)
        print(f"{level}: {passed} of {len(nodes)} results pass")
        reasons = Counter(why.split(":")[0] if why.startswith("model does not load") else why[:60]
                          for _, ok, why in nodes if not ok)
        if "-v" in argv:
            for why, n in reasons.most_common(40):
                print(f"  {n:5}  {why}")
    if "--write" in argv:
        write_reports()
        print(f"wrote {KNOWN_FAILURES_FILE.relative_to(ROOT)}, {DOC.relative_to(ROOT)}, "
              f"{CSV_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
