"""Iteration: ``for x in l return e`` (with ``partial``, and ranges ``1..n``), ``some``/``every``.

A ``for`` loop runs on the FEEL clock and item budget (``limits.py``). A value that is no list
iterates as a list of that one value; iterating null or a range value, or ``a..b`` with ends that
are not whole numbers (or not both dates), makes the whole expression null.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any

from .interpreter import compile_expression, compiles
from .limits import check_items, check_time, start_clock, stop_clock
from .types import Range


class _Abort(Exception):
    pass


def _iteration_values(coll: Any, end: Any, has_end: bool) -> list:
    if has_end:
        if coll.__class__ is _dt.date and end.__class__ is _dt.date:  # day by day
            days = (end - coll).days
            check_items(abs(days) + 1)
            step = 1 if days >= 0 else -1
            return [coll + _dt.timedelta(days=i) for i in range(0, days + step, step)]
        if coll.__class__ is not Decimal or end.__class__ is not Decimal:
            raise _Abort
        if coll != coll.to_integral_value() or end != end.to_integral_value():
            raise _Abort
        a, b = int(coll), int(end)
        check_items(abs(b - a) + 1)
        step = 1 if b >= a else -1
        return [Decimal(i) for i in range(a, b + step, step)]
    if coll is None or coll.__class__ is Range:  # iterating a range literal: an error
        raise _Abort
    return coll if coll.__class__ is list else [coll]


@compiles("for")
def _for(node, scope):
    its = []
    inner = scope
    for name, e, end in node[1]:
        its.append((name, compile_expression(e, inner), compile_expression(end, inner) if end else None))
        inner = inner.with_names([name])
    body = compile_expression(node[2], inner.with_names(["partial"]))

    def run(env):
        results: list = []

        def loop(i, env):
            if i == len(its):
                results.append(body(env))
                if not len(results) & 1023:
                    check_items(len(results))
                    check_time()
                return
            name, fe, fend = its[i]
            coll = fe(env)
            for item in _iteration_values(coll, fend(env) if fend else None, fend is not None):
                inner_env = dict(env)
                inner_env[name] = item
                inner_env["partial"] = results
                loop(i + 1, inner_env)

        token = start_clock()
        try:
            loop(0, env)
        except _Abort:
            return None
        finally:
            stop_clock(token)
        return results

    return run


@compiles("quant")
def _quant(node, scope):
    kind = node[1]
    its = []
    inner = scope
    for name, e in node[2]:
        its.append((name, compile_expression(e, inner)))
        inner = inner.with_names([name])
    cond = compile_expression(node[3], inner)

    def outcomes(env, i):
        if i == len(its):
            yield cond(env)
            return
        name, fe = its[i]
        coll = fe(env)
        for item in _iteration_values(coll, None, False):
            inner_env = dict(env)
            inner_env[name] = item
            yield from outcomes(inner_env, i + 1)

    def run(env):
        try:
            if kind == "some":
                return any(r is True for r in outcomes(env, 0))
            return all(r is True for r in outcomes(env, 0))
        except _Abort:
            return None

    return run

