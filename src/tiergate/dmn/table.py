"""Decision tables: compiled once at load time, then evaluated with the hit policies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lxml import etree

from ..errors import EvaluationError
from .compiling import TRACE, Compiler
from .feel import ops
from .feel.builtins import BUILTINS, invoke
from .feel.interpreter import CompileInfo, Scope
from .feel.unary import compile_test
from .model import InputClauseInfo, OutputClauseInfo, RuleInfo, TableInfo
from .typeref import FAIL

HIT_POLICIES = {"UNIQUE", "ANY", "FIRST", "PRIORITY", "RULE ORDER", "OUTPUT ORDER", "COLLECT"}
_ABBREVIATIONS = {"U": "UNIQUE", "A": "ANY", "F": "FIRST", "P": "PRIORITY", "R": "RULE ORDER",
                  "O": "OUTPUT ORDER", "C": "COLLECT"}
AGGREGATIONS = {"SUM", "MIN", "MAX", "COUNT"}
_MULTI = {"RULE ORDER", "OUTPUT ORDER", "COLLECT"}


class _Rule:
    __slots__ = ("id", "tests", "outputs")

    def __init__(self, rule_id: str, tests: tuple, outputs: tuple):
        self.id, self.tests, self.outputs = rule_id, tests, outputs


def compile_table(c: Compiler, el: etree._Element, decision_id: str, names: frozenset[str]):
    """Compile ``<decisionTable>`` ``el``; returns (run(env) -> value, TableInfo)."""
    r = c.reader
    hit = (el.get("hitPolicy") or "UNIQUE").strip().upper()
    hit = _ABBREVIATIONS.get(hit, hit)
    if hit not in HIT_POLICIES:
        raise r.error(el, f"unknown hitPolicy {hit!r}; use one of {', '.join(sorted(HIT_POLICIES))}")
    aggregation = (el.get("aggregation") or "").strip().upper() or None
    if aggregation is not None and (hit != "COLLECT" or aggregation not in AGGREGATIONS):
        raise r.error(el, f"aggregation {aggregation!r} is only valid with hitPolicy COLLECT and "
                      "must be SUM, MIN, MAX or COUNT")
    base = {"decision": decision_id}

    input_fns, input_infos, implicit = [], [], []
    for i, inp in enumerate(r.children(el, "input"), 1):
        expr_el = r.child(inp, "inputExpression")
        if expr_el is None:
            raise r.error(inp, "input clause without <inputExpression>")
        text = r.text(expr_el)
        where = {**base, "column_kind": "input", "column": i, "column_label": inp.get("label")}
        compiled, new_names = c.input_expr(text, names, expr_el, where)
        input_fns.append(compiled.fn)
        implicit.extend(new_names)
        input_infos.append(InputClauseInfo(inp.get("id"), inp.get("label"), text or "",
                                           expr_el.get("typeRef"), r.text(r.child(inp, "inputValues"))))
    # implicit inputs (names the input expressions read that are not in scope, see
    # Compiler.input_expr) are in scope for this table's cells and default outputs
    names = names | frozenset(implicit)

    outputs = list(r.children(el, "output"))
    if not outputs:
        raise r.error(el, "decision table without an <output> clause")
    if len(outputs) > 1 and any(not o.get("name") for o in outputs):
        raise r.error(el, "a table with several outputs needs a name on every <output>")
    output_infos, priorities, defaults, coercers = [], [], [], []
    for i, out in enumerate(outputs, 1):
        where = {**base, "column_kind": "output", "column": i, "column_label": out.get("name")}
        values_text = r.text(r.child(out, "outputValues"))
        default_text = r.text(r.child(out, "defaultOutputEntry"))
        priorities.append(_priority_tests(c, values_text, out, where) if values_text else [])
        defaults.append(c.expr(default_text, names, out, where).fn if default_text else None)
        spec = c.types.get(out.get("typeRef"), out)
        coercers.append(spec.coerce if spec is not None and spec.base != "Any" else None)
        output_infos.append(OutputClauseInfo(out.get("id"), out.get("name"), out.get("label"),
                                             out.get("typeRef"), values_text, default_text))
    out_names = [o.get("name") for o in outputs]
    if aggregation is not None and len(outputs) > 1:
        raise r.error(el, f"COLLECT {aggregation} needs exactly one output column, not {len(outputs)}")

    rules, rule_infos = [], []
    n_in, n_out = len(input_fns), len(outputs)
    for index, rule_el in enumerate(r.children(el, "rule"), 1):
        rule_id = rule_el.get("id") or f"{decision_id}#{index}"
        where = {**base, "rule": rule_id, "rule_index": index}
        entries = list(r.children(rule_el, "inputEntry"))
        out_entries = list(r.children(rule_el, "outputEntry"))
        if len(entries) != n_in or len(out_entries) != n_out:
            raise r.error(rule_el, f"rule #{index} has {len(entries)} input and {len(out_entries)} "
                          f"output entries; the table has {n_in} inputs and {n_out} outputs",
                          decision=decision_id, rule=rule_id)
        tests, in_texts = [], []
        for col, entry in enumerate(entries):
            text = r.text(entry)
            in_texts.append(text or "")
            if not text or text == "-":
                continue
            w = {**where, "column_kind": "input", "column": col + 1, "column_label": input_infos[col].label}
            tests.append((col, c.tests(text, names, entry, w).fn))
        out_fns, out_texts = [], []
        for col, entry in enumerate(out_entries):
            text = r.text(entry)
            out_texts.append(text or "")
            w = {**where, "column_kind": "output", "column": col + 1, "column_label": out_names[col]}
            if not text:
                out_fns.append(lambda env: None)
                continue
            out_fns.append(c.expr(text, names, entry, w).fn)
        notes = tuple(r.text(a) or "" for a in r.children(rule_el, "annotationEntry"))
        rules.append(_Rule(rule_id, tuple(tests), tuple(out_fns)))
        rule_infos.append(RuleInfo(rule_id, index, tuple(in_texts), tuple(out_texts), notes,
                                   r.text(rule_el, "description")))

    info = TableInfo(el.get("id"), hit, aggregation, tuple(input_infos), tuple(output_infos),
                     tuple(rule_infos), tuple(a.get("name") or "" for a in r.children(el, "annotation")))
    run = _make_runner(hit, aggregation, input_fns, rules, out_names, priorities, defaults, coercers,
                       decision_id)
    return run, info


def _priority_tests(c: Compiler, text: str, el: etree._Element, where: dict) -> list:
    compiled = c.tests(text, (), el, where)  # validates the text and reports errors with location
    return [compile_test(t, Scope(frozenset(), CompileInfo())) for t in compiled.ast[1]]


def _make_runner(hit, aggregation, input_fns, rules, out_names, priorities, defaults, coercers,
                 decision_id):
    single_output = len(out_names) == 1
    first_only = hit == "FIRST"

    def outputs_of(rule, env):
        values = []
        for fn, coerce in zip(rule.outputs, coercers):
            v = fn(env)
            if coerce is not None and v is not None:
                v = coerce(v)
                if v is FAIL:
                    v = None
            values.append(v)
        if single_output:
            return values[0]
        return dict(zip(out_names, values))

    has_default = any(d is not None for d in defaults)

    def default(env):
        if not has_default:
            return None
        values = [d(env) if d is not None else None for d in defaults]
        return values[0] if single_output else dict(zip(out_names, values))

    def rank(rule_output):
        vals = [rule_output] if single_output else [rule_output[n] for n in out_names]
        key = []
        for v, tests in zip(vals, priorities):
            pos = len(tests)
            for i, t in enumerate(tests):
                if t(v, {}) is True:
                    pos = i
                    break
            key.append(pos)
        return key

    def run(env):
        values = [f(env) for f in input_fns]
        matched = []
        for rule in rules:
            for col, test in rule.tests:
                if test(values[col], env) is not True:
                    break
            else:
                matched.append(rule)
                if first_only:
                    break
        trace = TRACE.get()
        if trace is not None:
            trace.extend(rule.id for rule in matched)
        if not matched:
            if hit in _MULTI and not has_default:  # the default output answers any hit policy
                if aggregation == "COUNT":
                    return Decimal(0)
                return None if aggregation else []
            return default(env)
        if hit == "UNIQUE":
            if len(matched) > 1:
                ids = [rule.id for rule in matched]
                raise EvaluationError(
                    f"decision {decision_id!r}: hit policy UNIQUE but {len(ids)} rules matched: "
                    f"{', '.join(ids)}. Make the rules' conditions exclusive or change the hit policy.",
                    details={"decision": decision_id, "rules": ids, "hit_policy": hit})
            return outputs_of(matched[0], env)
        if hit == "FIRST":
            return outputs_of(matched[0], env)
        results = [outputs_of(rule, env) for rule in matched]
        if hit == "ANY":
            for other, rule in zip(results[1:], matched[1:]):
                if ops.eq(results[0], other) is not True:
                    ids = [rule.id for rule in matched]
                    raise EvaluationError(
                        f"decision {decision_id!r}: hit policy ANY but the matched rules "
                        f"{', '.join(ids)} give different outputs. Make them agree or change the "
                        "hit policy.", details={"decision": decision_id, "rules": ids, "hit_policy": hit})
            return results[0]
        if hit == "PRIORITY":
            return min(results, key=rank)  # min keeps the first of equal ranks
        if hit == "OUTPUT ORDER":
            return sorted(results, key=rank)
        if hit == "RULE ORDER" or aggregation is None:
            return results
        return _aggregate(aggregation, results, decision_id)

    return run


def _aggregate(aggregation: str, results: list, decision_id: str) -> Any:
    if aggregation == "COUNT":
        return Decimal(len(results))
    fn = {"SUM": "sum", "MIN": "min", "MAX": "max"}[aggregation]
    return invoke(BUILTINS[fn], [results], None)
