"""Turns FEEL syntax trees into Python closures, once; evaluating is calling the closure.

``compile_expression(ast, scope)`` gives ``f(env) -> value`` (unary tests: ``unary.py``). ``env`` is a plain dict of the names in
scope. Nothing here evaluates Python source: every node maps to one of the small functions
below, and the only operations on values are the FEEL ones in ``ops.py`` and ``builtins``.
Path access (``a.b``) reads dict entries and the documented properties of temporal values,
never Python attributes.
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any, Callable

from ...errors import FEELError
from . import ops
from .builtins import BUILTINS, invoke
from .limits import budgeted_call, check_items, check_time, start_clock, stop_clock
from .paths import get_path
from .types import FEELFunction, Range, builtin_type, conforms_builtin

Fn = Callable[[dict], Any]

_ARITH = {"+": ops.add, "-": ops.sub, "*": ops.mul, "/": ops.div, "**": ops.power}


class CompileInfo:
    """Facts gathered while compiling one text: free names, use of ``?``."""

    def __init__(self, type_check: Callable[[str], Callable[[Any], bool] | None] | None = None,
                 known: frozenset[str] = frozenset()):
        self.known = known  # names of the enclosing scope (inputs, decisions, context keys)
        self.free: dict[str, None] = {}  # an ordered set: first read first
        self.soft_free: set[str] = set()  # names inside filters: may be entries of the items
        self.uses_q = False
        self.type_check = type_check


class Scope:
    __slots__ = ("bound", "info", "in_filter")

    def __init__(self, bound: frozenset[str], info: CompileInfo, in_filter: bool = False):
        self.bound, self.info, self.in_filter = bound, info, in_filter

    def with_names(self, names) -> "Scope":
        return Scope(self.bound | frozenset(names), self.info, self.in_filter)


def compile_expression(node: tuple, scope: Scope) -> Fn:
    return _COMPILERS[node[0]](node, scope)


def constant(node: tuple) -> tuple[bool, Any]:
    """(True, value) when the node is a literal."""
    if node[0] == "lit":
        return True, node[1]
    return False, None


# ---------------------------------------------------------------------------------------------
# expressions

def _lit(node, scope):
    value = node[1]
    return lambda env: value


def _var(node, scope):
    name = node[1]
    if name not in scope.bound:
        if scope.in_filter:
            scope.info.soft_free.add(name)
        else:
            scope.info.free[name] = None
    fallback = BUILTINS.get(name)
    if fallback is not None:
        return lambda env: env.get(name, fallback)
    return lambda env: env.get(name)


def _qmark(node, scope):
    scope.info.uses_q = True
    return lambda env: env.get("?")


def _builtin(node, scope):
    fn = BUILTINS[node[1]]
    return lambda env: fn


def _neg(node, scope):
    f, neg = compile_expression(node[1], scope), ops.neg
    return lambda env: neg(f(env))


def _arith(node, scope):
    op = _ARITH[node[1]]
    fa, fb = compile_expression(node[2], scope), compile_expression(node[3], scope)
    return lambda env: op(fa(env), fb(env))


def _cmp(node, scope):
    op = ops.COMPARATORS[node[1]]
    fa, fb = compile_expression(node[2], scope), compile_expression(node[3], scope)
    return lambda env: op(fa(env), fb(env))


def _and(node, scope):
    fa, fb = compile_expression(node[1], scope), compile_expression(node[2], scope)

    def run(env):
        a = fa(env)
        if a is False:
            return False
        return ops.truth_and(a, fb(env))

    return run


def _or(node, scope):
    fa, fb = compile_expression(node[1], scope), compile_expression(node[2], scope)

    def run(env):
        a = fa(env)
        if a is True:
            return True
        return ops.truth_or(a, fb(env))

    return run


def _between(node, scope):
    fx, flo, fhi = (compile_expression(n, scope) for n in node[1:4])

    def run(env):
        x = fx(env)
        return ops.truth_and(ops.ge(x, flo(env)), ops.le(x, fhi(env)))

    return run


def _in(node, scope):
    from .unary import compile_test, disjunction

    fx = compile_expression(node[1], scope)
    test = disjunction([compile_test(t, scope) for t in node[2]])
    return lambda env: test(fx(env), env)


def _instance(node, scope):
    f, type_name = compile_expression(node[1], scope), node[2]
    check = type_predicate(type_name, scope.info)
    return lambda env: check(f(env))


def type_predicate(type_name: Any, info: CompileInfo) -> Callable[[Any], bool]:
    """``v instance of T``: false for null (except ``Null``), true when v conforms to T."""
    check = _conforms(type_name, info)
    if isinstance(type_name, str) and builtin_type(type_name) == "Null":
        return check
    return lambda v: v is not None and check(v)


def _conforms(t: Any, info: CompileInfo) -> Callable[[Any], bool]:
    """Conformance to a type (null conforms to every type, as items and entries of generics)."""
    if isinstance(t, tuple):
        if t[0] == "list":
            item = _conforms(t[1], info)
            return lambda v: v.__class__ is list and all(item(x) for x in v)
        if t[0] == "range":
            end = _conforms(t[1], info)
            return lambda v: v.__class__ is Range and end(v.start) and end(v.end)
        if t[0] == "context":
            entries = [(k, _conforms(kt, info)) for k, kt in t[1]]
            return lambda v: v.__class__ is dict and all(k in v and c(v[k]) for k, c in entries)
        arity = len(t[1])
        return lambda v: v.__class__ is FEELFunction and (
            v.varargs or (v.min_args if v.min_args is not None else len(v.params)) <= arity <= (
                v.max_args if v.max_args is not None else len(v.params)))
    builtin = builtin_type(t)
    if builtin is not None:
        if builtin == "Null":
            return lambda v: v is None
        return lambda v: v is None or conforms_builtin(v, builtin)
    check = info.type_check(t) if info.type_check else None
    if check is None:
        raise FEELError(f'unknown type "{t}" after "instance of": use a FEEL type or an '
                        "itemDefinition of the model", details={"type": t})
    return lambda v: v is None or check(v)


def _if(node, scope):
    fc, fa, fb = (compile_expression(n, scope) for n in node[1:4])
    return lambda env: fa(env) if fc(env) is True else fb(env)


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


def _func(node, scope):
    params = [p[0] for p in node[1]]
    checks = [type_predicate(t, scope.info) if t else None for _, t in node[1]]
    body = compile_expression(node[2], scope.with_names(params))

    def run(env):
        captured = env

        def impl(*args):
            call_env = dict(captured)
            for name, value, check in zip(params, args, checks):
                if check is not None and value is not None and not check(value):
                    return None
                call_env[name] = value
            return budgeted_call(body, call_env)

        return FEELFunction("anonymous function", params, impl)

    return run


def _path(node, scope):
    f, name = compile_expression(node[1], scope), node[2]
    return lambda env: get_path(f(env), name)


def _filter(node, scope):
    f = compile_expression(node[1], scope)
    is_const, index = constant(node[2])
    if is_const and index.__class__ is Decimal:
        return lambda env: _index(f(env), index)
    cond = compile_expression(node[2], Scope(scope.bound | {"item"}, scope.info, True))

    def run(env):
        value = f(env)
        if value is None:
            return None
        items = value if value.__class__ is list else [value]
        first = cond(env)
        if first.__class__ is Decimal:
            return _index(items, first)
        out = []
        for item in items:
            inner = dict(env)
            inner["item"] = item
            if item.__class__ is dict:  # the item's entries win, even one named "item"
                inner.update(item)
            if cond(inner) is True:
                out.append(item)
        return out

    return run


def _index(value: Any, index: Decimal) -> Any:
    items = value if value.__class__ is list else ([] if value is None else [value])
    if index != index.to_integral_value():
        return None
    i = int(index)
    if i > 0 and i <= len(items):
        return items[i - 1]
    if i < 0 and -i <= len(items):
        return items[i]
    return None


def _call(node, scope):
    fn_node, args, named = node[1], node[2], node[3]
    fargs = [compile_expression(a, scope) for a in args] if args is not None else None
    fnamed = [(n, compile_expression(a, scope)) for n, a in named] if named is not None else None
    if fn_node[0] == "builtin":
        target = BUILTINS[fn_node[1]]
    elif (fn_node[0] == "var" and fn_node[1] not in scope.bound and fn_node[1] not in scope.info.known
          and fn_node[1] in BUILTINS):
        target = BUILTINS[fn_node[1]]  # not shadowed by a name in scope: bind now
    else:
        target = None
    if target is not None:
        if fnamed is None:
            return lambda env: invoke(target, [a(env) for a in fargs], None)
        return lambda env: invoke(target, None, {n: a(env) for n, a in fnamed})
    if fn_node[0] == "var" and fn_node[1] not in scope.bound:
        # an unknown function name is an error when the call runs (null), not when the model
        # loads (DMN 1.5 10.3.2.13.2): it counts like a name inside a filter, not a free name
        ffn = compile_expression(fn_node, Scope(scope.bound, scope.info, True))
    else:
        ffn = compile_expression(fn_node, scope)
    # a variable named like a built-in (an input called "date") does not hide the function
    fallback = BUILTINS.get(fn_node[1]) if fn_node[0] == "var" else None

    def run(env):
        fn = ffn(env)
        if fn.__class__ is not FEELFunction:
            if fallback is None:
                return None
            fn = fallback
        if fnamed is None:
            return invoke(fn, [a(env) for a in fargs], None)
        return invoke(fn, None, {n: a(env) for n, a in fnamed})

    return run


def _list(node, scope):
    items = [compile_expression(e, scope) for e in node[1]]
    return lambda env: [f(env) for f in items]


def _context(node, scope):
    entries = []
    inner = scope
    for key, e in node[1]:
        entries.append((key, compile_expression(e, inner)))
        inner = inner.with_names([key])
    if len({key for key, _ in entries}) != len(entries):  # {a: 1, a: 2}: an error, null
        return lambda env: None

    def run(env):
        local = dict(env)
        out = {}
        for key, f in entries:
            value = f(local)
            out[key] = value
            local[key] = value
        return out

    return run


def _interval(node, scope):
    start_incl, end_incl = node[1], node[4]
    flo, fhi = compile_expression(node[2], scope), compile_expression(node[3], scope)

    def run(env):
        lo, hi = flo(env), fhi(env)
        if lo is None or hi is None or ops.compare(lo, hi) is None:  # (null..10) is not < 10
            return None
        return Range(lo, hi, start_incl, end_incl)

    return run


_CMP_RANGE = {"<": (False, None, False), "<=": (False, None, True),
              ">": (True, False, None), ">=": (True, True, None)}


def _cmp_range(node, scope):
    """``(< 10)``: the range of a comparison test, ``(null..10)``."""
    if node[1] == "=":  # (= 10): the range [10..10]
        fv = compile_expression(node[2], scope)

        def point(env):
            x = fv(env)
            return None if x is None else Range(x, x, True, True, "=")

        return point
    if node[1] not in _CMP_RANGE:  # (!= 1) is a test, not a range: null outside of ``in``
        return lambda env: None
    low_end, a, b = _CMP_RANGE[node[1]]
    fx = compile_expression(node[2], scope)

    def run(env):
        x = fx(env)
        if x is None:
            return None
        return Range(x, None, a, False) if low_end else Range(None, x, False, b)

    return run


_COMPILERS: dict[str, Callable[[tuple, Scope], Fn]] = {
    "lit": _lit, "var": _var, "qmark": _qmark, "builtin": _builtin, "neg": _neg, "arith": _arith,
    "cmp": _cmp, "and": _and, "or": _or, "between": _between, "in": _in, "instance": _instance,
    "if": _if, "for": _for, "quant": _quant, "func": _func, "path": _path, "filter": _filter,
    "call": _call, "list": _list, "context": _context, "interval": _interval,
    "cmp_range": _cmp_range,
}
