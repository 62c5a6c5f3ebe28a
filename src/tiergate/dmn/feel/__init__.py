"""tiergate's FEEL engine: a lark LALR grammar, a parser to tuples, a compiler to closures.

Use :func:`compile_feel` once per text and call the result many times; or the convenience
functions :func:`evaluate_expression` and :func:`evaluate_unary_tests`, which cache compiled
texts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

from ...errors import EvaluationError, FEELError
from . import conformance, filters, functions, iteration  # noqa: F401  (importing registers their node compilers)
from .builtins import BUILTINS, TYPE_NAMES
from .interpreter import CompileInfo, Scope, compile_expression
from .unary import compile_tests
from .parser import FEELSyntaxError, parse
from .tokens import name_index
from .types import FEELFunction, Range, YearsMonthsDuration, to_feel

_BUILTIN_NAMES = frozenset(BUILTINS) | frozenset(TYPE_NAMES)


class CompiledFEEL:
    """One compiled FEEL text.

    ``fn``: ``fn(env)`` for expressions, ``fn(value, env)`` for unary tests. ``free``: names the
    text reads that it does not bind itself (loop variables, parameters, context entries);
    ``soft_free``: such names inside filters (they may be entries of the filtered items).
    ``free_order``: the names of ``free`` in the order the text first reads them.
    """

    __slots__ = ("text", "kind", "fn", "free", "free_order", "soft_free", "uses_q", "ast")

    def __init__(self, text: str, kind: str, fn: Callable, info: CompileInfo, ast: tuple):
        self.text, self.kind, self.fn, self.ast = text, kind, fn, ast
        self.free, self.free_order = frozenset(info.free), tuple(info.free)
        self.soft_free, self.uses_q = frozenset(info.soft_free), info.uses_q


def compile_feel(text: str, kind: str = "expr", names: Iterable[str] = (),
                 type_check: Callable[[str], Callable[[Any], bool] | None] | None = None) -> CompiledFEEL:
    """Compile ``text`` (``kind`` "expr" or "tests"); ``names``: the names in scope.

    Raises FEELSyntaxError (a FEELError) with ``details["column"]`` when the text does not parse.
    """
    names = frozenset(names)
    try:
        ast = parse(text, "tests" if kind == "tests" else "expr", name_index(names | _BUILTIN_NAMES))
        info = CompileInfo(type_check, names)
        scope = Scope(frozenset(), info)
        if kind == "tests":
            fn = compile_tests(ast, scope)
        else:
            fn = compile_expression(ast, scope)
    except RecursionError:
        raise FEELSyntaxError(f"the FEEL expression is nested too deeply: {text[:80]!r}...",
                              details={"expression": text[:200], "column": 1}) from None
    return CompiledFEEL(text, kind, fn, info, ast)


def _run(fn, *args):
    try:
        return fn(*args)
    except RecursionError:
        raise FEELError("FEEL evaluation recursed too deeply", details={}) from None


@lru_cache(maxsize=1024)
def _cached(text: str, kind: str, names: frozenset[str]) -> CompiledFEEL:
    return compile_feel(text, kind, names)


def _env(context: Mapping[str, Any] | None) -> dict:
    env: dict = {}
    for key, value in (context or {}).items():
        if not isinstance(key, str):
            raise EvaluationError(f"context key {key!r} is not a string: FEEL names are strings",
                                  details={"key": repr(key)})
        try:
            env[key] = to_feel(value)
        except TypeError as exc:
            raise EvaluationError(f"context entry {key!r}: {exc}; pass None, bool, numbers, str, "
                                  "dates/times, dicts or lists",
                                  details={"key": key, "type": type(value).__name__}) from None
    return env


def evaluate_expression(text: str, context: Mapping[str, Any] | None = None) -> Any:
    """Evaluate the FEEL expression ``text`` with the names of ``context`` in scope.

    Returns the FEEL value as plain Python (see ``tiergate.dmn.feel.types``); FEEL errors in
    types give ``None``; a syntax error raises FEELSyntaxError.
    """
    env = _env(context)
    return _run(_cached(text, "expr", frozenset(env)).fn, env)


def evaluate_unary_tests(text: str, input_value: Any, context: Mapping[str, Any] | None = None) -> bool:
    """Whether ``input_value`` satisfies the FEEL unary tests ``text`` (e.g. ``"< 5, > 10"``)."""
    env = _env(context)
    try:
        value = to_feel(input_value)
    except TypeError as exc:
        raise EvaluationError(f"input value: {exc}", details={"type": type(input_value).__name__}) from None
    return _run(_cached(text, "tests", frozenset(env)).fn, value, env) is True


__all__ = [
    "CompiledFEEL", "FEELFunction", "FEELSyntaxError", "Range", "YearsMonthsDuration",
    "compile_feel", "evaluate_expression", "evaluate_unary_tests",
]
