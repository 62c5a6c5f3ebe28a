"""Turns FEEL syntax trees into Python closures, once; evaluating is calling the closure.

``compile_expression(ast, scope)`` gives ``f(env) -> value``. ``env`` is a plain dict of the names
in scope. Nothing here evaluates Python source: every node maps to one small compiler, and the only
operations on values are the FEEL ones in ``ops.py`` and ``builtins``. Path access (``a.b``) reads
dict entries and the documented properties of temporal values, never Python attributes.

This module compiles names, literals, operators, ``if``, paths, lists, contexts and intervals;
the other node kinds have their own modules, which register their compilers with
:func:`compiles` when the package imports them: ``iteration.py`` (``for``, ``some``,
``every``), ``functions.py`` (function definitions and calls), ``filters.py`` (``l[...]``),
``conformance.py`` (``instance of``) and ``unary.py`` (``x in tests``, and unary tests).
"""

from __future__ import annotations

from typing import Any, Callable

from . import ops
from .builtins import BUILTINS
from .paths import get_path
from .types import Range

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


Compiler = Callable[[tuple, Scope], Fn]

#: node tag -> its compiler (see the module docstring for who adds which)
_COMPILERS: dict[str, Compiler] = {}


def compiles(tag: str) -> Callable[[Compiler], Compiler]:
    """Decorator: ``fn(node, scope)`` compiles the nodes tagged ``tag``."""
    def register(fn: Compiler) -> Compiler:
        _COMPILERS[tag] = fn
        return fn

    return register


def compile_expression(node: tuple, scope: Scope) -> Fn:
    return _COMPILERS[node[0]](node, scope)


def constant(node: tuple) -> tuple[bool, Any]:
    """(True, value) when the node is a literal."""
    if node[0] == "lit":
        return True, node[1]
    return False, None


# ---------------------------------------------------------------------------------------------
# expressions

@compiles("lit")
def _lit(node, scope):
    value = node[1]
    return lambda env: value


@compiles("var")
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


@compiles("qmark")
def _qmark(node, scope):
    scope.info.uses_q = True
    return lambda env: env.get("?")


@compiles("builtin")
def _builtin(node, scope):
    fn = BUILTINS[node[1]]
    return lambda env: fn


@compiles("neg")
def _neg(node, scope):
    f, neg = compile_expression(node[1], scope), ops.neg
    return lambda env: neg(f(env))


@compiles("arith")
def _arith(node, scope):
    op = _ARITH[node[1]]
    fa, fb = compile_expression(node[2], scope), compile_expression(node[3], scope)
    return lambda env: op(fa(env), fb(env))


@compiles("cmp")
def _cmp(node, scope):
    op = ops.COMPARATORS[node[1]]
    fa, fb = compile_expression(node[2], scope), compile_expression(node[3], scope)
    return lambda env: op(fa(env), fb(env))


@compiles("and")
def _and(node, scope):
    fa, fb = compile_expression(node[1], scope), compile_expression(node[2], scope)

    def run(env):
        a = fa(env)
        if a is False:
            return False
        return ops.truth_and(a, fb(env))

    return run


@compiles("or")
def _or(node, scope):
    fa, fb = compile_expression(node[1], scope), compile_expression(node[2], scope)

    def run(env):
        a = fa(env)
        if a is True:
            return True
        return ops.truth_or(a, fb(env))

    return run


@compiles("between")
def _between(node, scope):
    fx, flo, fhi = (compile_expression(n, scope) for n in node[1:4])

    def run(env):
        x = fx(env)
        return ops.truth_and(ops.ge(x, flo(env)), ops.le(x, fhi(env)))

    return run


@compiles("if")
def _if(node, scope):
    fc, fa, fb = (compile_expression(n, scope) for n in node[1:4])
    return lambda env: fa(env) if fc(env) is True else fb(env)


@compiles("path")
def _path(node, scope):
    f, name = compile_expression(node[1], scope), node[2]
    return lambda env: get_path(f(env), name)


@compiles("list")
def _list(node, scope):
    items = [compile_expression(e, scope) for e in node[1]]
    return lambda env: [f(env) for f in items]


@compiles("context")
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


@compiles("interval")
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


@compiles("cmp_range")
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

