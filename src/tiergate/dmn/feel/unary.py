"""Unary tests (decision table input entries): ``compile_tests(ast, scope)`` gives
``t(input_value, env) -> True | False | None``; a rule's cell matches only on True.
The expression ``x in tests`` compiles here too."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from . import ops
from .interpreter import CompileInfo, Scope, compile_expression, compiles, constant
from .types import Range

Test = Callable[[Any, dict], Any]


def compile_tests(node: tuple, scope: Scope) -> Test:
    """``("tests", [...])`` to ``t(value, env)``: True when the value passes the tests."""
    return disjunction([compile_test(t, scope) for t in node[1]])


def disjunction(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]

    def run(v, env):
        seen_null = False
        for t in tests:
            r = t(v, env)
            if r is True:
                return True
            if r is None:
                seen_null = True
        return None if seen_null else False

    return run


@compiles("in")
def _in(node, scope):
    """``x in tests``: the unary tests applied to ``x``."""
    fx = compile_expression(node[1], scope)
    test = disjunction([compile_test(t, scope) for t in node[2]])
    return lambda env: test(fx(env), env)


def compile_test(node: tuple, scope: Scope) -> Test:
    tag = node[0]
    if tag == "t_any":
        return lambda v, env: True
    if tag == "t_not":
        inner = disjunction([compile_test(t, scope) for t in node[1]])

        def negated(v, env):
            r = inner(v, env)
            return None if r is None else not r

        return negated
    if tag == "t_cmp":
        return _cmp_test(node[1], node[2], scope)
    return _expr_test(node[1], scope)


def _cmp_test(op: str, e: tuple, scope: Scope) -> Test:
    is_const, c = constant(e)
    if is_const and c.__class__ in (Decimal, str):
        cls = c.__class__
        if op == "<":
            return lambda v, env: v < c if v.__class__ is cls else None
        if op == "<=":
            return lambda v, env: v <= c if v.__class__ is cls else None
        if op == ">":
            return lambda v, env: v > c if v.__class__ is cls else None
        if op == ">=":
            return lambda v, env: v >= c if v.__class__ is cls else None
    cmp = ops.COMPARATORS[op]
    f = compile_expression(e, scope)
    return lambda v, env: cmp(v, f(env))


def match_value(v: Any, r: Any) -> bool | None:
    """Whether input ``v`` satisfies a test whose expression gave ``r`` (no ``?`` used)."""
    if r is None:
        return v is None
    cls = r.__class__
    if cls is Range:
        return ops.in_range(v, r)
    if cls is list:  # a list of values and ranges: any of them (a list value may equal an item)
        for x in r:
            e = ops.in_range(v, x) if x.__class__ is Range else ops.eq(v, x)
            if e is True:
                return True
        return True if v.__class__ is list and ops.eq(v, r) is True else False
    if cls is bool and v.__class__ is not bool and v is not None:
        return r
    return ops.eq(v, r)


def _expr_test(e: tuple, scope: Scope) -> Test:
    is_const, c = constant(e)
    if is_const:
        cls = c.__class__
        if c is None:
            return lambda v, env: v is None
        if cls is bool:
            return lambda v, env: v is c if v.__class__ is bool else (False if v is None else None)
        if cls in (Decimal, str):
            return lambda v, env: v == c if v.__class__ is cls else (False if v is None else None)
    sub = CompileInfo(scope.info.type_check, scope.info.known)
    f = compile_expression(e, Scope(scope.bound, sub, scope.in_filter))
    scope.info.free |= sub.free
    scope.info.soft_free |= sub.soft_free
    if sub.uses_q:
        def with_q(v, env):
            inner = dict(env)
            inner["?"] = v
            r = f(inner)
            if r is True or r is False:
                return r
            return match_value(v, r) if r is not None else None

        return with_q
    if e[0] == "interval":  # [1..null]: a range with a null end tests nothing (null)
        def in_interval(v, env):
            r = f(env)
            return None if r is None else match_value(v, r)

        return in_interval
    return lambda v, env: match_value(v, f(env))
